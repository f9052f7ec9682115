// The CPU backend's flat loops over contiguous operands: one function per kernel and, for the
// fused step, one per (order, how the converted output m0 is obtained), typed arrays and
// offsets as arguments, so that the JIT compiles each to a tight loop without branches. Each
// operation is rounded with `Math.fround` in the order of `../cpu.ts`'s strided loops.
import type { MultistepCoefficients } from "../../solver.ts";

const fround = Math.fround;

// How the fused loop gets `m0`: read from history (LOAD), converted `(ca·p + cb·q) / cd`
// (AXPBY), copied from `p` (COPY), or clamped in place `clamp(p, cb, ca) / cd` (CLAMP); all but
// LOAD store it to `conv`.
export const LOAD = 0;
export const AXPBY = 1;
export const COPY = 2;
export const CLAMP = 3;

export function axpbyFlat(
  od: Float32Array,
  po: number,
  a: number,
  xd: Float32Array,
  px: number,
  b: number,
  yd: Float32Array,
  py: number,
  d: number,
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    od[po + i] = fround(fround(a * xd[px + i]!) + fround(b * yd[py + i]!)) / d;
  }
}

export function axFlat(
  od: Float32Array,
  po: number,
  a: number,
  xd: Float32Array,
  px: number,
  d: number,
  n: number,
): void {
  for (let i = 0; i < n; i++) od[po + i] = fround(a * xd[px + i]!) / d;
}

// `x = clamp(x, -s, s) / s` in place (NaN kept, as the comparisons leave it).
export function clampFlat(
  data: Float32Array,
  at: number,
  s: number,
  n: number,
): void {
  for (let i = at, end = at + n; i < end; i++) {
    const v = data[i]!;
    data[i] = (v < -s ? -s : v > s ? s : v) / s;
  }
}

// The multistep update of `multistep` over flat ranges, with `m0` obtained per `mode` (see
// LOAD…CLAMP), then the noise term when `nd` is given. `m1`/`m2` are read at orders 2/3. One
// loop per (order, how m0 is obtained), so that each compiles without branches.
export function updateFlat(
  c: MultistepCoefficients,
  od: Float32Array,
  po: number,
  xd: Float32Array,
  px: number,
  mode: number,
  pd: Float32Array,
  pp: number,
  qd: Float32Array,
  pq: number,
  ca: number,
  cb: number,
  cd: number,
  convd: Float32Array,
  pc: number,
  m1d: Float32Array,
  p1: number,
  m2d: Float32Array,
  p2: number,
  nd: Float32Array | null,
  pn: number,
  n: number,
): void {
  const loops = mode === AXPBY
    ? AXPBY_LOOPS
    : mode === CLAMP
    ? CLAMP_LOOPS
    : READ_LOOPS;
  loops[c.order - 1]!(
    od,
    po,
    xd,
    px,
    pd,
    pp,
    qd,
    pq,
    ca,
    cb,
    cd,
    convd,
    pc,
    mode === COPY,
    m1d,
    p1,
    m2d,
    p2,
    c,
    n,
  );
  if (nd !== null && c.e !== 0) {
    const e = c.e;
    for (let i = 0; i < n; i++) {
      od[po + i] = od[po + i]! + fround(e * nd[pn + i]!);
    }
  }
}

function update1Axpby(
  od: Float32Array,
  po: number,
  xd: Float32Array,
  px: number,
  pd: Float32Array,
  pp: number,
  qd: Float32Array,
  pq: number,
  ca: number,
  cb: number,
  cd: number,
  convd: Float32Array,
  pc: number,
  _store: boolean,
  _m1d: Float32Array,
  _p1: number,
  _m2d: Float32Array,
  _p2: number,
  c: MultistepCoefficients,
  n: number,
): void {
  const { a, b } = c;
  for (let i = 0; i < n; i++) {
    const m0 = fround(
      fround(fround(ca * pd[pp + i]!) + fround(cb * qd[pq + i]!)) / cd,
    );
    const x = xd[px + i]!;
    convd[pc + i] = m0;
    od[po + i] = fround(a * x) + fround(b * m0);
  }
}

