// AssemblyScript source of the WebAssembly SIMD kernels (lib/backends/wasm.ts drives them).
// Build: `deno task build:wasm` (wasm/build.ts) writes wasm/kernels.wasm and
// lib/backends/_kernels_wasm.ts. Pointers are byte addresses into the imported memory, counts
// are elements. Each kernel applies lib/backends/cpu.ts's operations in its order, each one a
// float32 operation (WebAssembly has no FMA contraction), so results equal the TypeScript kernels
// bit for bit; the scalar tails repeat the vector bodies for the last n % 4 elements.

// ------------------------------------------------------------------------ element-wise sweeps
// Every element-wise kernel is one instance of `pass`: a conversion that yields `m0`, optionally
// stored, then optionally a multistep update that reads `m0` from a register, then optionally
// the SDE noise term. One pass over memory for a whole scheduler step (5 streams at order 2, 6
// at order 3, where separate kernels make 7 and 8). The host writes the operands into the
// parameter block (`params()`, slots below) and calls `sweep(order, mode, noisy)`.
//
// Conversion modes (`m0` from the operands `p`, `q` and the sample `x`):
//   AXPBY         `m0 = (ca·p + cb·q) / cd`, stored to `conv` (`axpbyDiv`);
//   AX            `m0 = (ca·p) / cd`, stored to `conv`;
//   SAMPLE_FIRST  `m0 = (ca·x + cb·q) / cd`, stored to `conv` (AXPBY with `p` the sample, read
//                 once for the conversion and the update);
//   MODEL_FIRST   `m0 = (ca·p + cb·x) / cd`, stored to `conv` (AXPBY with `q` the sample);
//   COPY          `m0 = p`, stored to `conv`;
//   CLAMP         `m0 = clamp(p, cb, ca) / cd`, stored to `conv` (dynamic thresholding's last
//                 pass, with `ca = cd = s`, `cb = -s`, `p = conv`: in place);
//   LOAD          `m0 = p`, not stored (the update alone, `m0` a history entry);
//   SAMPLE_FIRST_CLAMP  `m0 = clamp((ca·x + cb·q) / cd, lo, hi) / s`, stored to `conv`: the
//                 conversion, dynamic thresholding's clamp-and-divide and the update in one pass
//                 (with `lo = -s`, `hi = s` in slots LO, HI, S).
// Orders: 0, the conversion alone; 1–3, the orders of `multistep` in backends/cpu.ts:
//   1: out = a·x + b·m0
//   2: D1 = k0·(m0 − m1),                    out = (a·x + b·m0) + c·D1
//   3: D1_0 = k0·(m0 − m1), D1_1 = k1·(m1 − m2), D1 = D1_0 + qq·(D1_0 − D1_1),
//      D2 = k2·(D1_0 − D1_1),                out = ((a·x + b·m0) + c·D1) + d·D2
// then, when noisy, `out = out + e·noise`. Loads of an element come before its stores, so `out`
// (and at order 0 `conv`) may alias an input element for element. With an update, `conv` must
// not alias an input other than `p` in CLAMP mode: the separate kernels would read the
// converted values there, and the host takes them instead.
const AXPBY: i32 = 0;
const AX: i32 = 1;
const SAMPLE_FIRST: i32 = 2;
const MODEL_FIRST: i32 = 3;
const COPY: i32 = 4;
const CLAMP: i32 = 5;
const LOAD: i32 = 6;
const SAMPLE_FIRST_CLAMP: i32 = 7;

// Parameter slots (4 bytes each): pointers, the count, then the float32 coefficients.
const OUT = 0;
const CONV = 1;
const X = 2;
const P = 3;
const Q = 4;
const M1 = 5;
const M2 = 6;
const NOISE = 7;
const N = 8;
const CA = 9;
const CB = 10;
const CD = 11;
const A = 12;
const B = 13;
const C = 14;
const K0 = 15;
const D = 16;
const K1 = 17;
const QQ = 18;
const K2 = 19;
const E = 20;
const LO = 21;
const HI = 22;
const S = 23;
const PARAMS = memory.data(4 * 24, 16);

// Address of the parameter block.
export function params(): usize {
  return PARAMS;
}

