/**
 * DPM-Solver multistep schedulers for diffusion models, ported from diffusers v0.37.0 with the
 * same numbers: `DPMSolverMultistepInverseScheduler` inverts a clean sample into the noise that
 * regenerates it, `DPMSolverMultistepScheduler` samples from noise, and `invert`/`generate` run
 * either loop around any model function. Tensors are strided float32 views; CPU tensors run on
 * WebAssembly SIMD kernels where the runtime has them (`defaultKernels`), the TypeScript
 * `cpuKernels` otherwise, chosen per scheduler with `scheduler.kernels`.
 *
 * Everything else lives behind subpaths: `@dpmsolver/scheduler/wasm` (WebAssembly SIMD kernels),
 * `@dpmsolver/scheduler/webgpu` (WebGPU kernels), `@dpmsolver/scheduler/analytic` (exact
 * diffusion models for measuring error), `@dpmsolver/scheduler/npy` (NumPy `.npy` files) and
 * `@dpmsolver/scheduler/onnx` (ONNX Runtime models).
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
export { DPMSolverMultistepInverseScheduler } from "./lib/multistep_inverse.ts";
export {
  DPMSolverMultistepScheduler,
  type SetTimestepsOptions,
} from "./lib/multistep.ts";
export {
  type InferenceSchedule,
  MultistepScheduler,
  type ScheduleRow,
  type StepOptions,
  type StepResult,
} from "./lib/multistep_scheduler.ts";
export { Tensor } from "./lib/tensor.ts";
export {
  ALGORITHM_TYPES,
  type AlgorithmType,
  BETA_SCHEDULES,
  type BetaSchedule,
  DEFAULT_CONFIG,
  DIFFUSERS_VERSION,
  type DPMSolverMultistepConfig,
  FINAL_SIGMAS_TYPES,
  type FinalSigmasType,
  type FromPretrainedOptions,
  MULTISTEP_DEFAULT_CONFIG,
  PREDICTION_TYPES,
  type PredictionType,
  type SchedulerConfig,
  SOLVER_TYPES,
  type SolverType,
  TIME_SHIFT_TYPES,
  type TimeShiftType,
  TIMESTEP_SPACINGS,
  type TimestepSpacing,
  VARIANCE_TYPES,
  type VarianceType,
} from "./lib/config.ts";
export { invert, type InvertOptions } from "./lib/invert.ts";
export {
  checkExactInversion,
  type ExactInversionOptions,
  type ExactInversionResult,
  type ExactIteration,
} from "./lib/exact_inversion.ts";
export { generate, type GenerateOptions } from "./lib/generate.ts";
export type {
  DiffusionModel,
  InversionResult,
  LoopOptions,
  LoopProgress,
} from "./lib/model.ts";
export { TorchGenerator } from "./lib/random.ts";
export type { AlphaSigma } from "./lib/noise_schedule.ts";
export type {
  Kernels,
  ModelOutputConversion,
  TensorView,
} from "./lib/kernels.ts";
export type { MultistepCoefficients } from "./lib/solver.ts";
export { type AnyTensor, cpuKernels, defaultKernels } from "./lib/backend.ts";
