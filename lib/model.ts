/**
 * What the sampling loops `invert` and `generate` call and accept: the model function, the
 * loop options and the progress report. A model adapter (such as the ONNX one) implements
 * {@link DiffusionModel}.
 *
 * @module
 */
import type { Tensor } from "./tensor.ts";

/**
 * A noise-prediction model as the loops call it: the sample (batch first), the timestep, and
 * optionally one class label per batch item and a classifier-free guidance scale. It may be
 * synchronous or return a promise (an ONNX Runtime session, a GPU model). A model without
 * conditioning ignores the last two arguments.
 */
export type DiffusionModel = (
  sample: Tensor,
  timestep: number,
  classLabels?: Int32Array,
  guidanceScale?: number,
) => Tensor | Promise<Tensor>;

/** What a progress callback receives after each step. */
export interface LoopProgress {
  /** Steps done so far (1 after the first). */
  step: number;
  /** Steps this loop will take. */
  steps: number;
  /** The timestep the model was just evaluated at. */
  timestep: number;
  /** The sample after this step. */
  sample: Tensor;
}

/** Options shared by `invert` and `generate`. */
export interface LoopOptions {
  /**
   * Calls `scheduler.setTimesteps(numInferenceSteps)` first; when omitted the scheduler must
   * already have a schedule, which is then restarted.
   */
  numInferenceSteps?: number;
  /**
   * The fraction of the schedule to run, in [0, 1]: `trunc(n · strength)` of the `n` steps, as
   * diffusers' image-to-image pipelines count them.
   * @default {1}
   */
  strength?: number;
  /** One class label per batch item, passed to the model. */
  classLabels?: ArrayLike<number>;
  /** Classifier-free guidance scale, passed to the model (1 or omitted: no guidance). */
  guidanceScale?: number;
  /** Called after every step; awaited when it returns a promise. */
  onProgress?: (progress: LoopProgress) => void | Promise<void>;
}

/** The result of `invert`. */
export interface InversionResult {
  /** The inverted sample: the noise (or partially noised sample) that regenerates the input. */
  sample: Tensor;
  /** The scheduler sigma the sample sits at; pass it to `generate` as `startSigma`. */
  sigma: number;
  /** Steps taken. */
  steps: number;
  /** Model calls spent (one call evaluates the whole batch): `steps` for the plain inversion. */
  modelCalls: number;
}