// One instance of `pass` per (order, mode, noisy) the host uses. The flags are types standing
// for the values (below), so that each instance's loop is compiled without the untaken branches.
export function sweep(order: i32, mode: i32, noisy: bool): void {
  if (order == 0) {
    if (mode == AXPBY) pass<Order0, Axpby, Off>();
    else if (mode == AX) pass<Order0, Ax, Off>();
    else if (mode == CLAMP) pass<Order0, Clamp, Off>();
    else unreachable();
  } else if (order == 1) withMode<Order1>(mode, noisy);
  else if (order == 2) withMode<Order2>(mode, noisy);
  else withMode<Order3>(mode, noisy);
}

function withMode<Order>(mode: i32, noisy: bool): void {
  if (mode == SAMPLE_FIRST) withNoise<Order, SampleFirst>(noisy);
  else if (mode == MODEL_FIRST) withNoise<Order, ModelFirst>(noisy);
  else if (mode == COPY) withNoise<Order, Copy>(noisy);
  else if (mode == CLAMP) withNoise<Order, Clamp>(noisy);
  else if (mode == LOAD) withNoise<Order, Load>(noisy);
  else if (mode == SAMPLE_FIRST_CLAMP) {
    withNoise<Order, SampleFirstClamp>(noisy);
  } else unreachable();
}

function withNoise<Order, Mode>(noisy: bool): void {
  if (noisy) pass<Order, Mode, On>();
  else pass<Order, Mode, Off>();
}

// The flag types: distinct numeric types, told apart at compile time by `same` (whose calls
// fold to constants in each instance).
type Order0 = u8;
type Order1 = u16;
type Order2 = u32;
type Order3 = u64;
type Axpby = u8;
type Ax = u16;
type SampleFirst = i8;
type ModelFirst = i16;
type Copy = u32;
type Clamp = u64;
type Load = f32;
type SampleFirstClamp = i64;
type On = i32;
type Off = f32;

function same<T, U>(): bool {
  return sizeof<T>() == sizeof<U>() && isSigned<T>() == isSigned<U>() &&
    isFloat<T>() == isFloat<U>();
}

function slot<T>(k: i32): T {
  return load<T>(PARAMS + ((<usize> k) << 2));
}

