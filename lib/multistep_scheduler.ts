/**
 * `MultistepScheduler`, what the DPM-Solver multistep schedulers share: configuration, the
 * training noise schedule, the model-output history and the step state machine. The formulas
 * live in `solver.ts`, their memoized scalars in `_step_scalars.ts` and the history's buffers in
 * `_buffer_recycler.ts`. A subclass supplies only the direction-specific parts: the inference
 * schedule and the rule that picks the step index of the first `step`.
 *
 * @module
 */
// --- kernel selection (issue 15): the scheduler's own CPU kernels, results in JS memory.
import { type AnyTensor, defaultKernels } from "./backend.ts";
import {
  checkTensorKernels,
  emptyResult,
  kernelsWith,
} from "./_kernel_choice.ts";
import type { Tensor } from "./tensor.ts";
// --- end kernel selection
import { BufferRecycler } from "./_buffer_recycler.ts";
import { writeConfigFile } from "./_config_file.ts";
import { denoFileSystem } from "./_deno.ts";
import { DIFFUSERS_VERSION, type SchedulerConfig } from "./config.ts";
import type { TorchGenerator } from "./random.ts";
import { formatShape, sameShape } from "./_shape.ts";
import type { Kernels, TensorView } from "./kernels.ts";
import {
  alphasCumprodFrom,
  type AlphaSigma,
  betasFor,
  checkNoiseSchedule,
  lambdaOf,
  sigmaToAlphaSigma,
  trainingLambdas,
  trainingSigmas,
} from "./noise_schedule.ts";
import { chooseOrder, type MultistepCoefficients } from "./solver.ts";
import { StepScalars } from "./_step_scalars.ts";
import { meanOutput, StepKernels } from "./_step_kernels.ts";
import { isFlowSchedule } from "./_sigma_families.ts";

/** Options of {@link MultistepScheduler.step}. */
export interface StepOptions<T> {
  /** Where to write the result (allocation-free stepping); a new tensor by default. */
  out?: T;
  /** Noise for the SDE algorithm types (same shape as the sample); wins over `generator`. */
  varianceNoise?: T;
  /**
   * Where the SDE algorithm types draw their noise from when no `varianceNoise` is given, as
   * diffusers' `randn_tensor(shape, generator)`: one `randn` of the sample's shape per step.
   */
  generator?: Pick<TorchGenerator, "randn">;
}

/** The result of a step, named as diffusers' `SchedulerOutput`. */
export interface StepResult<T> {
  /** The sample at the next timestep of the schedule. */
  prevSample: T;
}

/** One row of {@link MultistepScheduler.scheduleTable}. */
export interface ScheduleRow {
  /** Step index. */
  step: number;
  /** Timestep the model is evaluated at, or `null` for the final sigma. */
  t: number | null;
  /** The scheduler's sigma. */
  sigma: number;
  /** Scale of the clean signal. */
  alphaT: number;
  /** Scale of the noise. */
  sigmaT: number;
  /** Half log-SNR, `log(alpha_t) - log(sigma_t)`. */
  lambda: number;
  /** `lambda` of the next row minus this one (0 on the last row). */
  h: number;
}

/** An inference schedule: the timesteps and one more sigma than timesteps. */
export interface InferenceSchedule {
  /** Model timesteps, one per step. */
  timesteps: Int32Array;
  /** Sigmas, one per timestep plus the final one. */
  sigmas: Float32Array;
}

/**
 * The direction-independent part of the DPM-Solver multistep schedulers: what `invert`,
 * `generate` and the analytic models accept as "a scheduler".
 *
 * @example Both schedulers share the schedule table
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, DPMSolverMultistepScheduler, type MultistepScheduler } from "@dpmsolver/scheduler";
 * import assert from "node:assert/strict";
 *
 * const schedulers: MultistepScheduler[] = [new DPMSolverMultistepInverseScheduler(), new DPMSolverMultistepScheduler()];
 * for (const scheduler of schedulers) {
 *   scheduler.setTimesteps(10);
 *   const rows = scheduler.scheduleTable();
 *   assert.equal(rows.length, 11);
 *   // h is the step in lambda = log(alpha_t / sigma_t): negative up the noise, positive down.
 *   assert.equal(Math.sign(rows[0]!.h), scheduler instanceof DPMSolverMultistepScheduler ? 1 : -1);
 * }
 * ```
 */
