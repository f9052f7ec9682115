// Float32 scalar arithmetic, rounded after every operation as torch rounds 0-d float32 tensors.

/** Rounds to the nearest float32. */
export const f32: (x: number) => number = Math.fround;

// SLEEF's expf_u10 (AVX2, fused multiply-adds), which torch 1.13 uses for float32 `exp` even on
// 0-d tensors; it is not correctly rounded (e.g. exp(0x1.31ed18p-1)), so `fround(Math.exp(x))`
// would move some steps by an ulp.
const R_LN2 = f32(
  1.442695040888963407359924681001892137426645954152985934135449406931,
);
const L2U = f32(0.693145751953125);
const L2L = f32(1.428606765330187045e-06);
const EXP_POLY = [
  0.000198527617612853646278381,
  0.00139304355252534151077271,
  0.00833336077630519866943359,
  0.0416664853692054748535156,
  0.166666671633720397949219,
  0.5,
].map(f32);

/** torch's float32 `exp` (SLEEF `expf_u10`), bit for bit. */
export function expF32(d: number): number {
  if (d < -104) return 0;
  if (d > 100) return Infinity;
  if (d !== d) return NaN;
  const q = roundHalfEvenInt(f32(d * R_LN2));
  let s = fmaF32(q, -L2U, d);
  s = fmaF32(q, -L2L, s);
  let u = EXP_POLY[0]!;
  for (let k = 1; k < EXP_POLY.length; k++) u = fmaF32(u, s, EXP_POLY[k]!);
  u = f32(1 + fmaF32(f32(s * s), u, s));
  return f32(u * 2 ** q);
}

function roundHalfEvenInt(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// SLEEF's logf_u1 (AVX2, double-float arithmetic with fused multiply-adds), torch 1.13's float32
// `log`; it is not correctly rounded either (e.g. log(0.72393739f)).
const FLT_MIN = 1.1754943508222875e-38;
const LN2_HI = f32(0.69314718246459960938);
const LN2_LO = f32(-1.904654323148236017e-09);
const LOG_POLY = [0.3027294874, 0.3996108174, 0.666669488].map(f32);
const logBits = new Uint32Array(1);
const logFloat = new Float32Array(logBits.buffer);

/** torch's float32 `log` (SLEEF `logf_u1`), bit for bit. */
export function logF32(d: number): number {
  if (d !== d || d < 0) return NaN;
  if (d === 0) return -Infinity;
  if (d === Infinity) return Infinity;
  const subnormal = d < FLT_MIN;
  const x = subnormal ? f32(d * 18446744073709551616) : d;
  logFloat[0] = f32(x * f32(1 / 0.75));
  let e = ((logBits[0]! >>> 23) & 0xff) - 0x7f;
  logFloat[0] = x;
  logBits[0] = logBits[0]! + ((-e << 23) >>> 0);
  const m = logFloat[0]!;
  if (subnormal) e -= 64;
  // s = e·ln2 as a float pair; q = (m − 1) / (m + 1) as a float pair.
  let sHi = f32(LN2_HI * e);
  let sLo = fmaF32(LN2_LO, e, fmaF32(LN2_HI, e, -sHi));
  const [nHi, nLo] = twoSum(-1, m);
  const [dHi, dLo] = twoSum(1, m);
  const t0 = f32(1 / dHi);
  const qHi = f32(nHi * t0);
  const u = fmaF32(t0, nHi, -qHi);
  const v = fmaF32(-dLo, t0, fmaF32(-dHi, t0, 1));
  const qLo = fmaF32(qHi, v, fmaF32(nLo, t0, u));
  const q2 = f32(qHi * qHi);
  let t = LOG_POLY[0]!;
  t = fmaF32(t, q2, LOG_POLY[1]!);
  t = fmaF32(t, q2, LOG_POLY[2]!);
  // s += 2q (pair add), then s += q³·t.
  const twoQHi = f32(qHi * 2);
  const twoQLo = f32(qLo * 2);
  let hi = f32(sHi + twoQHi);
  sLo = f32(f32(f32(f32(sHi - hi) + twoQHi) + sLo) + twoQLo);
  sHi = hi;
  const tail = f32(f32(q2 * qHi) * t);
  hi = f32(sHi + tail);
  sLo = f32(f32(f32(sHi - hi) + tail) + sLo);
  return f32(hi + sLo);
}

function twoSum(x: number, y: number): [number, number] {
  const s = f32(x + y);
  const v = f32(s - x);
  return [s, f32(f32(x - f32(s - v)) + f32(y - v))];
}

/** torch's float32 `sqrt` (`x ** 0.5`), correctly rounded. */
export function sqrtF32(x: number): number {
  return f32(Math.sqrt(x));
}

/**
 * Fused multiply-add `a·b + c` rounded once to float32, for float32 `a`, `b`, `c`.
 *
 * `a·b` is exact in float64; the sum is made exact with TwoSum so the final rounding to float32
 * is a single rounding, as in the hardware FMA that GCC contracts `base + i * step` into.
 */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const bb = s - p;
  const err = (p - (s - bb)) + (c - bb);
  const r = f32(s);
  if (err === 0 || r === s) return r;
  // s lies between two floats; a tie at float32 precision is broken by the residual's sign.
  const other = f32(r < s ? nextUp(r) : nextDown(r));
  if (Math.abs(other - s) !== Math.abs(r - s)) return r;
  return (err > 0) === (other > r) ? other : r;
}

const scratch = new Float32Array(1);
const scratchBits = new Int32Array(scratch.buffer);

function nextUp(x: number): number {
  scratch[0] = x;
  if (x === 0) return 1.401298464324817e-45;
  scratchBits[0]! += x > 0 ? 1 : -1;
  return scratch[0]!;
}

function nextDown(x: number): number {
  return -nextUp(-x);
}

/** torch's float32 `lerp`: the form depends on which side of 0.5 the weight is, for accuracy at both ends. */
export function lerpF32(start: number, end: number, weight: number): number {
  const diff = f32(end - start);
  return Math.abs(weight) < 0.5
    ? f32(start + f32(weight * diff))
    : f32(end - f32(diff * f32(1 - weight)));
}

/**
 * The fractional rank of `torch.quantile(values, q)` among `count` sorted values, in float32:
 * the result lies between order statistics `trunc(rank)` and the next, at weight
 * `f32(rank − trunc(rank))`.
 */
export function quantileRank(q: number, count: number): number {
  return f32(f32(q) * (count - 1));
}