function pass<Order, Mode, Noisy>(): void {
  const order = same<Order, Order0>()
    ? 0
    : same<Order, Order1>()
    ? 1
    : same<Order, Order2>()
    ? 2
    : 3;
  const noisy = same<Noisy, On>();
  const out = slot<usize>(OUT);
  const conv = slot<usize>(CONV);
  const x = slot<usize>(X);
  const p = slot<usize>(P);
  const q = slot<usize>(Q);
  const m1 = slot<usize>(M1);
  const m2 = slot<usize>(M2);
  const noise = slot<usize>(NOISE);
  const ca = slot<f32>(CA);
  const cb = slot<f32>(CB);
  const cd = slot<f32>(CD);
  const a = slot<f32>(A);
  const b = slot<f32>(B);
  const c = slot<f32>(C);
  const d = slot<f32>(D);
  const k0 = slot<f32>(K0);
  const k1 = slot<f32>(K1);
  const qq = slot<f32>(QQ);
  const k2 = slot<f32>(K2);
  const e = slot<f32>(E);
  const lo = slot<f32>(LO);
  const hi = slot<f32>(HI);
  const sc = slot<f32>(S);
  const vlo = f32x4.splat(lo);
  const vhi = f32x4.splat(hi);
  const vsc = f32x4.splat(sc);
  const vca = f32x4.splat(ca);
  const vcb = f32x4.splat(cb);
  const vcd = f32x4.splat(cd);
  const va = f32x4.splat(a);
  const vb = f32x4.splat(b);
  const vc = f32x4.splat(c);
  const vd = f32x4.splat(d);
  const vk0 = f32x4.splat(k0);
  const vk1 = f32x4.splat(k1);
  const vqq = f32x4.splat(qq);
  const vk2 = f32x4.splat(k2);
  const ve = f32x4.splat(e);
  const stored = !same<Mode, Load>();
  const end = (<usize> slot<i32>(N)) << 2;
  const vend = end & ~(<usize> 15);
  let i: usize = 0;
  for (; i < vend; i += 16) {
    // The sample, loaded once where the conversion and the update both read it.
    const vx = order >= 1 ? v128.load(x + i) : f32x4.splat(0);
    let m0: v128;
    if (
      same<Mode, Axpby>() || same<Mode, SampleFirst>() ||
      same<Mode, ModelFirst>() || same<Mode, SampleFirstClamp>()
    ) {
      const vp = same<Mode, SampleFirst>() || same<Mode, SampleFirstClamp>()
        ? vx
        : v128.load(p + i);
      const vq = same<Mode, ModelFirst>() ? vx : v128.load(q + i);
      const ap = f32x4.mul(vca, vp);
      m0 = f32x4.div(f32x4.add(ap, f32x4.mul(vcb, vq)), vcd);
      if (same<Mode, SampleFirstClamp>()) {
        m0 = f32x4.div(f32x4.pmax(f32x4.pmin(m0, vhi), vlo), vsc);
      }
    } else if (same<Mode, Ax>()) {
      m0 = f32x4.div(f32x4.mul(vca, v128.load(p + i)), vcd);
    } else if (same<Mode, Clamp>()) {
      // pmin/pmax keep a NaN element as the TypeScript comparisons do.
      const upper = f32x4.pmin(v128.load(p + i), vca);
      m0 = f32x4.div(f32x4.pmax(upper, vcb), vcd);
    } else m0 = v128.load(p + i);
    if (order == 0) {
      v128.store(conv + i, m0);
      continue;
    }
    let r = f32x4.add(f32x4.mul(va, vx), f32x4.mul(vb, m0));
    if (order == 2) {
      const d1 = f32x4.mul(vk0, f32x4.sub(m0, v128.load(m1 + i)));
      r = f32x4.add(r, f32x4.mul(vc, d1));
    } else if (order == 3) {
      const v1 = v128.load(m1 + i);
      const d10 = f32x4.mul(vk0, f32x4.sub(m0, v1));
      const d11 = f32x4.mul(vk1, f32x4.sub(v1, v128.load(m2 + i)));
      const diff = f32x4.sub(d10, d11);
      const d1 = f32x4.add(d10, f32x4.mul(vqq, diff));
      const d2 = f32x4.mul(vk2, diff);
      r = f32x4.add(f32x4.add(r, f32x4.mul(vc, d1)), f32x4.mul(vd, d2));
    }
    if (noisy) r = f32x4.add(r, f32x4.mul(ve, v128.load(noise + i)));
    if (stored) v128.store(conv + i, m0);
    v128.store(out + i, r);
  }
  for (; i < end; i += 4) {
    const sx = order >= 1 ? load<f32>(x + i) : 0;
    let m0: f32;
    if (
      same<Mode, Axpby>() || same<Mode, SampleFirst>() ||
      same<Mode, ModelFirst>() || same<Mode, SampleFirstClamp>()
    ) {
      const sp = same<Mode, SampleFirst>() || same<Mode, SampleFirstClamp>()
        ? sx
        : load<f32>(p + i);
      const sq = same<Mode, ModelFirst>() ? sx : load<f32>(q + i);
      m0 = (ca * sp + cb * sq) / cd;
      if (same<Mode, SampleFirstClamp>()) {
        const upper = m0 > hi ? hi : m0;
        m0 = (upper < lo ? lo : upper) / sc;
      }
    } else if (same<Mode, Ax>()) {
      m0 = (ca * load<f32>(p + i)) / cd;
    } else if (same<Mode, Clamp>()) {
      const v = load<f32>(p + i);
      const upper = v > ca ? ca : v;
      m0 = (upper < cb ? cb : upper) / cd;
    } else m0 = load<f32>(p + i);
    if (order == 0) {
      store<f32>(conv + i, m0);
      continue;
    }
    let r: f32 = a * sx + b * m0;
    if (order == 2) {
      r = r + c * (k0 * (m0 - load<f32>(m1 + i)));
    } else if (order == 3) {
      const s1 = load<f32>(m1 + i);
      const d10 = k0 * (m0 - s1);
      const diff = d10 - k1 * (s1 - load<f32>(m2 + i));
      r = r + c * (d10 + qq * diff) + d * (k2 * diff);
    }
    if (noisy) r = r + e * load<f32>(noise + i);
    if (stored) store<f32>(conv + i, m0);
    store<f32>(out + i, r);
  }
}

