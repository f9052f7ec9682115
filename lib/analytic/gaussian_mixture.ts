/**
 * `GaussianMixture`: isotropic Gaussian components, with an RK4 ODE reference.
 *
 * @module
 */
import type { AlphaSigma } from "../noise_schedule.ts";
import type { TorchGenerator } from "../random.ts";
import type { Tensor } from "../tensor.ts";
import { formatShape } from "../_shape.ts";
import type { AnalyticModel, PosteriorMeans } from "./analytic_model.ts";
import { integrateProbabilityFlow } from "./probability_flow.ts";
import { checkLength, checkLevel } from "./_checks.ts";

/** Parameters of {@link GaussianMixture}. */
export interface GaussianMixtureOptions {
  /** Component weights (positive; normalised to sum to 1). */
  weights: readonly number[];
  /**
   * Component means: numbers for a 1-D mixture applied to every element, or `d`-vectors for
   * isotropic components in `d` dimensions (the last tensor axis).
   */
  means: readonly number[] | readonly (readonly number[])[];
  /** Component variances `s_k²` (positive), the same in every dimension of a component. */
  variances: readonly number[];
  /** RK4 steps of {@link GaussianMixture.odeMap}. @default {1000} */
  odeSteps?: number;
}

/**
 * A mixture of isotropic Gaussians `x0 ~ Σ_k w_k·N(m_k, s_k²·I_d)`. At noise level
 * `(alpha_t, sigma_t)` component k's marginal is `N(alpha_t·m_k, v_k·I_d)` with
 * `v_k = alpha_t²·s_k² + sigma_t²`; with the posterior component probabilities
 * `p_k ∝ w_k·N(x; alpha_t·m_k, v_k·I)` and `r_k = (x − alpha_t·m_k) / v_k`,
 * `E[eps | x] = sigma_t·Σ p_k·r_k` and `E[x0 | x] = Σ p_k·(m_k + alpha_t·s_k²·r_k)`. The ODE map
 * has no closed form: {@link integrateProbabilityFlow} computes it.
 *
 * @example A two-component 2-D mixture
 * ```ts
 * import { GaussianMixture } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 *
 * const mixture = new GaussianMixture({ weights: [1, 1], means: [[-1, 0], [1, 0]], variances: [0.01, 0.01] });
 * assert.equal(mixture.dim, 2);
 * // halfway between the components, the posterior mean is halfway too
 * const { x0 } = mixture.posteriorMeans([0, 0.1], { alphaT: 0.9, sigmaT: Math.sqrt(0.19) });
 * assert.ok(Math.abs(x0[0]!) < 1e-15);
 * ```
 */
export class GaussianMixture implements AnalyticModel {
  /** Normalised component weights. */
  readonly weights: Float64Array;
  /** Component means, `dim` values per component. */
  readonly means: Float64Array;
  /** Component variances. */
  readonly variances: Float64Array;
  /** Dimension of one data point. */
  readonly dim: number;
  /** RK4 steps of {@link GaussianMixture.odeMap}. */
  readonly odeSteps: number;

  /**
   * A mixture of isotropic Gaussian components with the given weights, means and variances.
   *
   * @throws {RangeError} Empty or mismatched lists, non-positive weights or variances, means of
   *   unequal lengths, or a bad `odeSteps`.
   */
  constructor(options: GaussianMixtureOptions) {
    const { weights, means, variances, odeSteps = 1000 } = options;
    const k = weights.length;
    const fail = (why: string): never => {
      throw new RangeError(`Cannot create a GaussianMixture as ${why}`);
    };
    if (k === 0) fail("'weights' must not be empty: current length is 0");
    if (means.length !== k || variances.length !== k) {
      fail(
        `'weights', 'means' and 'variances' must have one entry per component: current lengths are ${k}, ${means.length} and ${variances.length}`,
      );
    }
    if (!weights.every((w) => w > 0 && Number.isFinite(w))) {
      fail(
        `'weights' must be positive and finite: current value is [${
          weights.join(", ")
        }]`,
      );
    }
    if (!variances.every((v) => v > 0 && Number.isFinite(v))) {
      fail(
        `'variances' must be positive and finite: current value is [${
          variances.join(", ")
        }]`,
      );
    }
    const rows = means.map((m) => (typeof m === "number" ? [m] : [...m]));
    const dim = rows[0]!.length;
    if (dim === 0 || rows.some((r) => r.length !== dim)) {
      fail(
        `'means' must all have the same positive length: current lengths are [${
          rows.map((r) => r.length).join(", ")
        }]`,
      );
    }
    if (!rows.flat().every(Number.isFinite)) {
      fail("'means' must be finite");
    }
    if (!Number.isInteger(odeSteps) || odeSteps < 1) {
      fail(
        `'odeSteps' must be a positive integer: current value is ${odeSteps}`,
      );
    }
    const total = weights.reduce((a, b) => a + b, 0);
    this.weights = Float64Array.from(weights, (w) => w / total);
    this.means = Float64Array.from(rows.flat());
    this.variances = Float64Array.from(variances);
    this.dim = dim;
    this.odeSteps = odeSteps;
  }