function update2Axpby(
  od: Float32Array,
  po: number,
  xd: Float32Array,
  px: number,
  pd: Float32Array,
  pp: number,
  qd: Float32Array,
  pq: number,
  ca: number,
  cb: number,
  cd: number,
  convd: Float32Array,
  pc: number,
  _store: boolean,
  m1d: Float32Array,
  p1: number,
  _m2d: Float32Array,
  _p2: number,
  c: MultistepCoefficients,
  n: number,
): void {
  const { a, b, c: cc, k0 } = c;
  for (let i = 0; i < n; i++) {
    const m0 = fround(
      fround(fround(ca * pd[pp + i]!) + fround(cb * qd[pq + i]!)) / cd,
    );
    const x = xd[px + i]!;
    const d1 = fround(k0 * fround(m0 - m1d[p1 + i]!));
    convd[pc + i] = m0;
    od[po + i] = fround(fround(a * x) + fround(b * m0)) + fround(cc * d1);
  }
}

function update3Axpby(
  od: Float32Array,
  po: number,
  xd: Float32Array,
  px: number,
  pd: Float32Array,
  pp: number,
  qd: Float32Array,
  pq: number,
  ca: number,
  cb: number,
  cd: number,
  convd: Float32Array,
  pc: number,
  _store: boolean,
  m1d: Float32Array,
  p1: number,
  m2d: Float32Array,
  p2: number,
  c: MultistepCoefficients,
  n: number,
): void {
  const { a, b, c: cc, d, k0, k1, q, k2 } = c;
  for (let i = 0; i < n; i++) {
    const m0 = fround(
      fround(fround(ca * pd[pp + i]!) + fround(cb * qd[pq + i]!)) / cd,
    );
    const x = xd[px + i]!;
    const m1 = m1d[p1 + i]!;
    const d10 = fround(k0 * fround(m0 - m1));
    const d11 = fround(k1 * fround(m1 - m2d[p2 + i]!));
    const diff = fround(d10 - d11);
    const d1 = fround(d10 + fround(q * diff));
    const d2 = fround(k2 * diff);
    convd[pc + i] = m0;
    od[po + i] =
      fround(fround(fround(a * x) + fround(b * m0)) + fround(cc * d1)) +
      fround(d * d2);
  }
}

function update1Read(
  od: Float32Array,
  po: number,
  xd: Float32Array,
  px: number,
  pd: Float32Array,
  pp: number,
  _qd: Float32Array,
  _pq: number,
  _ca: number,
  _cb: number,
  _cd: number,
  convd: Float32Array,
  pc: number,
  store: boolean,
  _m1d: Float32Array,
  _p1: number,
  _m2d: Float32Array,
  _p2: number,
  c: MultistepCoefficients,
  n: number,
): void {
  const { a, b } = c;
  for (let i = 0; i < n; i++) {
    const m0 = pd[pp + i]!;
    const x = xd[px + i]!;
    if (store) convd[pc + i] = m0;
    od[po + i] = fround(a * x) + fround(b * m0);
  }
}

function update2Read(
  od: Float32Array,
  po: number,
  xd: Float32Array,
  px: number,
  pd: Float32Array,
  pp: number,
  _qd: Float32Array,
  _pq: number,
  _ca: number,
  _cb: number,
  _cd: number,
  convd: Float32Array,
  pc: number,
  store: boolean,
  m1d: Float32Array,
  p1: number,
  _m2d: Float32Array,
  _p2: number,
  c: MultistepCoefficients,
  n: number,
): void {
  const { a, b, c: cc, k0 } = c;
  for (let i = 0; i < n; i++) {
    const m0 = pd[pp + i]!;
    const x = xd[px + i]!;
    const d1 = fround(k0 * fround(m0 - m1d[p1 + i]!));
    if (store) convd[pc + i] = m0;
    od[po + i] = fround(fround(a * x) + fround(b * m0)) + fround(cc * d1);
  }
}