// Order statistics of |x| over the float bits: for non-negative floats the bit patterns sort as
// the values do. A strided sample of 2^10 brackets the wanted ranks and one SIMD pass counts what
// lies below the bracket and appends what lies in it (Floyd–Rivest), then a radix selection
// (`select`) picks the rank among those; when the bracket misses, a radix histogram (bins of the
// top 12 bits of |x|) finds the bin instead. Either way the answer is exact: only the speed
// depends on the data.
const BIN_SHIFT: u32 = 19;
const ABS_MASK: u32 = 0x7fffffff;
const INFINITY_BITS: u32 = 0x7f800000;

let nextBits: u32 = 0;

// The (k + 1)-th smallest |x| found by the last `absOrderStat` call with `wantNext`.
export function nextStat(): f32 {
  return reinterpret<f32>(nextBits);
}

// The k-th smallest (0-based) of |x[0:n]|, or NaN when any element is NaN; with `wantNext`, the
// (k + 1)-th too (read it with `nextStat`). `hist` holds 2^12 u32 counters, all zero on entry
// and on return; `scratch` holds n u32.
export function absOrderStat(
  x: usize,
  n: i32,
  k: i32,
  wantNext: bool,
  hist: usize,
  scratch: usize,
): f32 {
  if (n >= SAMPLE << 3) {
    const found = sampledOrderStat<Stored>(x, 0, n, k, wantNext, hist, scratch);
    if (sampleHit) return found;
  }
  return histogramOrderStat(x, n, k, wantNext, hist, scratch);
}

const SAMPLE: i32 = 1 << 10;
let sampleHit = false;

// The k-th smallest of |(ca·x + cb·q) / cd| over [0, n) (the sample-first conversion of the
// parameter block's CA, CB, CD, computed on the fly as `sweep` computes it), by the sampled
// bracket alone: NaN when any element is NaN, and also NaN with `lastHit()` false when the
// bracket missed (the host then converts into memory and takes `absOrderStat`). `cd` must be
// finite and non-zero, and `n` at least 8 · 2^10.
//
// The division is left out of the pass: float32 division by |cd| rounds monotonically, so
// v ↦ fl(v / |cd|) is non-decreasing on |u| = |ca·x + cb·q| and maps the k-th smallest |u| to
// the k-th smallest |m0| (and |fl(u / cd)| = fl(|u| / |cd|), rounding being symmetric). The
// pass orders |u| and divides the one or two order statistics it returns.
export function convertedOrderStat(
  x: usize,
  q: usize,
  n: i32,
  k: i32,
  wantNext: bool,
  hist: usize,
  scratch: usize,
): f32 {
  const cd = Mathf.abs(slot<f32>(CD));
  const found = sampledOrderStat<Converted>(
    x,
    q,
    n,
    k,
    wantNext,
    hist,
    scratch,
  );
  nextBits = reinterpret<u32>(reinterpret<f32>(nextBits) / cd);
  return found / cd;
}

// Whether the last `convertedOrderStat` found its answer.
export function lastHit(): bool {
  return sampleHit;
}

// How the order statistics read element i (byte offset): |x| as stored (Stored) or
// |ca·x + cb·q| (Converted, `ca` and `cb` splat in `vca`, `vcb`), as bits.
type Stored = u8;
type Converted = u16;

function absVector<Conv>(
  x: usize,
  q: usize,
  i: usize,
  vca: v128,
  vcb: v128,
): v128 {
  const mask = i32x4.splat(ABS_MASK);
  if (same<Conv, Converted>()) {
    const u = f32x4.add(
      f32x4.mul(vca, v128.load(x + i)),
      f32x4.mul(vcb, v128.load(q + i)),
    );
    return v128.and(u, mask);
  }
  return v128.and(v128.load(x + i), mask);
}

