/**
 * `invert`: the inversion loop (clean sample → the noise that regenerates it) that a user would
 * otherwise write by hand around `DPMSolverMultistepInverseScheduler`, for any model function.
 *
 * @module
 */
import type { MultistepScheduler } from "./multistep_scheduler.ts";
import type { Tensor } from "./tensor.ts";
import type { DiffusionModel, InversionResult, LoopOptions } from "./model.ts";
import { classLabelsFor, prepare, runSteps } from "./_loop.ts";
import {
  type ExactInversionOptions,
  type ExactInversionResult,
  invertExact,
} from "./exact_inversion.ts";

/** Options of {@link invert}. */
export interface InvertOptions extends LoopOptions {
  /**
   * Invert exactly: find the noise from which `generate` with this forward scheduler (and the
   * same steps, conditioning and guidance) gives back the input to float32 precision, by solving
   * every forward step as an implicit equation (see `docs/exact_inversion.md`). The result then
   * has `residuals` and `converged`; `onProgress` is not called.
   */
  exact?: ExactInversionOptions;
}

/**
 * Inverts `image` with `scheduler` (a `DPMSolverMultistepInverseScheduler`): runs the model and
 * the scheduler's steps from t = 0 up the schedule, all of it or the first `strength` of it.
 * Resets the scheduler's state; allocates one sample per step.
 *
 * @param model The noise-prediction model.
 * @param image The clean sample, batch first.
 * @param scheduler The inverse scheduler, configured as the model was trained.
 * @param options Steps, strength, conditioning, a progress callback, and `exact` for an exact
 *   inversion of a forward scheduler.
 * @returns The inverted sample, the sigma it reached, the number of steps and of model calls
 *   (with `exact`: also the per-step residuals).
 * @throws {RangeError} A `strength` outside [0, 1], or no schedule set.
 * @throws {TypeError} `classLabels` whose length is not the batch size.
 *
 * @example Invert with a stand-in model, then regenerate
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, DPMSolverMultistepScheduler, generate, invert, Tensor } from "@dpmsolver/scheduler";
 * import assert from "node:assert/strict";
 *
 * const model = (x: Tensor, _t: number) => new Tensor(x.toFloat32Array().map((v) => 0.5 * Math.tanh(v)), x.shape);
 * const image = Tensor.from([0.5, -0.25, 0.125, 1], [1, 1, 2, 2]);
 * const inverted = await invert(model, image, new DPMSolverMultistepInverseScheduler(), { numInferenceSteps: 20 });
 * assert.equal(inverted.steps, 20);
 * const back = await generate(model, inverted.sample, new DPMSolverMultistepScheduler(), {
 *   numInferenceSteps: 20,
 *   startSigma: inverted.sigma,
 * });
 * assert.ok(back.toFloat32Array().every(Number.isFinite));
 * ```
 *
 * @example Exact inversion: the forward sampler gives the input back to float32 precision
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, DPMSolverMultistepScheduler, generate, invert, Tensor } from "@dpmsolver/scheduler";
 * import { GaussianMixture, schedulerModel } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 *
 * const forward = new DPMSolverMultistepScheduler({ solver_order: 2, final_sigmas_type: "sigma_min" });
 * const model = schedulerModel(new GaussianMixture({ weights: [1, 2], means: [-0.6, 0.5], variances: [0.02, 0.05] }), forward);
 * const image = Tensor.from([0.5, -0.6, 0.45, 0.6], [1, 1, 2, 2]);
 * const inverted = await invert(model, image, new DPMSolverMultistepInverseScheduler({ solver_order: 2 }), {
 *   numInferenceSteps: 10,
 *   exact: { forward, tolerance: 1e-6 },
 * });
 * assert.ok(inverted.converged);
 * const back = await generate(model, inverted.sample, forward, { numInferenceSteps: 10, startSigma: inverted.sigma });
 * back.toFloat32Array().forEach((v, i) => assert.ok(Math.abs(v - image.toFloat32Array()[i]!) < 1e-5));
 * ```
 */
export async function invert(
  model: DiffusionModel,
  image: Tensor,
  scheduler: MultistepScheduler,
  options: InvertOptions & { exact: ExactInversionOptions },
): Promise<ExactInversionResult>;
/**
 * Inverts `image` with `scheduler` by plain (explicit) inverse steps; see the overload above for
 * the exact inversion.
 *
 * @param model The noise-prediction model.
 * @param image The clean sample, batch first.
 * @param scheduler The inverse scheduler, configured as the model was trained.
 * @param options Steps, strength, conditioning and a progress callback.
 * @returns The inverted sample, the sigma it reached, the steps and the model calls.
 *
 * @example Plain inversion with a stand-in model
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, invert, Tensor } from "@dpmsolver/scheduler";
 * import assert from "node:assert/strict";
 *
 * const model = (x: Tensor, _t: number) => new Tensor(x.toFloat32Array().map((v) => 0.5 * Math.tanh(v)), x.shape);
 * const image = Tensor.from([0.5, -0.25, 0.125, 1], [1, 1, 2, 2]);
 * const inverted = await invert(model, image, new DPMSolverMultistepInverseScheduler(), { numInferenceSteps: 20 });
 * assert.equal(inverted.steps, 20);
 * assert.equal(inverted.modelCalls, 20);
 * ```
 */
export async function invert(
  model: DiffusionModel,
  image: Tensor,
  scheduler: MultistepScheduler,
  options?: InvertOptions,
): Promise<InversionResult>;
export async function invert(
  model: DiffusionModel,
  image: Tensor,
  scheduler: MultistepScheduler,
  options: InvertOptions = {},
): Promise<InversionResult> {
  const { timesteps, steps } = prepare("invert", scheduler, image, options);
  const labels = classLabelsFor("invert", image, options.classLabels);
  if (options.exact !== undefined) {
    return await invertExact(
      model,
      image,
      scheduler,
      options as InvertOptions & { exact: ExactInversionOptions },
      labels,
    );
  }
  const sample = await runSteps(
    model,
    scheduler,
    image,
    timesteps.subarray(0, steps),
    labels,
    options,
  );
  return { sample, sigma: scheduler.sigmas[steps]!, steps, modelCalls: steps };
}
