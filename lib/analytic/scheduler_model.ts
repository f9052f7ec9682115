/**
 * An analytic model as the `(sample, t) => Tensor` function a scheduler loop calls, and the
 * measurements around it (noise levels of timesteps, convergence orders).
 *
 * @module
 */
import type { MultistepScheduler } from "../multistep_scheduler.ts";
import type { AlphaSigma } from "../noise_schedule.ts";
import type { Tensor } from "../tensor.ts";
import { isFlowSchedule } from "../_sigma_families.ts";
import {
  type AnalyticModel,
  analyticPrediction,
  type AnalyticPredictionType,
} from "./analytic_model.ts";
import { checkPredictionType } from "./_checks.ts";

/** Options of {@link schedulerModel}. */
export interface SchedulerModelOptions {
  /**
   * Where the noise level of a call at timestep `t` comes from: `"alphas_cumprod"` uses the
   * training schedule, `alpha_t = sqrt(ᾱ_t)`, `sigma_t = sqrt(1 − ᾱ_t)`, as a network conditioned
   * on the integer timestep would; `"schedule"` uses the scheduler's own sigma for the step it is
   * about to take, which differs from the former where a sigma family (Karras, exponential, beta)
   * places sigmas between integer timesteps. Measuring a solver's error needs `"schedule"`: with
   * `"alphas_cumprod"` and Karras sigmas the model and the solver disagree about the noise level
   * by up to half a timestep, an error that does not shrink with more steps.
   * @default {"alphas_cumprod"}
   */
  noiseLevel?: "alphas_cumprod" | "schedule";
  /** The output's prediction type. @default {the scheduler's `prediction_type`} */
  predictionType?: AnalyticPredictionType;
}

/**
 * A model function for a scheduler loop: `(sample, t) => modelOutput` with a perfect model of
 * `model`'s data, at the noise level of timestep `t` (see {@link SchedulerModelOptions}), in the
 * scheduler's `prediction_type`. Works with any schedule of VP sigmas.
 *
 * @throws {RangeError} A flow-matching scheduler (`prediction_type` "flow_prediction" or
 *   `use_flow_sigmas`), when the function is made.
 *
 * @example Invert Gaussian data and compare with the exact ODE map
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, Tensor } from "@dpmsolver/scheduler";
 * import { GaussianData, schedulerModel } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 *
 * const data = new GaussianData({ mean: 0.5, std: 0.3 });
 * const scheduler = new DPMSolverMultistepInverseScheduler({ solver_order: 3, use_karras_sigmas: true });
 * scheduler.setTimesteps(50);
 * const model = schedulerModel(data, scheduler);
 * const x0 = Tensor.from([0.2, 0.5, 0.9]);
 * let x = x0;
 * for (const t of scheduler.timesteps) x = scheduler.step(model(x, t), t, x).prevSample;
 * const exact = data.odeMap(x0.toFloat32Array(), scheduler.alphaSigmaAt(0), scheduler.alphaSigmaAt(50));
 * // the solver's error, about 1e-2 here: third order, but 50 Karras steps over 9.7 nats of lambda
 * x.toFloat32Array().forEach((v, i) => assert.ok(Math.abs(v - exact[i]!) < 2e-2));
 * ```
 */
export function schedulerModel(
  model: AnalyticModel,
  scheduler: MultistepScheduler,
  options: SchedulerModelOptions = {},
): (sample: Tensor, timestep: number) => Tensor {
  const { noiseLevel = "alphas_cumprod" } = options;
  const config = scheduler.config;
  const predictionType = options.predictionType ?? config.prediction_type;
  if (isFlowSchedule(config)) {
    throw new RangeError(
      `Cannot make an analytic model for the scheduler as 'use_flow_sigmas' is not a VP schedule: current value is true`,
    );
  }
  checkPredictionType(predictionType);
  if (noiseLevel !== "alphas_cumprod" && noiseLevel !== "schedule") {
    throw new RangeError(
      `Cannot make an analytic model as 'noiseLevel' must be "alphas_cumprod" or "schedule": current value is ${noiseLevel}`,
    );
  }
  return (sample, timestep) => {
    const level = noiseLevel === "schedule"
      ? scheduleLevel(scheduler, timestep)
      : alphaSigmaOfTimestep(scheduler.alphasCumprod, timestep);
    return analyticPrediction(
      model,
      sample,
      level,
      predictionType as AnalyticPredictionType,
    );
  };
}