function absScalar<Conv>(
  x: usize,
  q: usize,
  i: usize,
  ca: f32,
  cb: f32,
): u32 {
  if (same<Conv, Converted>()) {
    const u: f32 = ca * load<f32>(x + i) + cb * load<f32>(q + i);
    return reinterpret<u32>(u) & ABS_MASK;
  }
  return load<u32>(x + i) & ABS_MASK;
}

function sampledOrderStat<Conv>(
  x: usize,
  q: usize,
  n: i32,
  k: i32,
  wantNext: bool,
  hist: usize,
  scratch: usize,
): f32 {
  const ca: f32 = same<Conv, Converted>() ? slot<f32>(CA) : 0;
  const cb: f32 = same<Conv, Converted>() ? slot<f32>(CB) : 0;
  const vca = f32x4.splat(ca);
  const vcb = f32x4.splat(cb);
  // A strided sample in scratch[0:SAMPLE], its order statistics selected into the space after.
  const stride = (<usize> (n / SAMPLE)) << 2;
  for (let j = 0; j < SAMPLE; j++) {
    const bits = absScalar<Conv>(x, q, stride * <usize> j, ca, cb);
    store<u32>(scratch + ((<usize> j) << 2), bits);
  }
  const work = scratch + ((<usize> SAMPLE) << 2);
  const estimate = <i32> ((<i64> k * SAMPLE) / n);
  const spread = <i32> Math.sqrt(
    (<f64> estimate * <f64> (SAMPLE - estimate)) / <f64> SAMPLE,
  );
  const margin = 3 * spread + 8;
  let lowBits: u32 = 0;
  let highBits: u32 = INFINITY_BITS;
  if (estimate - margin > 0) {
    lowBits = select(scratch, work, SAMPLE, estimate - margin, false, hist);
  }
  if (estimate + margin + 1 < SAMPLE - 1) {
    highBits = select(
      scratch,
      work,
      SAMPLE,
      estimate + margin + 1,
      false,
      hist,
    );
  }

  // One pass, 16 elements at a time: count what lies below the bracket, append what lies in it
  // (rare: one branch per 16 elements, taken only where one of them is a candidate).
  const end = (<usize> n) << 2;
  const vend = end & ~(<usize> 63);
  let belowCount = 0;
  let anyNaN = false;
  let m = 0;
  let i: usize = 0;
  if (highBits == INFINITY_BITS) {
    // An upper quantile (the usual case): everything from the bracket up is appended, NaN
    // included (its bits lie above those of every number), and what is not appended is below.
    const vfloor = i32x4.splat(lowBits - 1);
    for (; i < vend; i += 64) {
      const b0 = absVector<Conv>(x, q, i, vca, vcb);
      const b1 = absVector<Conv>(x, q, i + 16, vca, vcb);
      const b2 = absVector<Conv>(x, q, i + 32, vca, vcb);
      const b3 = absVector<Conv>(x, q, i + 48, vca, vcb);
      const k0 = i32x4.gt_s(b0, vfloor);
      const k1 = i32x4.gt_s(b1, vfloor);
      const k2 = i32x4.gt_s(b2, vfloor);
      const k3 = i32x4.gt_s(b3, vfloor);
      if (v128.any_true(v128.or(v128.or(k0, k1), v128.or(k2, k3)))) {
        m = compact(scratch, m, b0, k0);
        m = compact(scratch, m, b1, k1);
        m = compact(scratch, m, b2, k2);
        m = compact(scratch, m, b3, k3);
      }
    }
    belowCount = (<i32> (i >> 2)) - m;
    for (let j = 0; j < m; j++) {
      if (load<u32>(scratch + ((<usize> j) << 2)) > INFINITY_BITS) {
        anyNaN = true;
      }
    }
  } else {
    const vlow = i32x4.splat(lowBits);
    const vhigh = i32x4.splat(highBits);
    let vmax = i32x4.splat(0);
    let below = i32x4.splat(0);
    for (; i < vend; i += 64) {
      const b0 = absVector<Conv>(x, q, i, vca, vcb);
      const b1 = absVector<Conv>(x, q, i + 16, vca, vcb);
      const b2 = absVector<Conv>(x, q, i + 32, vca, vcb);
      const b3 = absVector<Conv>(x, q, i + 48, vca, vcb);
      vmax = i32x4.max_s(
        vmax,
        i32x4.max_s(i32x4.max_s(b0, b1), i32x4.max_s(b2, b3)),
      );
      const u0 = i32x4.lt_s(b0, vlow);
      const u1 = i32x4.lt_s(b1, vlow);
      const u2 = i32x4.lt_s(b2, vlow);
      const u3 = i32x4.lt_s(b3, vlow);
      below = i32x4.sub(
        below,
        i32x4.add(i32x4.add(u0, u1), i32x4.add(u2, u3)),
      );
      const k0 = v128.andnot(i32x4.le_s(b0, vhigh), u0);
      const k1 = v128.andnot(i32x4.le_s(b1, vhigh), u1);
      const k2 = v128.andnot(i32x4.le_s(b2, vhigh), u2);
      const k3 = v128.andnot(i32x4.le_s(b3, vhigh), u3);
      if (v128.any_true(v128.or(v128.or(k0, k1), v128.or(k2, k3)))) {
        m = compact(scratch, m, b0, k0);
        m = compact(scratch, m, b1, k1);
        m = compact(scratch, m, b2, k2);
        m = compact(scratch, m, b3, k3);
      }
    }
    belowCount = i32x4.extract_lane(below, 0) + i32x4.extract_lane(below, 1) +
      i32x4.extract_lane(below, 2) + i32x4.extract_lane(below, 3);
    anyNaN = i32x4.extract_lane(vmax, 0) > <i32> INFINITY_BITS ||
      i32x4.extract_lane(vmax, 1) > <i32> INFINITY_BITS ||
      i32x4.extract_lane(vmax, 2) > <i32> INFINITY_BITS ||
      i32x4.extract_lane(vmax, 3) > <i32> INFINITY_BITS;
  }
  for (; i < end; i += 4) {
    const bits = absScalar<Conv>(x, q, i, ca, cb);
    if (bits > INFINITY_BITS) anyNaN = true;
    if (bits < lowBits) belowCount++;
    m = gatherRange(scratch, m, bits, lowBits, highBits);
  }
  sampleHit = true;
  if (anyNaN) return NaN;
  if (belowCount > k || belowCount + m < k + (wantNext ? 2 : 1)) {
    sampleHit = false;
    return NaN;
  }
  return reinterpret<f32>(
    select(scratch, scratch, m, k - belowCount, wantNext, hist),
  );
}