function update3Read(
  od: Float32Array,
  po: number,
  xd: Float32Array,
  px: number,
  pd: Float32Array,
  pp: number,
  _qd: Float32Array,
  _pq: number,
  _ca: number,
  _cb: number,
  _cd: number,
  convd: Float32Array,
  pc: number,
  store: boolean,
  m1d: Float32Array,
  p1: number,
  m2d: Float32Array,
  p2: number,
  c: MultistepCoefficients,
  n: number,
): void {
  const { a, b, c: cc, d, k0, k1, q, k2 } = c;
  for (let i = 0; i < n; i++) {
    const m0 = pd[pp + i]!;
    const x = xd[px + i]!;
    const m1 = m1d[p1 + i]!;
    const d10 = fround(k0 * fround(m0 - m1));
    const d11 = fround(k1 * fround(m1 - m2d[p2 + i]!));
    const diff = fround(d10 - d11);
    const d1 = fround(d10 + fround(q * diff));
    const d2 = fround(k2 * diff);
    if (store) convd[pc + i] = m0;
    od[po + i] =
      fround(fround(fround(a * x) + fround(b * m0)) + fround(cc * d1)) +
      fround(d * d2);
  }
}

function update1Clamp(
  od: Float32Array,
  po: number,
  xd: Float32Array,
  px: number,
  pd: Float32Array,
  pp: number,
  _qd: Float32Array,
  _pq: number,
  ca: number,
  cb: number,
  cd: number,
  convd: Float32Array,
  pc: number,
  _store: boolean,
  _m1d: Float32Array,
  _p1: number,
  _m2d: Float32Array,
  _p2: number,
  c: MultistepCoefficients,
  n: number,
): void {
  const { a, b } = c;
  for (let i = 0; i < n; i++) {
    const v = pd[pp + i]!;
    const m0 = fround((v < cb ? cb : v > ca ? ca : v) / cd);
    const x = xd[px + i]!;
    convd[pc + i] = m0;
    od[po + i] = fround(a * x) + fround(b * m0);
  }
}

function update2Clamp(
  od: Float32Array,
  po: number,
  xd: Float32Array,
  px: number,
  pd: Float32Array,
  pp: number,
  _qd: Float32Array,
  _pq: number,
  ca: number,
  cb: number,
  cd: number,
  convd: Float32Array,
  pc: number,
  _store: boolean,
  m1d: Float32Array,
  p1: number,
  _m2d: Float32Array,
  _p2: number,
  c: MultistepCoefficients,
  n: number,
): void {
  const { a, b, c: cc, k0 } = c;
  for (let i = 0; i < n; i++) {
    const v = pd[pp + i]!;
    const m0 = fround((v < cb ? cb : v > ca ? ca : v) / cd);
    const x = xd[px + i]!;
    const d1 = fround(k0 * fround(m0 - m1d[p1 + i]!));
    convd[pc + i] = m0;
    od[po + i] = fround(fround(a * x) + fround(b * m0)) + fround(cc * d1);
  }
}

function update3Clamp(
  od: Float32Array,
  po: number,
  xd: Float32Array,
  px: number,
  pd: Float32Array,
  pp: number,
  _qd: Float32Array,
  _pq: number,
  ca: number,
  cb: number,
  cd: number,
  convd: Float32Array,
  pc: number,
  _store: boolean,
  m1d: Float32Array,
  p1: number,
  m2d: Float32Array,
  p2: number,
  c: MultistepCoefficients,
  n: number,
): void {
  const { a, b, c: cc, d, k0, k1, q, k2 } = c;
  for (let i = 0; i < n; i++) {
    const v = pd[pp + i]!;
    const m0 = fround((v < cb ? cb : v > ca ? ca : v) / cd);
    const x = xd[px + i]!;
    const m1 = m1d[p1 + i]!;
    const d10 = fround(k0 * fround(m0 - m1));
    const d11 = fround(k1 * fround(m1 - m2d[p2 + i]!));
    const diff = fround(d10 - d11);
    const d1 = fround(d10 + fround(q * diff));
    const d2 = fround(k2 * diff);
    convd[pc + i] = m0;
    od[po + i] =
      fround(fround(fround(a * x) + fround(b * m0)) + fround(cc * d1)) +
      fround(d * d2);
  }
}

const AXPBY_LOOPS = [update1Axpby, update2Axpby, update3Axpby];
const READ_LOOPS = [update1Read, update2Read, update3Read];
const CLAMP_LOOPS = [update1Clamp, update2Clamp, update3Clamp];
