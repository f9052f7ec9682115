/**
 * Analytic diffusion models (`@dpmsolver/scheduler/analytic`): data distributions whose ideal
 * denoiser and probability-flow ODE are known exactly (a Gaussian, Gaussian mixtures), so a
 * scheduler's true error can be measured rather than its parity with another implementation.
 *
 * @example The inversion error against the exact ODE map falls as the steps grow (second order)
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, TorchGenerator } from "@dpmsolver/scheduler";
 * import { GaussianData, schedulerModel } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 *
 * const data = new GaussianData({ mean: 0.5, std: 0.3 });
 * const x0 = data.sample([64], new TorchGenerator(0));
 * const inversionError = (steps: number) => {
 *   const scheduler = new DPMSolverMultistepInverseScheduler();
 *   scheduler.setTimesteps(steps);
 *   const model = schedulerModel(data, scheduler);
 *   let x = x0;
 *   for (const t of scheduler.timesteps) x = scheduler.step(model(x, t), t, x).prevSample;
 *   const exact = data.odeMap(x0.toFloat32Array(), scheduler.alphaSigmaAt(0), scheduler.alphaSigmaAt(steps));
 *   return Math.max(...x.toFloat32Array().map((v, i) => Math.abs(v - exact[i]!)));
 * };
 * assert.ok(inversionError(50) < inversionError(25) / 2);
 * ```
 *
 * @module
 */
export * from "./lib/analytic.ts";