// Swizzle masks that move the lanes picked by a 4-bit mask to the front, in order (`compact`).
const COMPACT = memory.data(16 * 16, 16);
for (let pick = 0; pick < 16; pick++) {
  let to = 0;
  for (let lane = 0; lane < 4; lane++) {
    if ((pick >> lane) & 1) {
      for (let byte = 0; byte < 4; byte++) {
        store<u8>(
          COMPACT + <usize> (pick * 16 + to * 4 + byte),
          lane * 4 + byte,
        );
      }
      to++;
    }
  }
}

// Appends the lanes of `bits` whose `keep` lane is set to scratch[m:], without branches, and
// returns the new count. It writes all 4 lanes: scratch must have room for m + 4 elements.
function compact(scratch: usize, m: i32, bits: v128, keep: v128): i32 {
  const pick = i32x4.bitmask(keep);
  const moved = i8x16.swizzle(bits, v128.load(COMPACT + ((<usize> pick) << 4)));
  v128.store(scratch + ((<usize> m) << 2), moved);
  return m + popcnt(pick);
}

function gatherRange(
  scratch: usize,
  m: i32,
  bits: u32,
  lowBits: u32,
  highBits: u32,
): i32 {
  if (bits < lowBits || bits > highBits) return m;
  store<u32>(scratch + ((<usize> m) << 2), bits);
  return m + 1;
}

