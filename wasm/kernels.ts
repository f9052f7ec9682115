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
// the values do. A strided sample brackets the wanted ranks and one SIMD pass counts what lies
// below the bracket and gathers what lies in it (Floyd–Rivest); when the bracket misses, a radix
// histogram (bins of the top 12 bits of |x|) finds the bin instead. Either way the answer is
// exact: only the speed depends on the data.
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

const SAMPLE: i32 = 1 << 12;
let sampleHit = false;

// The k-th smallest of |(ca·x + cb·q) / cd| over [0, n) (the sample-first conversion of the
// parameter block's CA, CB, CD, computed on the fly as `sweep` computes it), by the sampled
// bracket alone: NaN when any element is NaN, and also NaN with `lastHit()` false when the
// bracket missed (the host then converts into memory and takes `absOrderStat`). `n` must be at
// least 8 · 2^12.
export function convertedOrderStat(
  x: usize,
  q: usize,
  n: i32,
  k: i32,
  wantNext: bool,
  sample: usize,
  scratch: usize,
): f32 {
  return sampledOrderStat<Converted>(x, q, n, k, wantNext, sample, scratch);
}

// Whether the last `convertedOrderStat` found its answer.
export function lastHit(): bool {
  return sampleHit;
}

// How the order statistics read element i (byte offset): |x| as stored (Stored) or
// |(ca·x + cb·q) / cd| (Converted), as bits.
type Stored = u8;
type Converted = u16;

// @ts-ignore: decorator
function absVector<Conv>(x: usize, q: usize, i: usize): v128 {
  const mask = i32x4.splat(ABS_MASK);
  if (same<Conv, Converted>()) {
    const ca = f32x4.splat(slot<f32>(CA));
    const cb = f32x4.splat(slot<f32>(CB));
    const cd = f32x4.splat(slot<f32>(CD));
    const m = f32x4.div(
      f32x4.add(
        f32x4.mul(ca, v128.load(x + i)),
        f32x4.mul(cb, v128.load(q + i)),
      ),
      cd,
    );
    return v128.and(m, mask);
  }
  return v128.and(v128.load(x + i), mask);
}

// @ts-ignore: decorator
function absScalar<Conv>(x: usize, q: usize, i: usize): u32 {
  if (same<Conv, Converted>()) {
    const m: f32 = (slot<f32>(CA) * load<f32>(x + i) +
      slot<f32>(CB) * load<f32>(q + i)) / slot<f32>(CD);
    return reinterpret<u32>(m) & ABS_MASK;
  }
  return load<u32>(x + i) & ABS_MASK;
}

