// The model-output conversion and the unfused step, written once for every backend and the
// scheduler core.
import type { Kernels, ModelOutputConversion, TensorView } from "./kernels.ts";
import type { MultistepCoefficients } from "./solver.ts";

/** `converted = conversion(sample, modelOutput)` with the kernels' `copy` or `axpbyDiv`. */
export function convertModelOutput<T extends TensorView<T>>(
  kernels: Kernels<T>,
  converted: T,
  sample: T,
  modelOutput: T,
  conversion: ModelOutputConversion,
): void {
  const { form, a, b, d } = conversion;
  if (form === "copy") kernels.copy(converted, modelOutput);
  else if (form === "sample-first") {
    kernels.axpbyDiv(converted, a, sample, b, modelOutput, d);
  } else kernels.axpbyDiv(converted, a, modelOutput, b, sample, d);
}

/**
 * What {@link Kernels.convertAndUpdate} computes, with the separate kernels: the conversion
 * into `converted`, then the update reading it (`history` holds the earlier outputs).
 */
export function convertThenUpdate<T extends TensorView<T>>(
  kernels: Kernels<T>,
  out: T,
  converted: T,
  sample: T,
  modelOutput: T,
  conversion: ModelOutputConversion,
  history: readonly T[],
  c: MultistepCoefficients,
  noise: T | null,
): void {
  convertModelOutput(kernels, converted, sample, modelOutput, conversion);
  const outputs = [converted, ...history].slice(0, c.order);
  kernels.multistep(out, sample, outputs, c, noise);
}
