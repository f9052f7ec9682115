/**
 * The kernel calls of one step: the model-output conversion (with dynamic thresholding), the
 * multistep update, and both in one call where the kernels fuse them. The scheduler decides what
 * to call and when; the scalars come from its {@link StepScalars}.
 *
 * @module
 */
import type { SchedulerConfig, VarianceType } from "./config.ts";
import { convertModelOutput } from "./_convert.ts";
import type { Kernels, ModelOutputConversion, TensorView } from "./kernels.ts";
import { formatShape, sameShape } from "./_shape.ts";
import {
  isDataPrediction,
  modelOutputConversion,
  type MultistepCoefficients,
  type WritableConversion,
} from "./solver.ts";
import type { StepScalars } from "./_step_scalars.ts";
import type { AnyTensor } from "./backend.ts";

// --- fused thresholded step (issue 15): an optional backend method beyond the kernel interface
// (WasmKernels.convertThresholdAndUpdate), the same bits as the conversion then
// thresholdAndUpdate.
interface FusedThreshold<T> {
  convertThresholdAndUpdate(
    out: T,
    converted: T,
    sample: T,
    modelOutput: T,
    conversion: ModelOutputConversion,
    ratio: number,
    maxValue: number,
    history: readonly T[],
    c: MultistepCoefficients,
    noise: T | null,
  ): void;
}
// --- end fused thresholded step

/** One scheduler's step kernels, with the scratch they reuse so that a step allocates nothing. */
export class StepKernels {
  readonly #config: Readonly<SchedulerConfig>;
  readonly #scalars: StepScalars;
  // The converted outputs an update reads, newest first.
  #history: AnyTensor[] = [];
  // Thresholding under noise prediction: the x0 ↔ ε round trip's conversions.
  #roundTrip: WritableConversion = { form: "copy", a: 1, b: 0, d: 1 };

  /** Kernel calls for a scheduler of `config` whose scalars `scalars` memoizes. */
  constructor(config: Readonly<SchedulerConfig>, scalars: StepScalars) {
    this.#config = config;
    this.#scalars = scalars;
  }

  /**
   * The update to the next sigma, reading the newest outputs of `outputs` (oldest first); a
   * zero-length step (`null`: equal sigmas) leaves the sample as it is, where diffusers' heun
   * and third-order updates divide 0 by 0.
   */
  update<T extends TensorView<T>>(
    kernels: Kernels<T>,
    out: T,
    coefficients: MultistepCoefficients | null,
    outputs: readonly T[],
    sample: T,
    noise: T | null,
  ): void {
    if (coefficients === null) {
      kernels.copy(out, sample);
      return;
    }
    const history = this.#history as unknown as T[];
    const n = outputs.length;
    for (let k = 1; k <= coefficients.order; k++) history.push(outputs[n - k]!);
    try {
      kernels.multistep(out, sample, history, coefficients, noise);
    } finally {
      history.length = 0;
    }
  }

