/**
 * The interface every analytic model implements, and its predictions as a model output.
 *
 * @module
 */
import type { AlphaSigma } from "../noise_schedule.ts";
import { Tensor } from "../tensor.ts";
import { formatShape } from "../_shape.ts";
import { checkPredictionType } from "./_checks.ts";

/** The prediction types an analytic model can output (VP parametrisations; no flow matching). */
export type AnalyticPredictionType = "epsilon" | "sample" | "v_prediction";

/** Posterior means at one noise level, in float64, laid out as the input. */
export interface PosteriorMeans {
  /** `E[x0 | x_t = x]`, the ideal `sample` prediction. */
  x0: Float64Array;
  /** `E[eps | x_t = x]`, the ideal `epsilon` prediction. */
  epsilon: Float64Array;
}

/**
 * A data distribution with an exact denoiser. Values are processed in groups of `dim`
 * consecutive elements (the last axis of a row-major tensor); `dim` is 1 for element-wise models.
 */
export interface AnalyticModel {
  /** How many consecutive values form one data point (1: every element on its own). */
  readonly dim: number;
  /**
   * The posterior means of `x0` and `eps` given `x_t = x` at noise level `level`.
   *
   * @param x Values at that noise level; the length must be a multiple of `dim`.
   * @param level `(alpha_t, sigma_t)`, with `alpha_t > 0`.
   */
  posteriorMeans(x: ArrayLike<number>, level: AlphaSigma): PosteriorMeans;
  /**
   * The probability-flow ODE's solution at noise level `to` from `x` at noise level `from`, in
   * float64 (the direction does not matter: `from` may be the noisier level).
   */
  odeMap(x: ArrayLike<number>, from: AlphaSigma, to: AlphaSigma): Float64Array;
}

/**
 * The model output a perfect model of `model`'s data gives for `sample` at `level`, as a float32
 * tensor: `epsilon` is `E[eps | x]`, `sample` is `E[x0 | x]` and `v_prediction` is
 * `alpha_t·E[eps | x] − sigma_t·E[x0 | x]`. Allocates the result.
 *
 * @throws {RangeError} A prediction type other than these three.
 * @throws {TypeError} A sample whose last axis is not the model's `dim`.
 *
 * @example
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { analyticPrediction, GaussianData } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 *
 * const data = new GaussianData({ mean: 0, std: 1 });
 * const level = { alphaT: 0.6, sigmaT: 0.8 };
 * // unit-variance data: x_t ~ N(0, 1) and E[eps | x] = sigma_t·x
 * const eps = analyticPrediction(data, Tensor.from([1, 2]), level, "epsilon");
 * assert.deepEqual(Array.from(eps.toFloat32Array()), [Math.fround(0.8), Math.fround(1.6)]);
 * ```
 */
export function analyticPrediction(
  model: AnalyticModel,
  sample: Tensor,
  level: AlphaSigma,
  predictionType: AnalyticPredictionType,
): Tensor {
  checkPredictionType(predictionType);
  if (model.dim !== 1 && sample.shape.at(-1) !== model.dim) {
    throw new TypeError(
      `Cannot run the analytic model as the sample's last axis must be ${model.dim}: current shape is ${
        formatShape(sample.shape)
      }`,
    );
  }
  const { x0, epsilon } = model.posteriorMeans(sample.toFloat32Array(), level);
  const out = predictionType === "epsilon"
    ? epsilon
    : predictionType === "sample"
    ? x0
    : epsilon.map((e, i) => level.alphaT * e - level.sigmaT * x0[i]!);
  return new Tensor(Float32Array.from(out), sample.shape);
}
