// Shared fixtures of the kernel tests (tests/kernels_test.ts and the backend files): one seeded
// generator of float32 test data, multistep coefficients of every order from real noise levels,
// the model-output conversions, and the comparison every backend is held to.
import type { AlgorithmType, SolverType } from "../lib/config.ts";
import type { ModelOutputConversion } from "../lib/kernels.ts";
import {
  type MultistepCoefficients,
  multistepCoefficients,
} from "../lib/solver.ts";
import { sigmaToAlphaSigma } from "../lib/noise_schedule.ts";
import { Tensor } from "../lib/tensor.ts";

/**
 * Deterministic float32 values in [-scale, scale) from a linear congruential generator, with a
 * repeat every 7th element (ties for the quantile).
 */
export function values(
  shape: readonly number[],
  seed: number,
  scale = 3,
): Tensor {
  let state = seed >>> 0;
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const v = (state / 2 ** 32 - 0.5) * 2 * scale;
    data[i] = i % 7 === 3 ? data[i - 1]! : v;
  }
  return new Tensor(data, shape);
}

/** Noise levels for updates of every order: descending sigmas, as the forward direction steps. */
const POINTS = [0.5, 1, 1.6, 2.5].map((s) => sigmaToAlphaSigma(s, false));

/** The multistep coefficients diffusers' update of `order` uses between {@link POINTS}. */
export function coefficients(
  order: 1 | 2 | 3,
  algorithm: AlgorithmType = "dpmsolver++",
  solver: SolverType = "midpoint",
): MultistepCoefficients {
  return multistepCoefficients(order, algorithm, solver, POINTS)!;
}

/** Every algorithm type an update of `order` supports (order 3 has no SDE variant of dpmsolver). */
export function algorithmsFor(order: 1 | 2 | 3): AlgorithmType[] {
  const all: AlgorithmType[] = [
    "dpmsolver++",
    "dpmsolver",
    "sde-dpmsolver++",
    "sde-dpmsolver",
  ];
  return order === 3 ? all.filter((a) => a !== "sde-dpmsolver") : all;
}

/** One conversion of each form, with float32 coefficients. */
export const conversions: readonly ModelOutputConversion[] = [
  { form: "copy", a: 1, b: 0, d: 1 },
  {
    form: "sample-first",
    a: Math.fround(0.83),
    b: Math.fround(-0.41),
    d: Math.fround(0.77),
  },
  {
    form: "model-first",
    a: Math.fround(1.3),
    b: Math.fround(0.6),
    d: Math.fround(1.1),
  },
];

/**
 * Asserts that two tensors hold the same float32 bits element for element, any NaN matching
 * any NaN (payloads differ between engines).
 */
export function assertSameBits(
  actual: Tensor,
  expected: Tensor,
  what: string,
): void {
  if (actual.shape.join() !== expected.shape.join()) {
    throw new Error(
      `${what}: shape [${actual.shape}] differs from [${expected.shape}]`,
    );
  }
  const a = actual.contiguous().toFloat32Array();
  const e = expected.contiguous().toFloat32Array();
  const ab = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const eb = new Uint32Array(e.buffer, e.byteOffset, e.length);
  for (let i = 0; i < a.length; i++) {
    if (ab[i] === eb[i] || (Number.isNaN(a[i]) && Number.isNaN(e[i]))) continue;
    throw new Error(
      `${what}: element ${i} is ${a[i]} (0x${ab[i]!.toString(16)}), expected ${
        e[i]
      } (0x${eb[i]!.toString(16)})`,
    );
  }
}