  /**
   * Whether the kernels take the conversion (or thresholding's last pass) and the update in one
   * call.
   */
  fuses<T extends TensorView<T>>(kernels: Kernels<T>): boolean {
    return this.#config.thresholding
      ? kernels.thresholdAndUpdate !== undefined &&
        isDataPrediction(this.#config.algorithm_type)
      : kernels.convertAndUpdate !== undefined;
  }

  /**
   * The conversion into `converted` and the update in one kernel call; with thresholding, the
   * conversion and then one call for the thresholding's clamp-and-divide and the update. The
   * history is still the previous step's (oldest first).
   */
  fused<T extends TensorView<T>>(
    kernels: Kernels<T>,
    out: T,
    converted: T,
    modelOutput: T,
    sample: T,
    outputs: readonly T[],
    coefficients: MultistepCoefficients,
    noise: T | null,
    sigmas: Float32Array,
    index: number,
  ): void {
    const n = outputs.length;
    // The earlier converted outputs, newest first (the oldest slot is `converted`'s buffer).
    const history = this.#history as unknown as T[];
    for (let k = 1; k < coefficients.order; k++) history.push(outputs[n - k]!);
    try {
      // --- fused thresholded step (issue 15): backends that offer it convert on the fly.
      const conversion = this.#scalars.conversion(sigmas, index);
      const convertThresholdAndUpdate = (kernels as Partial<FusedThreshold<T>>)
        .convertThresholdAndUpdate;
      if (
        this.#config.thresholding && convertThresholdAndUpdate !== undefined &&
        conversion.form === "sample-first"
      ) {
        convertThresholdAndUpdate.call(
          kernels,
          out,
          converted,
          sample,
          modelOutput,
          conversion,
          this.#config.dynamic_thresholding_ratio,
          this.#config.sample_max_value,
          history,
          coefficients,
          noise,
        );
      } // --- end fused thresholded step
      else if (this.#config.thresholding) {
        this.convert(
          kernels,
          converted,
          modelOutput,
          sample,
          sigmas,
          index,
          false,
        );
        kernels.thresholdAndUpdate!(
          out,
          converted,
          sample,
          this.#config.dynamic_thresholding_ratio,
          this.#config.sample_max_value,
          history,
          coefficients,
          noise,
        );
      } else {
        kernels.convertAndUpdate!(
          out,
          converted,
          sample,
          modelOutput,
          conversion,
          history,
          coefficients,
          noise,
        );
      }
    } finally {
      history.length = 0;
    }
  }

  /**
   * diffusers' convert_model_output into `out`, at sigmas[index], thresholded if configured
   * (and `threshold`).
   */
  convert<T extends TensorView<T>>(
    kernels: Kernels<T>,
    out: T,
    modelOutput: T,
    sample: T,
    sigmas: Float32Array,
    index: number,
    threshold = true,
  ): void {
    const scalars = this.#scalars;
    const conversion = scalars.conversion(sigmas, index);
    convertModelOutput(kernels, out, sample, modelOutput, conversion);
    if (!threshold || !this.#config.thresholding) return;
    const { dynamic_thresholding_ratio: ratio, sample_max_value: maxValue } =
      this.#config;
    if (isDataPrediction(this.#config.algorithm_type)) {
      kernels.threshold(out, ratio, maxValue);
      return;
    }
    // Threshold the implied x0 (DPM-Solver++'s conversion of ε), then turn it back into noise
    // (DPM-Solver's conversion of x0).
    const alphaT = scalars.alphaT(sigmas, index);
    const sigmaT = scalars.sigmaT(sigmas, index);
    const sigma = sigmas[index]!;
    const toX0 = modelOutputConversion(
      "dpmsolver++",
      "epsilon",
      alphaT,
      sigmaT,
      sigma,
      this.#roundTrip,
    );
    convertModelOutput(kernels, out, sample, out, toX0);
    kernels.threshold(out, ratio, maxValue);
    const toEpsilon = modelOutputConversion(
      "dpmsolver",
      "sample",
      alphaT,
      sigmaT,
      sigma,
      this.#roundTrip,
    );
    convertModelOutput(kernels, out, sample, out, toEpsilon);
  }
}

/**
 * The model output's mean channels (a strided view for a learned variance, which doubles the
 * channels), after the shape checks.
 *
 * @throws {TypeError} A shape that is neither the sample's nor, with a learned variance, the
 *   sample's with twice its channels.
 */
export function meanOutput<T extends TensorView<T>>(
  modelOutput: T,
  sample: T,
  varianceType: VarianceType,
): T {
  const learned = varianceType === "learned" ||
    varianceType === "learned_range";
  if (sameShape(modelOutput.shape, sample.shape)) return modelOutput;
  const channels = sample.shape[1];
  const doubled = learned && channels !== undefined &&
    modelOutput.shape.length === sample.shape.length &&
    modelOutput.shape.every((
      n,
      i,
    ) => (i === 1 ? n === 2 * channels : n === sample.shape[i]));
  if (doubled) return modelOutput.slice(1, 0, channels);
  throw new TypeError(
    `Cannot step as 'modelOutput' must have the sample's shape ${
      formatShape(sample.shape)
    }${
      learned ? " (or twice its channels, for a learned variance)" : ""
    }: current value is ${formatShape(modelOutput.shape)}`,
  );
}
