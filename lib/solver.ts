/**
 * DPM-Solver and DPM-Solver++ multistep updates as coefficients: each update is
 * `a·x + b·D0 (+ c·D1 (+ d·D2)) (+ e·noise)`, with the differences D1, D2 formed from the model
 * output history by `k0`, `k1`, `q`, `k2`; the model-output conversion as the coefficients of
 * one `(a·x + b·y) / d`; and the choice of order. The scalars are computed here once, in float32
 * as diffusers' 0-d tensors are; the tensor work is one kernel call. This file is the only home
 * of the update and conversion formulas, shared by every scheduler and backend.
 *
 * @module
 */
import { expF32, f32, sqrtF32 } from "./_f32.ts";
import type { AlgorithmType, PredictionType, SolverType } from "./config.ts";
import { type AlphaSigma, lambdaOf } from "./noise_schedule.ts";

/**
 * Coefficients of one multistep update, applied element-wise in this order, each operation
 * rounded to float32 (diffusers' order of operations):
 *
 * - order 1: `x' = a·x + b·m0`
 * - order 2: `D1 = k0·(m0 − m1)`, `x' = (a·x + b·m0) + c·D1`
 * - order 3: `D1_0 = k0·(m0 − m1)`, `D1_1 = k1·(m1 − m2)`, `D1 = D1_0 + q·(D1_0 − D1_1)`,
 *   `D2 = k2·(D1_0 − D1_1)`, `x' = ((a·x + b·m0) + c·D1) + d·D2`
 * - SDE variants then add `e·noise`.
 *
 * `m0` is the newest converted model output.
 */
export interface MultistepCoefficients {
  /** Number of model outputs the update reads. */
  readonly order: 1 | 2 | 3;
  /** Sample coefficient. */
  readonly a: number;
  /** D0 coefficient. */
  readonly b: number;
  /** D1 coefficient (order ≥ 2). */
  readonly c: number;
  /** D2 coefficient (order 3). */
  readonly d: number;
  /** Noise coefficient (SDE variants), else 0. */
  readonly e: number;
  /** `1 / r0`. */
  readonly k0: number;
  /** `1 / r1` (order 3). */
  readonly k1: number;
  /** `r0 / (r0 + r1)` (order 3). */
  readonly q: number;
  /** `1 / (r0 + r1)` (order 3). */
  readonly k2: number;
}

/**
 * Noise levels an update spans: `[t, s0, s1, s2]`, the target first, then the current level and
 * the earlier ones the history was converted at (as many as the order needs).
 */
export type UpdatePoints = readonly AlphaSigma[];

/**
 * The coefficients of a first-, second- or third-order multistep update from `points[1]` to
 * `points[0]`, or `null` for a zero-length step (h = 0), which leaves the sample unchanged. The
 * result's `order` is lower than asked when an earlier interval has zero length (a repeated
 * timestep): the update then reads only the newest `order` outputs. `lambdas`, when given, are
 * `lambdaOf` of the points, already computed by the caller (a scheduler caches them per schedule).
 *
 * @example DDIM-equivalent first-order DPM-Solver++ step
 * ```ts
 * import { multistepCoefficients } from "./solver.ts";
 * import { sigmaToAlphaSigma } from "./noise_schedule.ts";
 * import assert from "node:assert/strict";
 *
 * const t = sigmaToAlphaSigma(2, false);
 * const s = sigmaToAlphaSigma(1, false);
 * const c = multistepCoefficients(1, "dpmsolver++", "midpoint", [t, s])!;
 * // x_t = (sigma_t / sigma_s)·x + alpha_t·(1 − e^(−h))·x0, with e^(−h) = alpha_s·sigma_t / (sigma_s·alpha_t)
 * assert.ok(Math.abs(c.a - t.sigmaT / s.sigmaT) < 1e-6);
 * const expMinusH = (s.alphaT * t.sigmaT) / (s.sigmaT * t.alphaT);
 * assert.ok(Math.abs(c.b / t.alphaT - (1 - expMinusH)) < 1e-6);
 * ```
 */
