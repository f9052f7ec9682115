/**
 * WebAssembly SIMD kernels (`@dpmsolver/scheduler/wasm`): the CPU kernels compiled from
 * AssemblyScript, bit-identical to the TypeScript ones and several times faster. Schedulers
 * already run CPU `Tensor`s on a shared instance by default where the runtime has WebAssembly
 * SIMD (`defaultKernels` in the main entry); import `WasmKernels` for an instance of your own,
 * for one scheduler (`scheduler.kernels = new WasmKernels()`), or for tensors in the module's
 * memory (`empty()`), which `step(..., { out })` reads and writes in place.
 *
 * @example A scheduler with kernels of its own
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, Tensor } from "@dpmsolver/scheduler";
 * import { WasmKernels } from "@dpmsolver/scheduler/wasm";
 * import assert from "node:assert/strict";
 *
 * const scheduler = new DPMSolverMultistepInverseScheduler();
 * scheduler.kernels = new WasmKernels(); // this scheduler only
 * scheduler.setTimesteps(5);
 * let x = Tensor.from([0.5, -0.25, 0.125, 1], [1, 1, 2, 2]);
 * for (const t of scheduler.timesteps) x = scheduler.step(x.clone(), t, x).prevSample;
 * assert.ok(x.toFloat32Array().every(Number.isFinite));
 * ```
 *
 * @module
 */
export { WasmKernels, type WasmKernelsOptions } from "./lib/backends/wasm.ts";
