/**
 * `generate`: the sampling loop (noise → clean sample) around `DPMSolverMultistepScheduler`, for
 * any model function; with `startSigma` it regenerates from what `invert` returned.
 *
 * @module
 */
import type { DPMSolverMultistepScheduler } from "./multistep.ts";
import type { Tensor } from "./tensor.ts";
import type { DiffusionModel, LoopOptions } from "./model.ts";
import { classLabelsFor, prepare, runSteps } from "./_loop.ts";

/** Options of {@link generate}. */
export interface GenerateOptions extends LoopOptions {
  /**
   * Start at the step whose sigma is nearest (in log sigma) to this one, such as the `sigma` an
   * `invert` ended at; wins over `strength`. Schedules of the same config and step count (linspace,
   * Karras…) contain every sigma the inverse schedule reaches, so the start is exact.
   */
  startSigma?: number;
}

/**
 * Samples with `scheduler` (a `DPMSolverMultistepScheduler`) from `noise` down to a clean sample:
 * the whole schedule, its last `strength` (image to image, as diffusers), or from `startSigma`.
 * Resets the scheduler's state (and sets its begin index for a partial run); allocates one sample
 * per step.
 *
 * @param model The noise-prediction model.
 * @param noise The starting sample, batch first (pure noise, or an inverted sample).
 * @param scheduler The forward scheduler, configured as the model was trained.
 * @param options Steps, start, conditioning and a progress callback.
 * @returns The generated sample.
 * @throws {RangeError} A `strength` outside [0, 1], a non-positive `startSigma`, or no schedule.
 * @throws {TypeError} `classLabels` whose length is not the batch size.
 *
 * @example Sample from noise with class labels and guidance (a stand-in model)
 * ```ts
 * import { DPMSolverMultistepScheduler, generate, Tensor, TorchGenerator } from "@dpmsolver/scheduler";
 * import assert from "node:assert/strict";
 *
 * const model = (x: Tensor, _t: number, labels?: Int32Array, scale = 1) =>
 *   new Tensor(x.toFloat32Array().map((v, i) => 0.5 * v + 0.01 * scale * labels![i >> 2]!), x.shape);
 * const noise = new TorchGenerator(0).randn([2, 1, 2, 2]);
 * let calls = 0;
 * const sample = await generate(model, noise, new DPMSolverMultistepScheduler(), {
 *   numInferenceSteps: 10,
 *   classLabels: [3, 7],
 *   guidanceScale: 2,
 *   onProgress: ({ step, steps }) => void (calls = step === steps ? calls + 1 : calls),
 * });
 * assert.deepEqual(sample.shape, [2, 1, 2, 2]);
 * assert.equal(calls, 1);
 * ```
 */
export async function generate(
  model: DiffusionModel,
  noise: Tensor,
  scheduler: DPMSolverMultistepScheduler,
  options: GenerateOptions = {},
): Promise<Tensor> {
  const prepared = prepare("generate", scheduler, noise, options);
  const { timesteps } = prepared;
  let start = timesteps.length - prepared.steps;
  if (options.startSigma !== undefined) {
    start = nearestSigma(
      scheduler.sigmas,
      timesteps.length,
      options.startSigma,
    );
  }
  const labels = classLabelsFor("generate", noise, options.classLabels);
  if (start > 0) scheduler.setBeginIndex(start);
  return await runSteps(
    model,
    scheduler,
    noise,
    timesteps.subarray(start),
    labels,
    options,
  );
}

function nearestSigma(
  sigmas: Float32Array,
  count: number,
  sigma: number,
): number {
  if (!(sigma > 0)) {
    throw new RangeError(
      `Cannot generate as 'startSigma' must be positive: current value is ${sigma}`,
    );
  }
  let best = 0;
  for (let i = 1; i < count; i++) {
    const distance = Math.abs(Math.log(sigmas[i]! / sigma));
    if (distance < Math.abs(Math.log(sigmas[best]! / sigma))) best = i;
  }
  return best;
}