export function multistepCoefficients(
  order: 1 | 2 | 3,
  algorithm: AlgorithmType,
  solver: SolverType,
  points: UpdatePoints,
  lambdas?: readonly number[],
): MultistepCoefficients | null {
  const [t, s0, s1, s2] = points;
  const lambdaT = lambdas?.[0] ?? lambdaOf(t!);
  const lambdaS0 = lambdas?.[1] ?? lambdaOf(s0!);
  const h = f32(lambdaT - lambdaS0);
  if (h === 0) return null;
  const { alphaT, sigmaT } = t!;
  const sde = algorithm === "sde-dpmsolver" || algorithm === "sde-dpmsolver++";
  const dataPrediction = isDataPrediction(algorithm);

  // Shared exponential terms: DPM-Solver++ (arXiv:2211.01095) integrates in -h, DPM-Solver
  // (arXiv:2206.00927) in +h; the SDE++ variant integrates in -2h.
  const expMinusH = expF32(-h);
  const expH = expF32(h);
  const twoH = f32(2 * h);
  const oneMinusExpM2H = f32(1 - expF32(-twoH));
  let a: number;
  let b: number;
  let e = 0;
  if (algorithm === "dpmsolver++") {
    a = f32(sigmaT / s0!.sigmaT);
    b = -f32(alphaT * f32(expMinusH - 1));
  } else if (algorithm === "dpmsolver") {
    a = f32(alphaT / s0!.alphaT);
    b = -f32(sigmaT * f32(expH - 1));
  } else if (algorithm === "sde-dpmsolver++") {
    a = f32(f32(sigmaT / s0!.sigmaT) * expMinusH);
    b = f32(alphaT * oneMinusExpM2H);
    e = f32(sigmaT * sqrtF32(oneMinusExpM2H));
  } else {
    a = f32(alphaT / s0!.alphaT);
    b = -f32(2 * f32(sigmaT * f32(expH - 1)));
    e = f32(sigmaT * sqrtF32(f32(expF32(twoH) - 1)));
  }
  const none = { c: 0, d: 0, k0: 0, k1: 0, q: 0, k2: 0 };
  if (order === 1) return { order, a, b, e, ...none };

  const lambdaS1 = lambdas?.[2] ?? lambdaOf(s1!);
  const h0 = f32(lambdaS0 - lambdaS1);
  // A zero-length previous step (a repeated timestep) leaves no slope to extrapolate: diffusers
  // divides by r0 = 0 and returns NaN; the lower-order update is what the history supports.
  if (h0 === 0) {
    return multistepCoefficients(1, algorithm, solver, points, lambdas);
  }
  const r0 = f32(h0 / h);
  const k0 = f32(1 / r0);
  // phi-type terms of the D1 coefficient: (e^{∓h} − 1)/h ± 1.
  const phiPlusPlus = f32(f32(f32(expMinusH - 1) / h) + 1);
  const phiDpm = f32(f32(f32(expH - 1) / h) - 1);

  if (order === 2) {
    let c: number;
    const midpoint = solver === "midpoint";
    if (algorithm === "dpmsolver++") {
      c = midpoint ? 0.5 * b : f32(alphaT * phiPlusPlus);
    } else if (algorithm === "dpmsolver") {
      c = midpoint ? 0.5 * b : -f32(sigmaT * phiDpm);
    } else if (algorithm === "sde-dpmsolver++") {
      c = midpoint
        ? 0.5 * b
        : f32(alphaT * f32(f32(oneMinusExpM2H / -twoH) + 1));
    } else {
      c = midpoint ? 0.5 * b : -f32(2 * f32(sigmaT * phiDpm));
    }
    return { order, a, b, c, e, d: 0, k0, k1: 0, q: 0, k2: 0 };
  }

  const lambdaS2 = lambdas?.[3] ?? lambdaOf(s2!);
  const h1 = f32(lambdaS1 - lambdaS2);
  if (h1 === 0) {
    return multistepCoefficients(2, algorithm, solver, points, lambdas);
  }
  const r1 = f32(h1 / h);
  const k1 = f32(1 / r1);
  const rSum = f32(r0 + r1);
  const q = f32(r0 / rSum);
  const k2 = f32(1 / rSum);
  const hSquared = f32(h * h);
  let c: number;
  let d: number;
  if (dataPrediction && !sde) {
    c = f32(alphaT * phiPlusPlus);
    d = -f32(alphaT * f32(f32(f32(f32(expMinusH - 1) + h) / hSquared) - 0.5));
  } else if (!sde) {
    c = -f32(sigmaT * phiDpm);
    d = -f32(sigmaT * f32(f32(f32(f32(expH - 1) - h) / hSquared) - 0.5));
  } else if (dataPrediction) {
    c = f32(alphaT * f32(f32(oneMinusExpM2H / -twoH) + 1));
    d = f32(
      alphaT * f32(f32(f32(oneMinusExpM2H - twoH) / f32(twoH * twoH)) - 0.5),
    );
  } else {
    throw new RangeError(
      `Cannot take a third-order step as 'algorithm_type' "sde-dpmsolver" has no third-order update: use 'solver_order' 1 or 2`,
    );
  }
  return { order, a, b, c, d, e, k0, k1, q, k2 };
}

/**
 * Which order the next multistep update uses (diffusers' `step`): the configured order, lowered
 * while the history is short, and on the last steps of short schedules or with `euler_at_final`.
 *
 * @example
 * ```ts
 * import { chooseOrder } from "./solver.ts";
 * import assert from "node:assert/strict";
 * assert.equal(chooseOrder({ solverOrder: 3, lowerOrderNums: 1, lowerOrderFinal: false, lowerOrderSecond: false }), 2);
 * ```
 */