export abstract class MultistepScheduler<
  C extends SchedulerConfig = SchedulerConfig,
> {
  /** The frozen configuration, every key filled. */
  readonly config: Readonly<C>;
  /** The training betas (float32). */
  readonly betas: Float32Array;
  /** Cumulative products of `1 - betas` (float32). */
  readonly alphasCumprod: Float32Array;
  /** `lambda_t` over the training timesteps. */
  readonly lambdaT: Float64Array;
  /** Training sigmas `sqrt((1 - ᾱ) / ᾱ)` (float32). */
  readonly trainSigmas: Float32Array;
  /** Standard deviation of the initial noise (1, as diffusers). */
  readonly initNoiseSigma = 1;
  /** Model evaluations per step (1). */
  readonly order = 1;

  /** The inference timesteps (set by `setTimesteps`; all training timesteps before). */
  timesteps: Int32Array;
  /** The inference sigmas, one more than `timesteps` (training sigmas before `setTimesteps`). */
  sigmas: Float32Array;
  /** Number of inference steps, or `null` before `setTimesteps`. */
  numInferenceSteps: number | null = null;
  /** The converted model outputs of the last `solver_order` steps, oldest first. */
  modelOutputs: (AnyTensor | null)[];
  /** How many steps have run at less than the configured order (capped at `solver_order`). */
  lowerOrderNums = 0;

  #stepIndex: number | null = null;
  // The schedule `setTimesteps` built last, with its `scheduleKey`.
  #lastSchedule: { key: string; schedule: InferenceSchedule } | null = null;
  #buffers: BufferRecycler;
  #scalars: StepScalars;
  #kernels: StepKernels;
  // --- kernel selection (issue 15)
  #tensorKernels: Kernels<Tensor> | null = null;

  /**
   * The kernels this scheduler runs CPU {@link Tensor}s on: `defaultKernels()` unless set
   * (WebAssembly SIMD where the runtime has it, else the TypeScript `cpuKernels`). Set it to
   * choose for this scheduler alone, e.g. `scheduler.kernels = cpuKernels`; no other scheduler
   * is affected. Every CPU backend gives the same bits. Device tensors (WebGPU) always run on
   * their own kernels, and mixing them with CPU tensors in one call is a `TypeError`.
   *
   * @throws {TypeError} When set to anything but kernels for CPU tensors.
   */
  get kernels(): Kernels<Tensor> {
    return this.#tensorKernels ?? defaultKernels();
  }

  set kernels(kernels: Kernels<Tensor>) {
    this.#tensorKernels = checkTensorKernels(kernels);
  }
  // --- end kernel selection

  /** The diffusers class name this scheduler reproduces. */
  abstract get className(): string;

  /** Builds the training schedule of a resolved, frozen `config`. */
  constructor(config: Readonly<C>) {
    this.config = config;
    this.#buffers = new BufferRecycler(config.solver_order);
    this.#scalars = new StepScalars(config);
    this.#kernels = new StepKernels(config, this.#scalars);
    this.betas = betasFor(config);
    this.alphasCumprod = alphasCumprodFrom(this.betas);
    if (
      (config as { rescale_betas_zero_snr?: boolean }).rescale_betas_zero_snr
    ) {
      // diffusers: close to 0 without being 0, so that the first sigma is finite (2^-24).
      this.alphasCumprod[this.alphasCumprod.length - 1] = 2 ** -24;
    }
    this.lambdaT = trainingLambdas(this.alphasCumprod);
    checkNoiseSchedule(config, this.alphasCumprod, this.lambdaT);
    this.trainSigmas = trainingSigmas(this.alphasCumprod);
    this.timesteps = Int32Array.from(
      { length: config.num_train_timesteps },
      (_, i) => i,
    );
    this.sigmas = this.trainSigmas;
    this.modelOutputs = new Array(config.solver_order).fill(null);
  }

  /** The index of the next step in `timesteps`, or `null` before the first `step`. */
  get stepIndex(): number | null {
    return this.#stepIndex;
  }

  /** The inference schedule for `numInferenceSteps` steps (direction-specific). */
  protected abstract buildSchedule(
    numInferenceSteps: number,
  ): InferenceSchedule;

  /**
   * What `buildSchedule(numInferenceSteps)` depends on besides the frozen config: equal keys
   * give equal schedules.
   */
  protected scheduleKey(numInferenceSteps: number): string {
    return String(numInferenceSteps);
  }

  /** The step index of the first `step`, given its timestep (direction-specific). */
  protected abstract initialStepIndex(timestep: number): number;

  /**
   * Extra steps past the end of `timesteps` that must still succeed as identity steps, because
   * the first step started past the schedule's first entry (see `initialStepIndex`).
   */
  protected overrunAllowance = 0;

  /**
   * Sets the inference schedule and resets the solver state.
   *
   * @param numInferenceSteps An integer in [1, num_train_timesteps].
   * @throws {RangeError} Any other value.
   */
  setTimesteps(numInferenceSteps: number): void {
    const max = this.config.num_train_timesteps;
    if (
      !Number.isInteger(numInferenceSteps) || numInferenceSteps < 1 ||
      numInferenceSteps > max
    ) {
      throw new RangeError(
        `Cannot set timesteps as 'numInferenceSteps' must be an integer in [1, ${max}]: current value is ${numInferenceSteps}`,
      );
    }
    // A repeated pass (an inversion per image) reuses the last schedule, as copies since
    // `timesteps` and `sigmas` are public.
    const key = this.scheduleKey(numInferenceSteps);
    if (this.#lastSchedule?.key !== key) {
      const schedule = this.buildSchedule(numInferenceSteps);
      this.#lastSchedule = { key, schedule };
    }
    const { schedule } = this.#lastSchedule;
    this.applySchedule({
      timesteps: schedule.timesteps.slice(),
      sigmas: schedule.sigmas.slice(),
    });
  }

  /** Installs an inference schedule and resets the solver state. */
  protected applySchedule({ timesteps, sigmas }: InferenceSchedule): void {
    this.timesteps = timesteps;
    this.sigmas = sigmas;
    this.numInferenceSteps = timesteps.length;
    this.#buffers.retire(this.modelOutputs);
    this.modelOutputs = new Array(this.config.solver_order).fill(null);
    this.lowerOrderNums = 0;
    this.#stepIndex = null;
    this.overrunAllowance = 0;
  }

  /** (alpha_t, sigma_t) of `sigmas[index]`. */
  alphaSigmaAt(index: number): AlphaSigma {
    return sigmaToAlphaSigma(this.sigmas[index]!, isFlowSchedule(this.config));
  }

  /**
   * The schedule as a table: per step its timestep, sigma, alpha_t, sigma_t, lambda and the step
   * size h in lambda, plus a last row for the final sigma.
   */
  scheduleTable(): ScheduleRow[] {
    const rows: ScheduleRow[] = [];
    for (let i = 0; i < this.sigmas.length; i++) {
      const point = this.alphaSigmaAt(i);
      rows.push({
        step: i,
        t: i < this.timesteps.length ? this.timesteps[i]! : null,
        sigma: this.sigmas[i]!,
        alphaT: point.alphaT,
        sigmaT: point.sigmaT,
        lambda: lambdaOf(point),
        h: 0,
      });
    }
    for (let i = 0; i + 1 < rows.length; i++) {
      rows[i]!.h = rows[i + 1]!.lambda - rows[i]!.lambda;
    }
    return rows;
  }

  /** `sample` unchanged: DPM-Solver needs no input scaling (kept for API parity). */
  scaleModelInput<T>(sample: T, _timestep?: number): T {
    return sample;
  }

  /**
   * Converts a raw model output into what the algorithm integrates: the predicted clean sample
   * (DPM-Solver++) or the predicted noise (DPM-Solver), thresholded if configured. Uses the
   * current step index's sigma. Allocates the result.
   */
  convertModelOutput<T extends TensorView<T>>(modelOutput: T, sample: T): T {
    const tensorKernels = this.kernels;
    const kernels = kernelsWith<T>(
      tensorKernels,
      "convert the model output",
      modelOutput,
      sample,
    );
    const mean = meanOutput(modelOutput, sample, this.config.variance_type);
    const out = emptyResult(kernels, tensorKernels, sample.shape);
    this.#kernels.convert(
      kernels,
      out,
      mean,
      sample,
      this.sigmas,
      this.#currentIndex("convert the model output"),
    );
    return out;
  }

  /**
   * Advances `sample` by one step of the multistep DPM-Solver.
   *
   * @param modelOutput The model's output at `timestep` for `sample` (with a learned variance:
   *   twice the sample's channels; the first half is used).
   * @param timestep The current timestep, an integer from `timesteps`.
   * @param sample The current sample.
   * @param options `out` to write the result into, `varianceNoise` for SDE types.
   * @throws {Error} Before `setTimesteps`, or after the last timestep.
   * @throws {TypeError} Mismatched shapes or non-tensor arguments.
   */
  step<T extends TensorView<T>>(
    modelOutput: T,
    timestep: number,
    sample: T,
    options: StepOptions<T> = {},
  ): StepResult<T> {
    if (this.numInferenceSteps === null) {
      throw new Error(
        "Cannot step as the number of inference steps is not set: call setTimesteps(numInferenceSteps) first",
      );
    }
    if (typeof timestep !== "number" || !Number.isInteger(timestep)) {
      throw new TypeError(
        `Cannot step as 'timestep' must be an integer from the schedule: current value is ${timestep}`,
      );
    }
    const tensorKernels = this.kernels;
    const kernels = kernelsWith<T>(
      tensorKernels,
      "step",
      modelOutput,
      sample,
      options.out,
      options.varianceNoise,
    );
    const mean = meanOutput(modelOutput, sample, this.config.variance_type);
    if (options.out && !sameShape(options.out.shape, sample.shape)) {
      throw new TypeError(
        `Cannot step as 'out' must have the sample's shape ${
          formatShape(sample.shape)
        }: current value is ${formatShape(options.out.shape)}`,
      );
    }
    if (this.#stepIndex === null) {
      this.#stepIndex = this.initialStepIndex(timestep);
    }
    const index = this.#stepIndex;
    const count = this.timesteps.length;
    const out = options.out ??
      emptyResult(kernels, tensorKernels, sample.shape);
    if (index >= count) {
      if (this.overrunAllowance <= 0) {
        throw new RangeError(
          `Cannot step as the schedule's ${count} steps are done (step index ${index}): call setTimesteps again to start a new pass`,
        );
      }
      // diffusers starts at the second copy of a repeated first timestep and then runs past
      // the end; that surplus step is the identity so that a loop over `timesteps` finishes.
      this.overrunAllowance--;
      kernels.copy(out, sample);
      this.#stepIndex = index + 1;
      return { prevSample: out };
    }

    const { solver_order: solverOrder, lower_order_final, euler_at_final } =
      this.config;
    const shortSchedule = lower_order_final && count < 15;
    const order = chooseOrder({
      solverOrder,
      lowerOrderNums: this.lowerOrderNums,
      lowerOrderFinal: index === count - 1 &&
        (euler_at_final || shortSchedule || this.firstOrderFinal()),
      lowerOrderSecond: index === count - 2 && shortSchedule,
    });
    // Everything that can throw is checked before anything is written.
    const noise = this.noiseFor(options, sample);
    const coefficients = this.#coefficientsAt(order, index, noise);
    const converted = this.#buffers.take(
      kernels,
      sample.shape,
      this.modelOutputs,
    );
    // One pass for the conversion and the update where the kernels offer it (not for a
    // zero-length step, which only converts).
    const step = this.#kernels;
    const fused = coefficients !== null && step.fuses(kernels);
    if (fused) {
      step.fused(
        kernels,
        out,
        converted,
        mean,
        sample,
        this.modelOutputs as unknown as T[],
        coefficients,
        noise,
        this.sigmas,
        index,
      );
    } else {
      step.convert(kernels, converted, mean, sample, this.sigmas, index);
    }
    this.modelOutputs.shift();
    this.modelOutputs.push(converted);
    if (!fused) {
      step.update(
        kernels,
        out,
        coefficients,
        this.modelOutputs as unknown as T[],
        sample,
        noise,
      );
    }
    if (this.lowerOrderNums < solverOrder) this.lowerOrderNums++;
    this.#stepIndex = index + 1;
    return { prevSample: out };
  }

  /** Whether the last step is always first order (the forward scheduler's final sigma 0). */
  protected firstOrderFinal(): boolean {
    return false;
  }

  /**
   * How many of the noisiest training timesteps `lambda_min_clipped` cuts off
   * (`searchsorted(flip(lambda_t), lambda_min_clipped)`).
   */
  protected clippedTimesteps(): number {
    const clip = this.config.lambda_min_clipped;
    let clipped = 0;
    for (
      let i = this.lambdaT.length - 1;
      i >= 0 && this.lambdaT[i]! < clip;
      i--
    ) clipped++;
    return clipped;
  }

  /**
   * The noise for an SDE step, or `null` for the ODE algorithm types. Subclasses that support
   * SDE types override this.
   */
  protected noiseFor<T>(_options: StepOptions<T>, _sample: T): T | null {
    return null;
  }

  /**
   * First-order DPM-Solver(++) update (DDIM-equivalent) from the current step index's sigma to
   * the next, with the converted model output. Allocates the result.
   */
  dpmSolverFirstOrderUpdate<T extends TensorView<T>>(
    modelOutput: T,
    sample: T,
    noise?: T,
  ): T {
    return this.#publicUpdate(1, [modelOutput], sample, noise);
  }

  /**
   * Second-order multistep update; `modelOutputList` holds converted outputs, oldest first (the
   * last two are used). Allocates the result.
   */
  multistepDpmSolverSecondOrderUpdate<T extends TensorView<T>>(
    modelOutputList: readonly T[],
    sample: T,
    noise?: T,
  ): T {
    return this.#publicUpdate(2, modelOutputList, sample, noise);
  }

  /**
   * Third-order multistep update; `modelOutputList` holds converted outputs, oldest first (the
   * last three are used). Allocates the result.
   */
  multistepDpmSolverThirdOrderUpdate<T extends TensorView<T>>(
    modelOutputList: readonly T[],
    sample: T,
    noise?: T,
  ): T {
    return this.#publicUpdate(3, modelOutputList, sample, noise);
  }

  /**
   * diffusers' `add_noise`: `alpha_t·x0 + sigma_t·noise` per batch item, at the sigma of each
   * item's timestep (an unknown timestep takes the last sigma). Allocates the result.
   */
  addNoise<T extends TensorView<T>>(
    originalSamples: T,
    noise: T,
    timesteps: ArrayLike<number>,
  ): T {
    const tensorKernels = this.kernels;
    const kernels = kernelsWith<T>(
      tensorKernels,
      "add noise",
      originalSamples,
      noise,
    );
    if (!sameShape(originalSamples.shape, noise.shape)) {
      throw new TypeError(
        `Cannot add noise as 'noise' must have the shape of 'originalSamples' ${
          formatShape(originalSamples.shape)
        }: current value is ${formatShape(noise.shape)}`,
      );
    }
    const batch = originalSamples.shape[0] ?? 1;
    if (timesteps.length !== batch) {
      throw new TypeError(
        `Cannot add noise as 'timesteps' must hold one timestep per batch item (${batch}): current length is ${timesteps.length}`,
      );
    }
    const out = emptyResult(kernels, tensorKernels, originalSamples.shape);
    for (let i = 0; i < batch; i++) {
      const { alphaT, sigmaT } = this.alphaSigmaAt(
        this.addNoiseIndex(timesteps[i]!),
      );
      kernels.axpbyDiv(
        out.slice(0, i, i + 1),
        alphaT,
        originalSamples.slice(0, i, i + 1),
        sigmaT,
        noise.slice(0, i, i + 1),
        1,
      );
    }
    return out;
  }

  /** The index of the sigma `addNoise` uses for `timestep` (by default `indexForTimestep`). */
  protected addNoiseIndex(timestep: number): number {
    return this.indexForTimestep(timestep);
  }

  /** diffusers' index rule for `add_noise`: none → last, several → the second, else the one. */
  protected indexForTimestep(timestep: number): number {
    let first = -1;
    for (let i = 0; i < this.timesteps.length; i++) {
      if (this.timesteps[i] !== timestep) continue;
      if (first >= 0) return i;
      first = i;
    }
    return first >= 0 ? first : this.timesteps.length - 1;
  }

  /** diffusers' config dictionary: `_class_name`, `_diffusers_version` and every key. */
  toJSON(): Record<string, unknown> {
    return {
      _class_name: this.className,
      _diffusers_version: DIFFUSERS_VERSION,
      ...this.config,
      trained_betas: this.config.trained_betas
        ? [...this.config.trained_betas]
        : null,
    };
  }

  /** Writes `scheduler_config.json` into `dir` (created if missing), as diffusers writes it. Needs Deno. */
  async saveConfig(dir: string): Promise<void> {
    denoFileSystem(
      `save the config to '${dir}'`,
      "store scheduler.toJSON() as JSON yourself",
    );
    await writeConfigFile(dir, this.toJSON());
  }

  #currentIndex(operation: string): number {
    if (this.#stepIndex === null) {
      throw new Error(
        `Cannot ${operation} as the step index is not set: it is set by the first step() after setTimesteps()`,
      );
    }
    if (this.#stepIndex >= this.timesteps.length) {
      throw new RangeError(
        `Cannot ${operation} as the schedule's ${this.timesteps.length} steps are done`,
      );
    }
    return this.#stepIndex;
  }

  #publicUpdate<T extends TensorView<T>>(
    order: 1 | 2 | 3,
    modelOutputList: readonly T[],
    sample: T,
    noise: T | undefined,
  ): T {
    const tensorKernels = this.kernels;
    const kernels = kernelsWith<T>(
      tensorKernels,
      "update",
      sample,
      noise,
      ...modelOutputList,
    );
    if (modelOutputList.length < order) {
      throw new RangeError(
        `Cannot take a order-${order} update as 'modelOutputList' must hold at least ${order} outputs: current length is ${modelOutputList.length}`,
      );
    }
    const index = this.#currentIndex("update");
    const noiseOrNull = noise ?? null;
    const coefficients = this.#coefficientsAt(order, index, noiseOrNull);
    const out = emptyResult(kernels, tensorKernels, sample.shape);
    this.#kernels.update(
      kernels,
      out,
      coefficients,
      modelOutputList,
      sample,
      noiseOrNull,
    );
    return out;
  }

  // The coefficients of an order-`order` update from sigmas[index] to sigmas[index + 1]
  // (memoized), after the checks that the step can be taken.
  #coefficientsAt(
    order: 1 | 2 | 3,
    index: number,
    noise: unknown,
  ): MultistepCoefficients | null {
    if (index - (order - 1) < 0) {
      throw new RangeError(
        `Cannot take a order-${order} step at step index ${index}: it needs ${
          order - 1
        } earlier steps`,
      );
    }
    const coefficients = this.#scalars.coefficients(this.sigmas, order, index);
    if (coefficients && coefficients.e !== 0 && noise === null) {
      throw new TypeError(
        `Cannot step as 'algorithm_type' "${this.config.algorithm_type}" needs noise: pass 'varianceNoise' or 'generator'`,
      );
    }
    return coefficients;
  }
}