function sampledOrderStat<Conv>(
  x: usize,
  q: usize,
  n: i32,
  k: i32,
  wantNext: bool,
  sample: usize,
  scratch: usize,
): f32 {
  // The sample goes where the histogram lives (2^12 u32 either way), which is zeroed again after.
  const stride = (<usize> (n / SAMPLE)) << 2;
  for (let j = 0; j < SAMPLE; j++) {
    const bits = absScalar<Conv>(x, q, stride * <usize> j);
    store<u32>(sample + ((<usize> j) << 2), bits);
  }
  const estimate = <i32> ((<i64> k * SAMPLE) / n);
  const spread = <i32> Math.sqrt(
    (<f64> estimate * <f64> (SAMPLE - estimate)) / <f64> SAMPLE,
  );
  const margin = 3 * spread + 8;
  let lowBits: u32 = 0;
  let highBits: u32 = INFINITY_BITS;
  if (estimate - margin > 0) {
    lowBits = select(sample, SAMPLE, estimate - margin);
  }
  if (estimate + margin + 1 < SAMPLE - 1) {
    highBits = select(sample, SAMPLE, estimate + margin + 1);
  }
  memory.fill(sample, 0, (<usize> SAMPLE) << 2);

  const end = (<usize> n) << 2;
  const vend = end & ~(<usize> 15);
  const inf = i32x4.splat(INFINITY_BITS);
  const vlow = i32x4.splat(lowBits);
  const vhigh = i32x4.splat(highBits);
  let nan = i32x4.splat(0);
  let below = i32x4.splat(0);
  let m = 0;
  let i: usize = 0;
  if (highBits == INFINITY_BITS) {
    // An upper quantile (the usual case): what is not below the bracket is gathered, and NaN,
    // above every bracket, is caught among the gathered.
    nanSeen = false;
    for (; i < vend; i += 16) {
      const bits = absVector<Conv>(x, q, i);
      const under = i32x4.lt_s(bits, vlow);
      below = i32x4.sub(below, under);
      if (!i32x4.all_true(under)) m = gatherUpper(scratch, m, bits, lowBits);
    }
    if (nanSeen) nan = i32x4.splat(-1);
  } else {
    for (; i < vend; i += 16) {
      const bits = absVector<Conv>(x, q, i);
      nan = v128.or(nan, i32x4.gt_s(bits, inf));
      const under = i32x4.lt_s(bits, vlow);
      below = i32x4.sub(below, under);
      const inside = v128.andnot(i32x4.le_s(bits, vhigh), under);
      if (v128.any_true(inside)) m = gatherLanes(scratch, m, bits, inside);
    }
  }
  let belowCount = i32x4.extract_lane(below, 0) + i32x4.extract_lane(below, 1) +
    i32x4.extract_lane(below, 2) + i32x4.extract_lane(below, 3);
  let anyNaN = v128.any_true(nan);
  for (; i < end; i += 4) {
    const bits = absScalar<Conv>(x, q, i);
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
  return selectFrom(scratch, m, k - belowCount, wantNext);
}

let nanSeen = false;

// Appends the lanes of `bits` at or above `lowBits`, without branches; notes a NaN.
function gatherUpper(scratch: usize, m: i32, bits: v128, lowBits: u32): i32 {
  const b0 = <u32> i32x4.extract_lane(bits, 0);
  const b1 = <u32> i32x4.extract_lane(bits, 1);
  const b2 = <u32> i32x4.extract_lane(bits, 2);
  const b3 = <u32> i32x4.extract_lane(bits, 3);
  if (max(max(b0, b1), max(b2, b3)) > INFINITY_BITS) nanSeen = true;
  store<u32>(scratch + ((<usize> m) << 2), b0);
  m += <i32> (b0 >= lowBits);
  store<u32>(scratch + ((<usize> m) << 2), b1);
  m += <i32> (b1 >= lowBits);
  store<u32>(scratch + ((<usize> m) << 2), b2);
  m += <i32> (b2 >= lowBits);
  store<u32>(scratch + ((<usize> m) << 2), b3);
  return m + <i32> (b3 >= lowBits);
}

// Appends the lanes of `bits` whose `inside` lane is set, without branches.
function gatherLanes(scratch: usize, m: i32, bits: v128, inside: v128): i32 {
  store<i32>(scratch + ((<usize> m) << 2), i32x4.extract_lane(bits, 0));
  m += i32x4.extract_lane(inside, 0) & 1;
  store<i32>(scratch + ((<usize> m) << 2), i32x4.extract_lane(bits, 1));
  m += i32x4.extract_lane(inside, 1) & 1;
  store<i32>(scratch + ((<usize> m) << 2), i32x4.extract_lane(bits, 2));
  m += i32x4.extract_lane(inside, 2) & 1;
  store<i32>(scratch + ((<usize> m) << 2), i32x4.extract_lane(bits, 3));
  return m + (i32x4.extract_lane(inside, 3) & 1);
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

// The rank-th smallest of scratch[0:m], and with `wantNext` the next one into `nextBits`.
function selectFrom(scratch: usize, m: i32, rank: i32, wantNext: bool): f32 {
  const found = select(scratch, m, rank);
  if (wantNext) {
    // After selecting `rank`, the next order statistic is the minimum of what lies above it.
    let next: u32 = 0xffffffff;
    for (let j = rank + 1; j < m; j++) {
      const v = load<u32>(scratch + ((<usize> j) << 2));
      if (v < next) next = v;
    }
    nextBits = next;
  }
  return reinterpret<f32>(found);
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
    if (v128.any_true(inside)) m = gatherLanes(scratch, m, bits, inside);
  }
  for (; i < end; i += 4) {
    m = gather(scratch, m, load<u32>(x + i) & ABS_MASK, lo, span);
  }
  return selectFrom(scratch, m, k - before, wantNext);
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

// Quickselect (Hoare partition, median of three) over u32: afterwards element k is the k-th
// smallest, those before it are ≤ it and those after ≥ it.
function select(v: usize, n: i32, k: i32): u32 {
  let lo = 0;
  let hi = n - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    if (at(v, mid) < at(v, lo)) swap(v, mid, lo);
    if (at(v, hi) < at(v, lo)) swap(v, hi, lo);
    if (at(v, hi) < at(v, mid)) swap(v, hi, mid);
    const pivot = at(v, mid);
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (at(v, i) < pivot) i++;
      while (at(v, j) > pivot) j--;
      if (i <= j) {
        swap(v, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return at(v, k);
}

function at(v: usize, i: i32): u32 {
  return load<u32>(v + ((<usize> i) << 2));
}

function swap(v: usize, i: i32, j: i32): void {
  const a = v + ((<usize> i) << 2);
  const b = v + ((<usize> j) << 2);
  const t = load<u32>(a);
  store<u32>(a, load<u32>(b));
  store<u32>(b, t);
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
