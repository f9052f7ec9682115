// How a scheduler picks kernels and allocates the results it returns (internal).
import type { Kernels, TensorView } from "./kernels.ts";
import { Tensor } from "./tensor.ts";
import { describe } from "./_describe.ts";

/**
 * As {@link kernelsFor}, with `tensorKernels` for CPU {@link Tensor}s (a scheduler's `kernels`).
 *
 * @throws {TypeError} A value that is no tensor, or tensors of different backends.
 */
export function kernelsWith<T extends TensorView<T>>(
  tensorKernels: Kernels<Tensor>,
  operation: string,
  ...tensors: readonly (T | null | undefined)[]
): Kernels<T> {
  return pick(tensorKernels, operation, tensors);
}

/**
 * A new contiguous tensor for a result handed to the caller: for CPU kernels (`kernels` is
 * `tensorKernels`) an ordinary zero-filled {@link Tensor}, which lives as long as the caller
 * holds it, whatever backend computed it; for device kernels their `empty`.
 */
export function emptyResult<T extends TensorView<T>>(
  kernels: Kernels<T>,
  tensorKernels: Kernels<Tensor>,
  shape: readonly number[],
): T {
  return (kernels as unknown) === tensorKernels
    ? Tensor.zeros(shape) as unknown as T
    : kernels.empty(shape);
}

/**
 * Checks that `kernels` can serve as a scheduler's CPU kernels: an object with the kernel
 * methods that owns CPU {@link Tensor}s. Returns it.
 *
 * @throws {TypeError} Anything else (device kernels included).
 */
export function checkTensorKernels(kernels: unknown): Kernels<Tensor> {
  const k = kernels as Partial<Kernels<Tensor>> | null;
  const ok = typeof k === "object" && k !== null &&
    typeof k.owns === "function" && typeof k.empty === "function" &&
    typeof k.copy === "function" && typeof k.axpbyDiv === "function" &&
    typeof k.threshold === "function" && typeof k.multistep === "function" &&
    k.owns(PROBE);
  if (!ok) {
    throw new TypeError(
      `Cannot set 'kernels' as it must be kernels for CPU Tensors (cpuKernels, a WasmKernels, or your own Kernels<Tensor>): current value is ${
        describe(kernels)
      }`,
    );
  }
  return k as Kernels<Tensor>;
}

const PROBE = Tensor.zeros([1]);

export function pick<T extends TensorView<T>>(
  tensorKernels: Kernels<Tensor>,
  operation: string,
  tensors: readonly (T | null | undefined)[],
): Kernels<T> {
  let kernels: Kernels<T> | undefined;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
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