  posteriorMeans(x: ArrayLike<number>, level: AlphaSigma): PosteriorMeans {
    checkLevel(level, "compute posterior means");
    const { dim } = this;
    checkLength(x.length, dim);
    const { alphaT, sigmaT } = level;
    const k = this.weights.length;
    const v = this.variances.map((s2) =>
      alphaT * alphaT * s2 + sigmaT * sigmaT
    );
    const logNorm = v.map((vk, j) =>
      Math.log(this.weights[j]!) - 0.5 * dim * Math.log(vk)
    );
    const logP = new Float64Array(k);
    const x0 = new Float64Array(x.length);
    const epsilon = new Float64Array(x.length);
    for (let p = 0; p < x.length; p += dim) {
      let max = -Infinity;
      for (let j = 0; j < k; j++) {
        let d2 = 0;
        for (let i = 0; i < dim; i++) {
          const d = x[p + i]! - alphaT * this.means[j * dim + i]!;
          d2 += d * d;
        }
        logP[j] = logNorm[j]! - d2 / (2 * v[j]!);
        if (logP[j]! > max) max = logP[j]!;
      }
      let total = 0;
      for (let j = 0; j < k; j++) total += logP[j] = Math.exp(logP[j]! - max);
      for (let j = 0; j < k; j++) {
        const pj = logP[j]! / total;
        const vj = v[j]!;
        const s2 = this.variances[j]!;
        for (let i = 0; i < dim; i++) {
          const m = this.means[j * dim + i]!;
          const r = (x[p + i]! - alphaT * m) / vj;
          epsilon[p + i] += pj * sigmaT * r;
          x0[p + i] += pj * (m + alphaT * s2 * r);
        }
      }
    }
    return { x0, epsilon };
  }

  /** The ODE map by {@link integrateProbabilityFlow} with `odeSteps` RK4 steps in lambda. */
  odeMap(x: ArrayLike<number>, from: AlphaSigma, to: AlphaSigma): Float64Array {
    return integrateProbabilityFlow(this, x, from, to, {
      steps: this.odeSteps,
    });
  }

  /**
   * Draws samples of `shape` (its last axis must be `dim`): one `randn(shape)` from `generator`,
   * then one `nextUint32()` per data point to pick its component. Allocates the result.
   *
   * @throws {TypeError} A shape whose last axis is not `dim`.
   *
   * @example
   * ```ts
   * import { TorchGenerator } from "@dpmsolver/scheduler";
   * import { GaussianMixture } from "@dpmsolver/scheduler/analytic";
   * import assert from "node:assert/strict";
   * const mixture = new GaussianMixture({ weights: [1], means: [3], variances: [1e-6] });
   * const x = mixture.sample([2, 4], new TorchGenerator(0));
   * assert.ok(x.toFloat32Array().every((v) => Math.abs(v - 3) < 0.01));
   * ```
   */
  sample(shape: readonly number[], generator: TorchGenerator): Tensor {
    if (this.dim !== 1 && shape.at(-1) !== this.dim) {
      throw new TypeError(
        `Cannot sample the mixture as the last axis of 'shape' must be ${this.dim}: current value is ${
          formatShape(shape)
        }`,
      );
    }
    const z = generator.randn(shape);
    const data = z.data;
    const k = this.weights.length;
    for (let p = 0; p < data.length; p += this.dim) {
      const u = generator.nextUint32() / 4294967296;
      let j = 0;
      for (let acc = this.weights[0]!; j < k - 1 && u >= acc;) {
        acc += this.weights[++j]!;
      }
      const s = Math.sqrt(this.variances[j]!);
      for (let i = 0; i < this.dim; i++) {
        data[p + i] = this.means[j * this.dim + i]! + s * data[p + i]!;
      }
    }
    return z;
  }
}