/**
 * The noise level of an integer training timestep: `alpha_t = sqrt(ᾱ_t)`,
 * `sigma_t = sqrt(1 − ᾱ_t)` (float64 from the float32 `alphas_cumprod`).
 *
 * @throws {RangeError} A timestep that is not an index of `alphasCumprod`.
 *
 * @example
 * ```ts
 * import { DPMSolverMultistepInverseScheduler } from "@dpmsolver/scheduler";
 * import { alphaSigmaOfTimestep } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 * const { alphasCumprod } = new DPMSolverMultistepInverseScheduler();
 * const { alphaT, sigmaT } = alphaSigmaOfTimestep(alphasCumprod, 0);
 * assert.ok(Math.abs(sigmaT - 0.01) < 1e-6); // beta_0 = 1e-4
 * assert.ok(Math.abs(alphaT ** 2 + sigmaT ** 2 - 1) < 1e-15);
 * ```
 */
export function alphaSigmaOfTimestep(
  alphasCumprod: ArrayLike<number>,
  timestep: number,
): AlphaSigma {
  if (
    !Number.isInteger(timestep) || timestep < 0 ||
    timestep >= alphasCumprod.length
  ) {
    throw new RangeError(
      `Cannot look up the noise level as 'timestep' must be an integer in [0, ${
        alphasCumprod.length - 1
      }]: current value is ${timestep}`,
    );
  }
  const a = alphasCumprod[timestep]!;
  return { alphaT: Math.sqrt(a), sigmaT: Math.sqrt(1 - a) };
}

/**
 * The least-squares slope of `−log(error)` against `log(steps)`: the measured order of
 * convergence (1 when the error halves as the steps double).
 *
 * @throws {RangeError} Fewer than two points, lists of unequal length, or a non-positive value.
 *
 * @example
 * ```ts
 * import { convergenceOrder } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 * const steps = [10, 20, 40];
 * assert.ok(Math.abs(convergenceOrder(steps, steps.map((n) => 3 / n ** 2)) - 2) < 1e-12);
 * ```
 */
export function convergenceOrder(
  steps: readonly number[],
  errors: readonly number[],
): number {
  if (steps.length < 2 || steps.length !== errors.length) {
    throw new RangeError(
      `Cannot fit a convergence order as 'steps' and 'errors' must have the same length of at least 2: current lengths are ${steps.length} and ${errors.length}`,
    );
  }
  if (![...steps, ...errors].every((v) => v > 0 && Number.isFinite(v))) {
    throw new RangeError(
      `Cannot fit a convergence order as 'steps' and 'errors' must be positive and finite: current errors are [${
        errors.join(", ")
      }]`,
    );
  }
  const xs = steps.map(Math.log);
  const ys = errors.map((e) => -Math.log(e));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  xs.forEach((x, i) => {
    sxy += (x - mx) * (ys[i]! - my);
    sxx += (x - mx) ** 2;
  });
  return sxy / sxx;
}

// The scheduler's sigma for the step about to be taken at `timestep`; a timestep that is not the
// current step's takes its first position in the schedule, one not in it its alphas_cumprod.
function scheduleLevel(
  scheduler: MultistepScheduler,
  timestep: number,
): AlphaSigma {
  const current = scheduler.stepIndex;
  const index = current !== null && scheduler.timesteps[current] === timestep
    ? current
    : scheduler.timesteps.indexOf(timestep);
  return index < 0
    ? alphaSigmaOfTimestep(scheduler.alphasCumprod, timestep)
    : scheduler.alphaSigmaAt(index);
}
