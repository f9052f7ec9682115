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

/** torch's float32 `log` of a 0-d tensor (glibc `logf`, correctly rounded). */
export function logF32(x: number): number {
  return f32(Math.log(x));
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