function histogramOrderStat(
  x: usize,
  n: i32,
  k: i32,
  wantNext: bool,
  hist: usize,
  scratch: usize,
): f32 {
  const end = (<usize> n) << 2;
  const vend = end & ~(<usize> 15);
  const mask = i32x4.splat(ABS_MASK);
  const inf = i32x4.splat(INFINITY_BITS);
  let nan = i32x4.splat(0);
  let vmin = i32x4.splat(ABS_MASK);
  let vmax = i32x4.splat(0);
  let i: usize = 0;
  for (; i < vend; i += 16) {
    const bits = v128.and(v128.load(x + i), mask);
    nan = v128.or(nan, i32x4.gt_s(bits, inf));
    vmin = i32x4.min_s(vmin, bits);
    vmax = i32x4.max_s(vmax, bits);
    const bin = i32x4.shr_u(bits, BIN_SHIFT);
    bump(hist, i32x4.extract_lane(bin, 0));
    bump(hist, i32x4.extract_lane(bin, 1));
    bump(hist, i32x4.extract_lane(bin, 2));
    bump(hist, i32x4.extract_lane(bin, 3));
  }
  let anyNaN = v128.any_true(nan);
  let minBits = min(
    min(<u32> i32x4.extract_lane(vmin, 0), <u32> i32x4.extract_lane(vmin, 1)),
    min(<u32> i32x4.extract_lane(vmin, 2), <u32> i32x4.extract_lane(vmin, 3)),
  );
  let maxBits = max(
    max(<u32> i32x4.extract_lane(vmax, 0), <u32> i32x4.extract_lane(vmax, 1)),
    max(<u32> i32x4.extract_lane(vmax, 2), <u32> i32x4.extract_lane(vmax, 3)),
  );
  for (; i < end; i += 4) {
    const bits = load<u32>(x + i) & ABS_MASK;
    if (bits > INFINITY_BITS) anyNaN = true;
    minBits = min(minBits, bits);
    maxBits = max(maxBits, bits);
    bump(hist, <i32> (bits >>> BIN_SHIFT));
  }
  const first = <i32> (minBits >>> BIN_SHIFT);
  const last = <i32> (maxBits >>> BIN_SHIFT);
  if (anyNaN) {
    clearBins(hist, first, last);
    return NaN;
  }

  // The bin holding rank k (`before` elements lie in lower bins), scanning from the nearer end,
  // and the one holding rank k + 1 (the same or the next non-empty one).
  let before = 0;
  let low = first;
  if (k < n >> 1) {
    while (before + binCount(hist, low) <= k) {
      before += binCount(hist, low);
      low++;
    }
  } else {
    let above = n;
    low = last;
    while (above - binCount(hist, low) > k) {
      above -= binCount(hist, low);
      low--;
    }
    before = above - binCount(hist, low);
  }
  let high = low;
  if (wantNext && before + binCount(hist, low) <= k + 1) {
    high = low + 1;
    while (binCount(hist, high) == 0) high++;
  }
  clearBins(hist, first, last);

  // Gather the candidates of bins [low, high] (the bins between are empty), then select.
  let m = 0;
  const lo = <u32> low;
  const span = <u32> (high - low);
  // Bins [low, high] hold the bit patterns [low << BIN_SHIFT, (high + 1) << BIN_SHIFT).
  const vlow = i32x4.splat(low << BIN_SHIFT);
  const vhigh = i32x4.splat(((high + 1) << BIN_SHIFT) - 1);
  for (i = 0; i < vend; i += 16) {
    const bits = v128.and(v128.load(x + i), mask);
    const inside = v128.andnot(
      i32x4.le_s(bits, vhigh),
      i32x4.lt_s(bits, vlow),
    );
    m = compact(scratch, m, bits, inside);
  }
  for (; i < end; i += 4) {
    m = gather(scratch, m, load<u32>(x + i) & ABS_MASK, lo, span);
  }
  return reinterpret<f32>(
    select(scratch, scratch, m, k - before, wantNext, hist),
  );
}

function gather(scratch: usize, m: i32, bits: u32, lo: u32, span: u32): i32 {
  if ((bits >>> BIN_SHIFT) - lo > span) return m;
  store<u32>(scratch + ((<usize> m) << 2), bits);
  return m + 1;
}

function clearBins(hist: usize, first: i32, last: i32): void {
  memory.fill(
    hist + ((<usize> first) << 2),
    0,
    (<usize> (last - first + 1)) << 2,
  );
}

function bump(hist: usize, bin: i32): void {
  const at = hist + ((<usize> bin) << 2);
  store<u32>(at, load<u32>(at) + 1);
}

