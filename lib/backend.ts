/**
 * Picking the kernels for a call from the tensors it is given.
 *
 * CPU {@link Tensor}s run on the kernels of the scheduler that steps them (its `kernels`,
 * {@link defaultKernels} unless set): WebAssembly SIMD where the runtime compiles the module
 * synchronously, the TypeScript kernels ({@link cpuKernels}) otherwise. Device tensors (WebGPU)
 * run on the kernels that created them. There is no process-wide switch.
 *
 * @module
 */
import { CpuKernels } from "./backends/cpu.ts";
import { WasmKernels } from "./backends/wasm.ts";
import type { Kernels, TensorView } from "./kernels.ts";
import type { Tensor } from "./tensor.ts";
import { pick } from "./_kernel_choice.ts";

/** A tensor of any backend: a CPU {@link Tensor}, or a device tensor that names its kernels. */
// deno-lint-ignore no-explicit-any
export type AnyTensor = TensorView<any>;

/**
 * The shared TypeScript kernels: the fallback where WebAssembly SIMD is missing, and the oracle.
 * `scheduler.kernels = cpuKernels` runs one scheduler on them.
 *
 * @example
 * ```ts
 * import { cpuKernels, DPMSolverMultistepInverseScheduler } from "@dpmsolver/scheduler";
 * import assert from "node:assert/strict";
 * const scheduler = new DPMSolverMultistepInverseScheduler();
 * scheduler.kernels = cpuKernels;
 * assert.equal(scheduler.kernels.name, "cpu");
 * ```
 */
export const cpuKernels: Kernels<Tensor> = new CpuKernels();

let sharedWasm: WasmKernels | undefined;

/**
 * The kernels a scheduler runs CPU {@link Tensor}s on unless its `kernels` is set: one shared
 * {@link WasmKernels} (WebAssembly SIMD, bit-identical to the TypeScript kernels) where the
 * runtime supports WebAssembly SIMD and compiles the embedded module synchronously (Deno, Node,
 * browsers' workers), else {@link cpuKernels}. On a browser's main thread, where synchronous
 * compilation of a module this size is refused, the module is compiled in the background from
 * the first call on, and this returns the WebAssembly kernels once it is ready. Never throws.
 *
 * The shared instance holds only what schedulers own (their model-output history and the
 * staging area of a call); results are returned in ordinary JavaScript memory.
 *
 * @example
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, defaultKernels } from "@dpmsolver/scheduler";
 * import assert from "node:assert/strict";
 * assert.equal(defaultKernels().name, "wasm"); // in Deno
 * assert.equal(new DPMSolverMultistepInverseScheduler().kernels, defaultKernels());
 * assert.equal(defaultKernels(), defaultKernels());
 * ```
 */
export function defaultKernels(): Kernels<Tensor> {
  if (sharedWasm) return sharedWasm;
  if (!WasmKernels.supported()) return cpuKernels;
  sharedWasm = new WasmKernels();
  return sharedWasm;
}

/**
 * The kernels that own every tensor in `tensors` (nulls skipped): {@link defaultKernels} for CPU
 * {@link Tensor}s, a device tensor's own `kernels` otherwise. (A scheduler uses its own
 * `kernels` for CPU tensors instead of the default.)
 *
 * @throws {TypeError} A value that is no tensor, or tensors of different backends.
 *
 * @example
 * ```ts
 * import { defaultKernels, Tensor } from "@dpmsolver/scheduler";
 * import { kernelsFor } from "./backend.ts";
 * import assert from "node:assert/strict";
 * assert.equal(kernelsFor("sample", Tensor.zeros([2]), Tensor.zeros([2])), defaultKernels());
 * ```
 */
export function kernelsFor<T extends TensorView<T>>(
  operation: string,
  ...tensors: readonly (T | null | undefined)[]
): Kernels<T> {
  return pick(defaultKernels(), operation, tensors);
}
