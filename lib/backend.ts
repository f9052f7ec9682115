/**
 * Picking the kernels for a call from the tensors it is given.
 *
 * @module
 */
import { CpuKernels } from "./backends/cpu.ts";
import { describe } from "./_describe.ts";
import type { Kernels, TensorView } from "./kernels.ts";
import { Tensor } from "./tensor.ts";

/** A tensor of any backend: a CPU {@link Tensor}, or a device tensor that names its kernels. */
// deno-lint-ignore no-explicit-any
export type AnyTensor = TensorView<any>;

/** The shared CPU kernels. */
export const cpuKernels: CpuKernels = new CpuKernels();

let tensorKernels: Kernels<Tensor> = cpuKernels;

/**
 * Chooses the kernels that run on CPU {@link Tensor}s from now on, in every scheduler of this
 * process: `cpuKernels` (the default, plain TypeScript) or a `WasmKernels` (WebAssembly SIMD,
 * bit-identical and faster). Returns the kernels chosen before, so a caller can restore them.
 *
 * @example
 * ```ts
 * import { setTensorKernels, Tensor } from "@dpmsolver/scheduler";
 * import { WasmKernels } from "@dpmsolver/scheduler/wasm";
 * import { cpuKernels, kernelsFor } from "./backend.ts";
 * import assert from "node:assert/strict";
 * const previous = setTensorKernels(new WasmKernels());
 * assert.equal(kernelsFor("step", Tensor.zeros([2])).name, "wasm");
 * setTensorKernels(previous);
 * assert.equal(previous, cpuKernels);
 * ```
 */
export function setTensorKernels(
  kernels: Kernels<Tensor> = cpuKernels,
): Kernels<Tensor> {
  const previous = tensorKernels;
  tensorKernels = kernels;
  return previous;
}

/**
 * The kernels that own every tensor in `tensors` (nulls skipped): for {@link Tensor}s the CPU
 * kernels chosen with {@link setTensorKernels}, for device tensors the tensor's own `kernels`.
 *
 * @throws {TypeError} A value that is no tensor, or tensors of different backends.
 *
 * @example
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { kernelsFor } from "./backend.ts";
 * import assert from "node:assert/strict";
 * assert.equal(kernelsFor("sample", Tensor.zeros([2]), Tensor.zeros([2])).name, "cpu");
 * ```
 */
export function kernelsFor<T extends TensorView<T>>(
  operation: string,
  ...tensors: readonly (T | null | undefined)[]
): Kernels<T> {
  let kernels: Kernels<T> | undefined;
  for (const t of tensors) {
    if (t === null || t === undefined) continue;
    const own = t instanceof Tensor
      ? tensorKernels as unknown as Kernels<T>
      : (t as { kernels?: Kernels<T> }).kernels;
    if (!own || !own.owns(t)) {
      throw new TypeError(
        `Cannot ${operation} as an argument is not a Tensor: current value is ${
          describe(t)
        } (wrap a Float32Array with new Tensor(data, shape))`,
      );
    }
    if (kernels && kernels !== own) {
      throw new TypeError(
        `Cannot ${operation} as its tensors live on different backends ('${kernels.name}' and '${own.name}'): move them to one backend first`,
      );
    }
    kernels = own;
  }
  return kernels ?? (tensorKernels as unknown as Kernels<T>);
}
