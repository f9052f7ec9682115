/**
 * `GaussianData`: Gaussian data per element, with a closed-form ODE map.
 *
 * @module
 */
import type { AlphaSigma } from "../noise_schedule.ts";
import type { TorchGenerator } from "../random.ts";
import type { Tensor } from "../tensor.ts";
import type { AnalyticModel, PosteriorMeans } from "./analytic_model.ts";
import { checkLevel } from "./_checks.ts";

/** Parameters of {@link GaussianData}. */
export interface GaussianDataOptions {
  /** Mean `mu` of every element. */
  mean: number;
  /** Standard deviation `s > 0` of every element. */
  std: number;
}

/**
 * Gaussian data `x0 ~ N(mu, s²·I)`: every element independent with mean `mu` and standard
 * deviation `s`. At noise level `(alpha_t, sigma_t)`, with `v = alpha_t²·s² + sigma_t²` and
 * `r = (x − alpha_t·mu) / v`: `E[eps | x] = sigma_t·r` and `E[x0 | x] = mu + alpha_t·s²·r`.
 *
 * @example Exact predictions and the exact ODE map
 * ```ts
 * import { GaussianData } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 *
 * const data = new GaussianData({ mean: 0.5, std: 0.3 });
 * const level = { alphaT: 0.8, sigmaT: 0.6 };
 * const { x0, epsilon } = data.posteriorMeans([1], level);
 * // x = alpha_t·E[x0|x] + sigma_t·E[eps|x] holds exactly
 * assert.ok(Math.abs(0.8 * x0[0]! + 0.6 * epsilon[0]! - 1) < 1e-15);
 * // the ODE keeps the standardised value: the mean maps to the mean
 * const [y] = data.odeMap([0.8 * 0.5], level, { alphaT: 0.6, sigmaT: 0.8 });
 * assert.ok(Math.abs(y! - 0.6 * 0.5) < 1e-15);
 * ```
 */
export class GaussianData implements AnalyticModel {
  /** Mean of every element. */
  readonly mean: number;
  /** Standard deviation of every element. */
  readonly std: number;
  /** 1: every element on its own. */
  readonly dim = 1;

  /**
   * Gaussian data `N(mean, std²)` per element.
   *
   * @throws {RangeError} A non-finite mean, or a standard deviation that is not positive.
   */
  constructor({ mean, std }: GaussianDataOptions) {
    if (!Number.isFinite(mean)) {
      throw new RangeError(
        `Cannot create GaussianData as 'mean' must be finite: current value is ${mean}`,
      );
    }
    if (!(std > 0 && Number.isFinite(std))) {
      throw new RangeError(
        `Cannot create GaussianData as 'std' must be positive and finite: current value is ${std}`,
      );
    }
    this.mean = mean;
    this.std = std;
  }

  /** Standard deviation of `x_t` at `level`: `sqrt(alpha_t²·s² + sigma_t²)`. */
  marginalStd({ alphaT, sigmaT }: AlphaSigma): number {
    return Math.hypot(alphaT * this.std, sigmaT);
  }

  posteriorMeans(x: ArrayLike<number>, level: AlphaSigma): PosteriorMeans {
    checkLevel(level, "compute posterior means");
    const { alphaT, sigmaT } = level;
    const v = alphaT * alphaT * this.std * this.std + sigmaT * sigmaT;
    const x0 = new Float64Array(x.length);
    const epsilon = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const r = (x[i]! - alphaT * this.mean) / v;
      x0[i] = this.mean + alphaT * this.std * this.std * r;
      epsilon[i] = sigmaT * r;
    }
    return { x0, epsilon };
  }

  /**
   * Draws `mean + std·z` with `z = generator.randn(shape)`. Allocates the result.
   *
   * @example
   * ```ts
   * import { TorchGenerator } from "@dpmsolver/scheduler";
   * import { GaussianData } from "@dpmsolver/scheduler/analytic";
   * import assert from "node:assert/strict";
   * const x = new GaussianData({ mean: 2, std: 1e-3 }).sample([3], new TorchGenerator(0));
   * assert.ok(x.toFloat32Array().every((v) => Math.abs(v - 2) < 0.01));
   * ```
   */
  sample(shape: readonly number[], generator: TorchGenerator): Tensor {
    const z = generator.randn(shape);
    z.data.forEach((v, i) => (z.data[i] = this.mean + this.std * v));
    return z;
  }

  /** The closed form: `alpha_to·mu + std_to·(x − alpha_from·mu) / std_from`. */
  odeMap(x: ArrayLike<number>, from: AlphaSigma, to: AlphaSigma): Float64Array {
    checkLevel(from, "map along the ODE");
    checkLevel(to, "map along the ODE");
    const scale = this.marginalStd(to) / this.marginalStd(from);
    return Float64Array.from(
      x,
      (v) => to.alphaT * this.mean + scale * (v - from.alphaT * this.mean),
    );
  }
}
