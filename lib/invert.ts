/**
 * `invert`: the inversion loop (clean sample → the noise that regenerates it) that a user would
 * otherwise write by hand around `DPMSolverMultistepInverseScheduler`, for any model function.
 *
 * @module
 */
import type { MultistepScheduler } from "./multistep_scheduler.ts";
import type { Tensor } from "./tensor.ts";
import type { DiffusionModel, LoopOptions } from "./model.ts";
import { classLabelsFor, prepare, runSteps } from "./_loop.ts";

/** The result of {@link invert}. */
export interface InversionResult {
  /** The inverted sample: the noise (or partially noised sample) that regenerates the input. */
  sample: Tensor;
  /** The scheduler sigma the sample sits at; pass it to `generate` as `startSigma`. */
  sigma: number;
  /** Steps taken. */
  steps: number;
}

/**
 * Inverts `image` with `scheduler` (a `DPMSolverMultistepInverseScheduler`): runs the model and
 * the scheduler's steps from t = 0 up the schedule, all of it or the first `strength` of it.
 * Resets the scheduler's state; allocates one sample per step.
 *
 * @param model The noise-prediction model.
 * @param image The clean sample, batch first.
 * @param scheduler The inverse scheduler, configured as the model was trained.
 * @param options Steps, strength, conditioning and a progress callback.
 * @returns The inverted sample, the sigma it reached and the number of steps.
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
 */
export async function invert(
  model: DiffusionModel,
  image: Tensor,
  scheduler: MultistepScheduler,
  options: LoopOptions = {},
): Promise<InversionResult> {
  const { timesteps, steps } = prepare("invert", scheduler, image, options);
  const labels = classLabelsFor("invert", image, options.classLabels);
  const sample = await runSteps(
    model,
    scheduler,
    image,
    timesteps.subarray(0, steps),
    labels,
    options,
  );
  return { sample, sigma: scheduler.sigmas[steps]!, steps };
}
