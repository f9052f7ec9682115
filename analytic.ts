/**
 * Analytic diffusion models (`@dpmsolver/scheduler/analytic`): data distributions whose ideal
 * denoiser and probability-flow ODE are known exactly, so a scheduler's true error (not its
 * parity with another implementation) can be measured. With the VP forward process
 * `x_t = alpha_t·x0 + sigma_t·eps`:
 *
 * - {@link GaussianData}, `x0 ~ N(mu, s²)` per element: closed-form posterior means and a
 *   closed-form ODE map (the standardised value `(x_t − alpha_t·mu) / sqrt(alpha_t²·s² + sigma_t²)`
 *   is constant along the probability-flow ODE).
 * - {@link GaussianMixture}, isotropic components in `d` dimensions (the last tensor axis; `d = 1`
 *   is a per-element 1-D mixture): closed-form posterior-weighted predictions and an ODE
 *   reference from many float64 RK4 steps ({@link integrateProbabilityFlow}).
 *
 * {@link schedulerModel} turns either into the `(sample, t) => Tensor` function a scheduler loop
 * calls, in the scheduler's `prediction_type`.
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
export * from "./lib/analytic/analytic_model.ts";
export * from "./lib/analytic/gaussian_data.ts";
export * from "./lib/analytic/gaussian_mixture.ts";
export * from "./lib/analytic/probability_flow.ts";
export * from "./lib/analytic/scheduler_model.ts";
export * from "./lib/analytic/builtin_analytic_model.ts";
