// The parameter block of the kernels' `sweep` (wasm/kernels.ts): 24 words in the module's
// memory, written before each call: operands as byte pointers and a count, then float32
// coefficients of the conversion and the update.
import type { MultistepCoefficients } from "../../solver.ts";

// Conversion modes and parameter-block slots (4 bytes each) of the kernels' `sweep`
// (wasm/kernels.ts).
export const MODE = {
  axpby: 0,
  ax: 1,
  "sample-first": 2,
  "model-first": 3,
  copy: 4,
  clamp: 5,
  load: 6,
  sampleFirstClamp: 7,
} as const;
const SLOT = {
  out: 0,
  conv: 1,
  x: 2,
  p: 3,
  q: 4,
  m1: 5,
  m2: 6,
  noise: 7,
  n: 8,
  ca: 9,
  cb: 10,
  cd: 11,
  a: 12,
  b: 13,
  c: 14,
  k0: 15,
  d: 16,
  k1: 17,
  qq: 18,
  k2: 19,
  e: 20,
  lo: 21,
  hi: 22,
  s: 23,
} as const;
export const PARAM_WORDS = 24;

/** Typed views of the parameter block at byte `at` of `buffer` (made anew when it detaches). */
export class ParamBlock {
  /** The block as pointers and count. */
  readonly words: Uint32Array;
  /** The block as float32 coefficients. */
  readonly floats: Float32Array;

  constructor(buffer: ArrayBuffer, at: number) {
    this.words = new Uint32Array(buffer, at, PARAM_WORDS);
    this.floats = new Float32Array(buffer, at, PARAM_WORDS);
  }

  // A sweep's byte pointers (0 where unused) and element count, into the parameter block.
  setOperands(
    out: number,
    conv: number,
    x: number,
    p: number,
    q: number,
    m1: number,
    m2: number,
    noise: number,
    n: number,
  ): void {
    const words = this.words;
    words[SLOT.out] = out;
    words[SLOT.conv] = conv;
    words[SLOT.x] = x;
    words[SLOT.p] = p;
    words[SLOT.q] = q;
    words[SLOT.m1] = m1;
    words[SLOT.m2] = m2;
    words[SLOT.noise] = noise;
    words[SLOT.n] = n;
  }

  // The conversion's `(ca·p + cb·q) / cd` (float32 values, checked by the caller).
  setConversion(ca: number, cb: number, cd: number): void {
    const floats = this.floats;
    floats[SLOT.ca] = ca;
    floats[SLOT.cb] = cb;
    floats[SLOT.cd] = cd;
  }

  // The update's coefficients (float32 values, checked by the caller); `e` only with noise.
  setUpdate(c: MultistepCoefficients, withNoise: boolean): void {
    const floats = this.floats;
    floats[SLOT.a] = c.a;
    floats[SLOT.b] = c.b;
    floats[SLOT.c] = c.c;
    floats[SLOT.k0] = c.k0;
    floats[SLOT.d] = c.d;
    floats[SLOT.k1] = c.k1;
    floats[SLOT.qq] = c.q;
    floats[SLOT.k2] = c.k2;
    floats[SLOT.e] = withNoise ? c.e : 0;
  }

  // The clamp of a sample-first thresholded sweep: `clamp(m0, -s, s) / s`.
  setClamp(s: number): void {
    const floats = this.floats;
    floats[SLOT.lo] = -s;
    floats[SLOT.hi] = s;
    floats[SLOT.s] = s;
  }
}
