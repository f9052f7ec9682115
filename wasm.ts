/**
 * WebAssembly SIMD kernels (`@dpmsolver/scheduler/wasm`): the CPU kernels compiled from
 * AssemblyScript, bit-identical to the TypeScript ones and several times faster on large
 * samples. Choose them for every CPU `Tensor` with `setTensorKernels` from the main entry.
 *
 * @example Run a scheduler on the SIMD kernels, then restore the default
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, setTensorKernels, Tensor } from "@dpmsolver/scheduler";
 * import { WasmKernels } from "@dpmsolver/scheduler/wasm";
 * import assert from "node:assert/strict";
 *
 * const previous = setTensorKernels(new WasmKernels());
 * try {
 *   const scheduler = new DPMSolverMultistepInverseScheduler();
 *   scheduler.setTimesteps(5);
 *   let x = Tensor.from([0.5, -0.25, 0.125, 1], [1, 1, 2, 2]);
 *   for (const t of scheduler.timesteps) x = scheduler.step(x.clone(), t, x).prevSample;
 *   assert.ok(x.toFloat32Array().every(Number.isFinite));
 * } finally {
 *   setTensorKernels(previous);
 * }
 * ```
 *
 * @module
 */
export { WasmKernels, type WasmKernelsOptions } from "./lib/backends/wasm.ts";
