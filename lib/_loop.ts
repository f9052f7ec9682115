/**
 * What `invert` and `generate` share: schedule set-up, `strength` and class-label checks, and
 * the step loop.
 *
 * @module
 */
import type { MultistepScheduler } from "./multistep_scheduler.ts";
import type { Tensor } from "./tensor.ts";
import type { DiffusionModel, LoopOptions } from "./model.ts";

/** Sets or checks the schedule, resets the state and counts the steps `strength` allows. */
export function prepare(
  operation: string,
  scheduler: MultistepScheduler,
  sample: Tensor,
  options: LoopOptions,
): { timesteps: Int32Array; steps: number } {
  const strength = options.strength ?? 1;
  if (!(strength >= 0 && strength <= 1)) {
    throw new RangeError(
      `Cannot ${operation} as 'strength' must be in [0, 1]: current value is ${strength}`,
    );
  }
  const n = options.numInferenceSteps ?? scheduler.numInferenceSteps;
  if (n === null) {
    throw new RangeError(
      `Cannot ${operation} as the scheduler has no schedule: pass 'numInferenceSteps' or call setTimesteps first`,
    );
  }
  // Also resets the model-output history and step index of a scheduler used before.
  scheduler.setTimesteps(n);
  if (sample.shape.length === 0) {
    throw new TypeError(
      `Cannot ${operation} as the sample must have a batch dimension: current shape is []`,
    );
  }
  // diffusers' img2img: init_timestep = min(int(n · strength), n).
  const steps = Math.min(Math.trunc(n * strength), scheduler.timesteps.length);
  return { timesteps: scheduler.timesteps, steps };
}

/** `classLabels` as an `Int32Array` of the batch size, or `undefined`. */
export function classLabelsFor(
  operation: string,
  sample: Tensor,
  classLabels: ArrayLike<number> | undefined,
): Int32Array | undefined {
  if (classLabels === undefined) return undefined;
  const batch = sample.shape[0]!;
  if (classLabels.length !== batch) {
    throw new TypeError(
      `Cannot ${operation} as 'classLabels' must hold one label per batch item (${batch}): current length is ${classLabels.length}`,
    );
  }
  return classLabels instanceof Int32Array
    ? classLabels
    : Int32Array.from(classLabels);
}

/**
 * Steps `sample` through `timesteps` (the loop's part of the schedule): the model, then the
 * scheduler's step, then the progress callback, per timestep. Returns the last sample.
 */
export async function runSteps(
  model: DiffusionModel,
  scheduler: MultistepScheduler,
  sample: Tensor,
  timesteps: Int32Array,
  labels: Int32Array | undefined,
  options: LoopOptions,
): Promise<Tensor> {
  const steps = timesteps.length;
  for (let i = 0; i < steps; i++) {
    const t = timesteps[i]!;
    const output = await model(
      scheduler.scaleModelInput(sample, t),
      t,
      labels,
      options.guidanceScale,
    );
    sample = scheduler.step(output, t, sample).prevSample;
    await options.onProgress?.({ step: i + 1, steps, timestep: t, sample });
  }
  return sample;
}
