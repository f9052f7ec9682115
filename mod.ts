/**
 * DPM-Solver multistep schedulers for diffusion models, ported from diffusers v0.37.0 with the
 * same numbers: `DPMSolverMultistepInverseScheduler` inverts a clean sample into the noise that
 * regenerates it. Tensors are strided float32 views; the kernels run on the CPU by default.
 *
 * @example Invert a latent
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, Tensor } from "@dpmsolver/scheduler";
 * import assert from "node:assert/strict";
 *
 * const scheduler = new DPMSolverMultistepInverseScheduler({ beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012 });
 * scheduler.setTimesteps(25);
 * let latent = Tensor.from(Array.from({ length: 16 }, (_, i) => Math.sin(i)), [1, 4, 2, 2]);
 * const model = (x: Tensor, _t: number) => new Tensor(x.toFloat32Array().map(Math.tanh), x.shape);
 * for (const t of scheduler.timesteps) {
 *   latent = scheduler.step(model(latent, t), t, latent).prevSample;
 * }
 * assert.equal(scheduler.stepIndex, 25);
 * ```
 *
 * @module
 */
export * from "./lib/tensor.ts";
export * from "./lib/config.ts";
export * from "./lib/noise_schedule.ts";
export * from "./lib/timesteps.ts";
export * from "./lib/solver.ts";
export * from "./lib/kernels.ts";
export * from "./lib/backend.ts";
export * from "./lib/backends/cpu.ts";
export * from "./lib/backends/wasm.ts";
export * from "./lib/backends/webgpu.ts";
export * from "./lib/multistep_scheduler.ts";
export * from "./lib/multistep_inverse.ts";
export * from "./lib/multistep.ts";
export * from "./lib/random.ts";
export * from "./lib/npy.ts";
export * from "./lib/analytic.ts";
export * from "./lib/invert.ts";
export * from "./lib/generate.ts";