function binCount(hist: usize, bin: i32): i32 {
  return load<i32>(hist + ((<usize> bin) << 2));
}

// The k-th smallest of src[0:n] (u32), and with `wantNext` the (k + 1)-th into `nextBits`, by
// radix selection: each round counts the values into at most 2^12 bins spanning their range
// (`hist`, zero on entry and on return), keeps the bin holding rank k and narrows the range to
// it. The kept values go to dst[0:] (which may be src: writes trail reads); src is otherwise
// unchanged. No branch depends on how values compare, as a quickselect's partition does.
function select(
  src: usize,
  dst: usize,
  n: i32,
  k: i32,
  wantNext: bool,
  hist: usize,
): u32 {
  let lo: u32 = 0xffffffff;
  let hi: u32 = 0;
  for (let j = 0; j < n; j++) {
    const v = at(src, j);
    lo = min(lo, v);
    hi = max(hi, v);
  }
  let from = src;
  while (lo != hi) {
    const shift = max<i32>(0, 32 - <i32> clz(hi - lo) - 12);
    const bins = <i32> ((hi - lo) >>> shift) + 1;
    for (let j = 0; j < n; j++) {
      bump(hist, <i32> ((at(from, j) - lo) >>> shift));
    }
    let bin = 0;
    let before = 0;
    while (before + binCount(hist, bin) <= k) {
      before += binCount(hist, bin);
      bin++;
    }
    let nextBin = bin;
    if (wantNext && before + binCount(hist, bin) == k + 1) {
      nextBin = bin + 1;
      while (binCount(hist, nextBin) == 0) nextBin++;
    }
    memory.fill(hist, 0, (<usize> bins) << 2);
    if (nextBin != bin) {
      // Rank k is the largest value of its bin and rank k + 1 the smallest of the next one.
      let found: u32 = 0;
      let next: u32 = 0xffffffff;
      for (let j = 0; j < n; j++) {
        const v = at(from, j);
        const b = <i32> ((v - lo) >>> shift);
        if (b == bin) found = max(found, v);
        if (b == nextBin) next = min(next, v);
      }
      nextBits = next;
      return found;
    }
    let kept = 0;
    for (let j = 0; j < n; j++) {
      const v = at(from, j);
      store<u32>(dst + ((<usize> kept) << 2), v);
      kept += <i32> ((v - lo) >>> shift == <u32> bin);
    }
    from = dst;
    n = kept;
    k -= before;
    lo += (<u32> bin) << shift;
    hi = min(hi, lo + ((<u32> 1 << shift) - 1));
  }
  nextBits = lo;
  return lo;
}

function at(v: usize, i: i32): u32 {
  return load<u32>(v + ((<usize> i) << 2));
}

// The benchmark's floor: one streaming pass reading what a fused step reads (sample, model
// output, `history` earlier converted outputs) and writing what it writes (the converted output
// and the result), with a few multiply-adds per element.
export function streamFloor(
  out: usize,
  converted: usize,
  x: usize,
  modelOutput: usize,
  h1: usize,
  h2: usize,
  history: i32,
  n: i32,
): void {
  const va = f32x4.splat(0.9);
  const vb = f32x4.splat(-0.1);
  const vc = f32x4.splat(0.3);
  const end = (<usize> n) << 2;
  let i: usize = 0;
  if (history >= 2) {
    for (; i < end; i += 16) {
      const vx = v128.load(x + i);
      const m0 = f32x4.add(vx, f32x4.mul(vb, v128.load(modelOutput + i)));
      v128.store(converted + i, m0);
      const d = f32x4.sub(v128.load(h1 + i), v128.load(h2 + i));
      const r = f32x4.add(f32x4.mul(va, vx), f32x4.mul(vc, f32x4.add(m0, d)));
      v128.store(out + i, r);
    }
  } else {
    for (; i < end; i += 16) {
      const vx = v128.load(x + i);
      const m0 = f32x4.add(vx, f32x4.mul(vb, v128.load(modelOutput + i)));
      v128.store(converted + i, m0);
      const d = f32x4.sub(m0, v128.load(h1 + i));
      v128.store(out + i, f32x4.add(f32x4.mul(va, vx), f32x4.mul(vc, d)));
    }
  }
}
