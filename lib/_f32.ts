// Float32 scalar arithmetic, rounded after every operation as torch rounds 0-d float32 tensors.

/** Rounds to the nearest float32. */
export const f32: (x: number) => number = Math.fround;

/** torch's float32 `exp` of a 0-d tensor (glibc `expf`, correctly rounded). */
export function expF32(x: number): number {
  return f32(Math.exp(x));
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