export function chooseOrder(state: {
  solverOrder: number;
  lowerOrderNums: number;
  lowerOrderFinal: boolean;
  lowerOrderSecond: boolean;
}): 1 | 2 | 3 {
  const { solverOrder, lowerOrderNums, lowerOrderFinal, lowerOrderSecond } =
    state;
  if (solverOrder === 1 || lowerOrderNums < 1 || lowerOrderFinal) return 1;
  if (solverOrder === 2 || lowerOrderNums < 2 || lowerOrderSecond) return 2;
  return 3;
}

/**
 * A model-output conversion as a kernel takes it: `"copy"` takes the model output as it is;
 * `"sample-first"` is `(a·sample + b·modelOutput) / d` and `"model-first"` is
 * `(a·modelOutput + b·sample) / d`, each operation rounded to float32 in that order (as
 * `Kernels.axpbyDiv`).
 */
export interface ModelOutputConversion {
  /** Which operand is multiplied by `a`, or `"copy"` (then `a`, `b`, `d` are unused). */
  readonly form: "copy" | "sample-first" | "model-first";
  /** Coefficient of the first operand. */
  readonly a: number;
  /** Coefficient of the second operand. */
  readonly b: number;
  /** Divisor. */
  readonly d: number;
}

/** A {@link ModelOutputConversion} that {@link modelOutputConversion} may rewrite in place. */
export type WritableConversion = {
  -readonly [K in keyof ModelOutputConversion]: ModelOutputConversion[K];
};

/**
 * diffusers' `convert_model_output` before thresholding, at a noise level (alpha_t, sigma_t) of
 * scheduler sigma `sigma`: what DPM-Solver++ integrates (the predicted clean sample x0) or
 * DPM-Solver integrates (the predicted noise ε), from what the model predicts. Writes into `out`
 * (rewritten in place, so that a step allocates nothing) and returns it.
 *
 * @throws {RangeError} `"flow_prediction"` with a noise-prediction algorithm type.
 *
 * @example An epsilon model under DPM-Solver++: x0 = (x − σ_t·ε) / α_t
 * ```ts
 * import { modelOutputConversion } from "./solver.ts";
 * import assert from "node:assert/strict";
 * const c = modelOutputConversion("dpmsolver++", "epsilon", 0.8, 0.6, 0.75);
 * assert.deepEqual(c, { form: "sample-first", a: 1, b: -0.6, d: 0.8 });
 * ```
 */
export function modelOutputConversion(
  algorithm: AlgorithmType,
  prediction: PredictionType,
  alphaT: number,
  sigmaT: number,
  sigma: number,
  out: WritableConversion = { form: "copy", a: 1, b: 0, d: 1 },
): ModelOutputConversion {
  if (isDataPrediction(algorithm)) {
    switch (prediction) {
      case "epsilon": // x0 = (x − σ_t·ε) / α_t
        return setConversion(out, "sample-first", 1, -sigmaT, alphaT);
      case "sample":
        return setConversion(out, "copy", 1, 0, 1);
      case "v_prediction": // x0 = α_t·x − σ_t·v
        return setConversion(out, "sample-first", alphaT, -sigmaT, 1);
      case "flow_prediction": // x0 = x − σ·v
        return setConversion(out, "sample-first", 1, -sigma, 1);
    }
  }
  switch (prediction) {
    case "epsilon":
      return setConversion(out, "copy", 1, 0, 1);
    case "sample": // ε = (x − α_t·x0) / σ_t
      return setConversion(out, "sample-first", 1, -alphaT, sigmaT);
    case "v_prediction": // ε = α_t·v + σ_t·x
      return setConversion(out, "model-first", alphaT, sigmaT, 1);
    case "flow_prediction":
      throw new RangeError(
        `Cannot convert the model output as 'prediction_type' "flow_prediction" needs a data-prediction 'algorithm_type'`,
      );
  }
}

function setConversion(
  c: WritableConversion,
  form: ModelOutputConversion["form"],
  a: number,
  b: number,
  d: number,
): ModelOutputConversion {
  c.form = form;
  c.a = a;
  c.b = b;
  c.d = d;
  return c;
}

/**
 * Whether the algorithm integrates the data prediction (DPM-Solver++) rather than the noise
 * prediction (DPM-Solver).
 *
 * @example
 * ```ts
 * import { isDataPrediction } from "./solver.ts";
 * import assert from "node:assert/strict";
 * assert.equal(isDataPrediction("sde-dpmsolver++"), true);
 * assert.equal(isDataPrediction("dpmsolver"), false);
 * ```
 */
export function isDataPrediction(algorithm: AlgorithmType): boolean {
  return algorithm === "dpmsolver++" || algorithm === "sde-dpmsolver++";
}
