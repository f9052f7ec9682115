// NumPy 1.24's float32 `np.log` (its AVX2/AVX-512F kernel), bit for bit. diffusers' `_sigma_to_t`
// reads `np.log` of float32 sigmas, and this kernel differs from the correctly rounded logarithm in
// about one value in five; at the ends of a schedule that decides whether a timestep truncates to
// 999 or 998.
import { f32, fmaF32 } from "./_f32.ts";

const bits = new Uint32Array(1);
const asFloat = new Float32Array(bits.buffer);

function fromBits(b: number): number {
  bits[0] = b;
  return asFloat[0]!;
}

// Rational minimax coefficients of NumPy's kernel, P0..P5 and Q0..Q5, as float32 bit patterns.
const P = [
  0x00000000,
  0x3f800000,
  0x4007361c,
  0x3fbd70a9,
  0x3ec30333,
  0x3cd42bcd,
].map(fromBits);
const Q = [
  0x3f800000,
  0x4027361c,
  0x401cfe0d,
  0x3f7c8ae4,
  0x3e1e5bf3,
  0x3bc083df,
].map(fromBits);
const LN2 = fromBits(0x3f317218);
const SQRT1_2 = fromBits(0x3f3504f3);

/** `np.log` of a positive normal float32 `x`, as NumPy 1.24 computes it on x86-64. */
export function numpyLogF32(x: number): number {
  if (Number.isNaN(x) || x < 0) return NaN;
  if (x === 0) return -Infinity;
  if (x === Infinity) return Infinity;
  asFloat[0] = x;
  const b = bits[0]!;
  let exponent = (b >>> 23) - 126;
  let m = fromBits((b & 0x007fffff) | 0x3f000000);
  if (m <= SQRT1_2) {
    m = f32(m + m);
    exponent -= 1;
  }
  const y = f32(m - 1);
  let num = fmaF32(P[5]!, y, P[4]!);
  let den = fmaF32(Q[5]!, y, Q[4]!);
  for (let k = 3; k >= 0; k--) {
    num = fmaF32(num, y, P[k]!);
    den = fmaF32(den, y, Q[k]!);
  }
  return fmaF32(exponent, LN2, f32(num / den));
}
