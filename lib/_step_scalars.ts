/**
 * The host scalars of the hot path, memoized as pure functions of the sigma values: per sigma
 * (alpha_t, sigma_t, lambda), per (step index, order) the update coefficients, and the
 * model-output conversion. A step then allocates nothing, and a repeated schedule
 * (`setTimesteps` with the same sigmas) reuses them.
 *
 * @module
 */
import type { SchedulerConfig } from "./config.ts";
import { isFlowSchedule } from "./_sigma_families.ts";
import { lambdaOf, sigmaToAlphaSigma } from "./noise_schedule.ts";
import type { AlphaSigma } from "./noise_schedule.ts";
import {
  type ModelOutputConversion,
  modelOutputConversion,
  type MultistepCoefficients,
  multistepCoefficients,
  type WritableConversion,
} from "./solver.ts";

/** The memo of one scheduler; entries are checked against the sigmas they were computed from. */
export class StepScalars {
  readonly #config: Readonly<SchedulerConfig>;
  readonly #flow: boolean;
  // Per sigma index: [sigma they belong to, alpha_t, sigma_t, lambda]; a slot is valid while
  // its sigma is `Object.is`-equal to `sigmas[index]`.
  #points = new Float64Array(0);
  // Per (step index, order): the update coefficients (`null`: a zero-length step), valid while
  // the sigmas they were computed from (stored in `#coefficientSigmas`) are unchanged.
  #coefficients: (MultistepCoefficients | null | undefined)[] = [];
  #coefficientSigmas = new Float64Array(0);
  // One object, rewritten per call: the conversion runs every step.
  #conversion: WritableConversion = { form: "copy", a: 1, b: 0, d: 1 };

  /** Scalars for a scheduler of `config` (its algorithm, solver, prediction and flow keys). */
  constructor(config: Readonly<SchedulerConfig>) {
    this.#config = config;
    this.#flow = isFlowSchedule(config);
  }

  /** alpha_t of `sigmas[index]` (as `sigmaToAlphaSigma`). */
  alphaT(sigmas: Float32Array, index: number): number {
    return this.#points[this.#point(sigmas, index) + 1]!;
  }

  /** sigma_t of `sigmas[index]` (as `sigmaToAlphaSigma`). */
  sigmaT(sigmas: Float32Array, index: number): number {
    return this.#points[this.#point(sigmas, index) + 2]!;
  }

  /**
   * The coefficients of an order-`order` update from `sigmas[index]` to `sigmas[index + 1]`
   * (`null`: a zero-length step), as `multistepCoefficients` computes them.
   */
  coefficients(
    sigmas: Float32Array,
    order: 1 | 2 | 3,
    index: number,
  ): MultistepCoefficients | null {
    const slot = 3 * index + order - 1;
    if (this.#coefficients.length < 3 * sigmas.length) {
      this.#coefficients = new Array(3 * sigmas.length);
      this.#coefficientSigmas = new Float64Array(12 * sigmas.length);
    }
    const used = this.#coefficientSigmas;
    let coefficients = this.#coefficients[slot];
    let valid = coefficients !== undefined;
    for (let j = 0; valid && j <= order; j++) {
      valid = Object.is(used[4 * slot + j], sigmas[index + 1 - j]);
    }
    if (!valid) {
      this.#coefficients[slot] = undefined;
      const points: AlphaSigma[] = [];
      const lambdas: number[] = [];
      for (let j = 0; j <= order; j++) {
        const at = this.#point(sigmas, index + 1 - j);
        const cache = this.#points;
        points.push({ alphaT: cache[at + 1]!, sigmaT: cache[at + 2]! });
        lambdas.push(cache[at + 3]!);
        used[4 * slot + j] = sigmas[index + 1 - j]!;
      }
      coefficients = multistepCoefficients(
        order,
        this.#config.algorithm_type,
        this.#config.solver_type,
        points,
        lambdas,
      );
      this.#coefficients[slot] = coefficients;
    }
    return coefficients ?? null;
  }

  /**
   * The configured model-output conversion at `sigmas[index]` (a shared object, rewritten by
   * the next call).
   */
  conversion(sigmas: Float32Array, index: number): ModelOutputConversion {
    const { algorithm_type, prediction_type } = this.#config;
    const at = this.#point(sigmas, index);
    return modelOutputConversion(
      algorithm_type,
      prediction_type,
      this.#points[at + 1]!,
      this.#points[at + 2]!,
      sigmas[index]!,
      this.#conversion,
    );
  }

  // The offset in `#points` of sigmas[index]'s [sigma, alpha_t, sigma_t, lambda], computed on
  // first use (as `sigmaToAlphaSigma` and `lambdaOf` compute them).
  #point(sigmas: Float32Array, index: number): number {
    const sigma = sigmas[index]!;
    if (this.#points.length < 4 * sigmas.length) {
      this.#points = new Float64Array(4 * sigmas.length).fill(NaN);
    }
    const cache = this.#points;
    const at = 4 * index;
    if (!Object.is(cache[at], sigma) || cache[at + 3] !== cache[at + 3]) {
      const point = sigmaToAlphaSigma(sigma, this.#flow);
      cache[at] = sigma;
      cache[at + 1] = point.alphaT;
      cache[at + 2] = point.sigmaT;
      cache[at + 3] = lambdaOf(point);
    }
    return at;
  }
}
