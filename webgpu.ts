/**
 * WebGPU kernels (`@dpmsolver/scheduler/webgpu`): schedulers step device tensors with WGSL
 * compute shaders, reading back only when asked. `requestWebGpuKernels` gives `null` where
 * WebGPU or an adapter is missing, so a program can fall back to the CPU; `createWebGpuKernels`
 * throws `WebGpuUnavailableError` instead.
 *
 * @example Use the GPU when there is one
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { requestWebGpuKernels } from "@dpmsolver/scheduler/webgpu";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestWebGpuKernels();
 * if (gpu !== null) {
 *   const x = gpu.upload(Tensor.from([1, 2, 3, 4], [2, 2]));
 *   assert.deepEqual(Array.from((await gpu.read(x)).toFloat32Array()), [1, 2, 3, 4]);
 *   gpu.destroy();
 * }
 * ```
 *
 * @module
 */
export * from "./lib/backends/webgpu.ts";
