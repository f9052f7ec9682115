/**
 * What the DPM-Solver multistep schedulers share: configuration, the training noise schedule,
 * the model-output history, model-output conversion, order selection and the step itself. A
 * subclass supplies only the direction-specific parts: the inference schedule and the rule that
 * picks the step index of the first `step`.
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
import { convertModelOutput } from "./_convert.ts";
import {
  type AlgorithmType,
  DIFFUSERS_VERSION,
  type SchedulerConfig,
  stringifyConfig,
} from "./config.ts";
import type { TorchGenerator } from "./random.ts";
import { formatShape, sameShape } from "./_shape.ts";
import type { Kernels, ModelOutputConversion, TensorView } from "./kernels.ts";
import {
  alphasCumprodFrom,
  type AlphaSigma,
  betasFor,
  lambdaOf,
  sigmaToAlphaSigma,
  trainingLambdas,
  trainingSigmas,
} from "./noise_schedule.ts";
import {
  chooseOrder,
  type MultistepCoefficients,
  multistepCoefficients,
} from "./solver.ts";

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

/** The direction-independent part of the DPM-Solver multistep schedulers. */
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
  // Buffers this scheduler allocated for converted outputs; only these are recycled.
  #owned = new WeakSet<object>();
  // Owned buffers of the history a new schedule dropped, reused by the next pass's first steps
  // (so that repeated passes allocate nothing either; at most `solver_order` of them).
  #spare: AnyTensor[] = [];
  // The scalars of the hot path, memoized as pure functions of the sigma values, so that a step
  // allocates nothing and a repeated schedule (`setTimesteps` with the same sigmas) reuses them.
  // Per sigma index: [sigma they belong to, alpha_t, sigma_t, lambda]; a slot is valid while
  // its sigma is `Object.is`-equal to `sigmas[index]`.
  #points = new Float64Array(0);
  // Per (step index, asked order): the update coefficients (`null`: a zero-length step), valid
  // while the sigmas they were computed from (stored in `#coefficientSigmas`) are unchanged.
  #coefficients: (MultistepCoefficients | null | undefined)[] = [];
  #coefficientSigmas = new Float64Array(0);
  // Reused per step: the conversion handed to a fused kernel and the history it reads.
  #conversion: WritableConversion = { form: "copy", a: 1, b: 0, d: 1 };
  #history: AnyTensor[] = [];
  // --- kernel selection (issue 15)
  #kernels: Kernels<Tensor> | null = null;

  /**
   * The kernels this scheduler runs CPU {@link Tensor}s on: {@link defaultKernels} unless set
   * (WebAssembly SIMD where the runtime has it, else the TypeScript `cpuKernels`). Set it to
   * choose for this scheduler alone, e.g. `scheduler.kernels = cpuKernels`; no other scheduler
   * is affected. Every CPU backend gives the same bits. Device tensors (WebGPU) always run on
   * their own kernels, and mixing them with CPU tensors in one call is a `TypeError`.
   *
   * @throws {TypeError} When set to anything but kernels for CPU tensors.
   */
  get kernels(): Kernels<Tensor> {
    return this.#kernels ?? defaultKernels();
  }

  set kernels(kernels: Kernels<Tensor>) {
    this.#kernels = checkTensorKernels(kernels);
  }
  // --- end kernel selection

  /** The diffusers class name this scheduler reproduces. */
  abstract get className(): string;

  constructor(config: Readonly<C>) {
    this.config = config;
    this.betas = betasFor(config);
    this.alphasCumprod = alphasCumprodFrom(this.betas);
    if (
      (config as { rescale_betas_zero_snr?: boolean }).rescale_betas_zero_snr
    ) {
      // diffusers: close to 0 without being 0, so that the first sigma is finite (2^-24).
      this.alphasCumprod[this.alphasCumprod.length - 1] = 2 ** -24;
    }
    this.lambdaT = trainingLambdas(this.alphasCumprod);
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
    for (const m of this.modelOutputs) {
      if (
        m && this.#owned.has(m) && !this.#spare.includes(m) &&
        this.#spare.length < this.config.solver_order
      ) this.#spare.push(m);
    }
    this.modelOutputs = new Array(this.config.solver_order).fill(null);
    this.lowerOrderNums = 0;
    this.#stepIndex = null;
    this.overrunAllowance = 0;
  }

  /** (alpha_t, sigma_t) of `sigmas[index]`. */
  alphaSigmaAt(index: number): AlphaSigma {
    return sigmaToAlphaSigma(this.sigmas[index]!, this.config.use_flow_sigmas);
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
    const meanOutput = this.#checkModelOutput(modelOutput, sample);
    const out = emptyResult(kernels, tensorKernels, sample.shape);
    this.#convertInto(
      kernels,
      out,
      meanOutput,
      sample,
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
    const meanOutput = this.#checkModelOutput(modelOutput, sample);
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
    const lowerOrderFinal = index === count - 1 &&
      (euler_at_final || shortSchedule || this.firstOrderFinal());
    const lowerOrderSecond = index === count - 2 && shortSchedule;

    const converted = this.#recycledBuffer(kernels, sample.shape);
    const order = chooseOrder({
      solverOrder,
      lowerOrderNums: this.lowerOrderNums,
      lowerOrderFinal,
      lowerOrderSecond,
    });
    // One pass for the conversion and the update where the kernels offer it; with thresholding
    // (which needs the quantile of the whole conversion first), clamp-and-divide and the update.
    const fuse = this.config.thresholding
      ? kernels.thresholdAndUpdate !== undefined &&
        isDataPrediction(this.config.algorithm_type)
      : kernels.convertAndUpdate !== undefined;
    if (fuse) {
      this.#fusedStep(
        kernels,
        out,
        converted,
        meanOutput,
        sample,
        order,
        options,
        index,
      );
      if (this.lowerOrderNums < solverOrder) this.lowerOrderNums++;
      this.#stepIndex = index + 1;
      return { prevSample: out };
    }

    this.#convertInto(kernels, converted, meanOutput, sample, index);
    this.modelOutputs.shift();
    this.modelOutputs.push(converted);

    const noise = this.noiseFor(options, sample);
    this.#update(
      kernels,
      out,
      order,
      this.modelOutputs as unknown as T[],
      sample,
      noise,
      index,
    );

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

  /** Writes `scheduler_config.json` into `dir` (created if missing), as diffusers writes it. */
  async saveConfig(dir: string): Promise<void> {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/scheduler_config.json`,
      stringifyConfig(this.toJSON()),
    );
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
    const out = emptyResult(kernels, tensorKernels, sample.shape);
    this.#update(
      kernels,
      out,
      order,
      modelOutputList,
      sample,
      noise ?? null,
      this.#currentIndex("update"),
    );
    return out;
  }

  // The update from sigmas[index] to sigmas[index + 1], reading the newest `order` outputs.
  #update<T extends TensorView<T>>(
    kernels: Kernels<T>,
    out: T,
    order: 1 | 2 | 3,
    modelOutputList: readonly T[],
    sample: T,
    noise: T | null,
    index: number,
  ): void {
    const coefficients = this.#coefficientsAt(order, index, noise);
    if (coefficients === null) {
      // A zero-length step (equal sigmas) leaves the sample as it is, where diffusers' heun and
      // third-order updates divide 0 by 0.
      kernels.copy(out, sample);
      return;
    }
    const n = modelOutputList.length;
    const history = [
      modelOutputList[n - 1]!,
      modelOutputList[n - 2]!,
      modelOutputList[n - 3]!,
    ]
      .slice(0, coefficients.order);
    kernels.multistep(out, sample, history, coefficients, noise);
  }

  // A whole step in one kernel call (conversion into `converted`, then the update), for kernels
  // that offer it; with thresholding, the conversion and then one call for the thresholding's
  // clamp-and-divide and the update. Everything that can throw is checked before anything is
  // written; a zero-length step converts and copies the sample, as the separate way does.
  #fusedStep<T extends TensorView<T>>(
    kernels: Kernels<T>,
    out: T,
    converted: T,
    modelOutput: T,
    sample: T,
    order: 1 | 2 | 3,
    options: StepOptions<T>,
    index: number,
  ): void {
    const conversion = this.#conversionAt(index);
    const noise = this.noiseFor(options, sample);
    const coefficients = this.#coefficientsAt(order, index, noise);
    const outputs = this.modelOutputs as unknown as T[];
    if (coefficients === null) {
      this.#convertInto(kernels, converted, modelOutput, sample, index);
      outputs.shift();
      outputs.push(converted);
      kernels.copy(out, sample);
      return;
    }
    const n = outputs.length;
    // The earlier converted outputs, newest first (the oldest slot is `converted`'s buffer).
    const history = this.#history as unknown as T[];
    for (let k = 1; k < coefficients.order; k++) history.push(outputs[n - k]!);
    try {
      // --- fused thresholded step (issue 15): backends that offer it convert on the fly.
      const convertThresholdAndUpdate = (kernels as Partial<FusedThreshold<T>>)
        .convertThresholdAndUpdate;
      if (
        this.config.thresholding && convertThresholdAndUpdate !== undefined &&
        conversion.form === "sample-first"
      ) {
        convertThresholdAndUpdate.call(
          kernels,
          out,
          converted,
          sample,
          modelOutput,
          conversion,
          this.config.dynamic_thresholding_ratio,
          this.config.sample_max_value,
          history,
          coefficients,
          noise,
        );
      } // --- end fused thresholded step
      else if (this.config.thresholding) {
        this.#convertInto(
          kernels,
          converted,
          modelOutput,
          sample,
          index,
          false,
        );
        kernels.thresholdAndUpdate!(
          out,
          converted,
          sample,
          this.config.dynamic_thresholding_ratio,
          this.config.sample_max_value,
          history,
          coefficients,
          noise,
        );
      } else {
        kernels.convertAndUpdate!(
          out,
          converted,
          sample,
          modelOutput,
          conversion,
          history,
          coefficients,
          noise,
        );
      }
    } finally {
      history.length = 0;
    }
    outputs.shift();
    outputs.push(converted);
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
    const sigmas = this.sigmas;
    const slot = 3 * index + order - 1;
    if (this.#coefficients.length < 3 * sigmas.length) {
      this.#coefficients = new Array(3 * sigmas.length);
      this.#coefficientSigmas = new Float64Array(12 * sigmas.length);
    }
    const used = this.#coefficientSigmas;
    let coefficients = this.#coefficients[slot];
    let valid = coefficients !== undefined;
    for (let j = 0; valid && j <= order; j++) {
      valid = Object.is(used[4 * slot + j], sigmas[index + 1 - j]);
    }
    if (!valid) {
      this.#coefficients[slot] = undefined;
      const points: AlphaSigma[] = [];
      const lambdas: number[] = [];
      for (let j = 0; j <= order; j++) {
        const at = this.#point(index + 1 - j);
        const cache = this.#points;
        points.push({ alphaT: cache[at + 1]!, sigmaT: cache[at + 2]! });
        lambdas.push(cache[at + 3]!);
        used[4 * slot + j] = sigmas[index + 1 - j]!;
      }
      coefficients = multistepCoefficients(
        order,
        this.config.algorithm_type,
        this.config.solver_type,
        points,
        lambdas,
      );
      this.#coefficients[slot] = coefficients;
    }
    if (coefficients && coefficients.e !== 0 && noise === null) {
      throw new TypeError(
        `Cannot step as 'algorithm_type' "${this.config.algorithm_type}" needs noise: pass 'varianceNoise' or 'generator'`,
      );
    }
    return coefficients ?? null;
  }

  // The offset in `#points` of sigmas[index]'s [sigma, alpha_t, sigma_t, lambda], computed on
  // first use (as `alphaSigmaAt` and `lambdaOf` compute them).
  #point(index: number): number {
    const sigma = this.sigmas[index]!;
    if (this.#points.length < 4 * this.sigmas.length) {
      this.#points = new Float64Array(4 * this.sigmas.length).fill(NaN);
    }
    const cache = this.#points;
    const at = 4 * index;
    if (!Object.is(cache[at], sigma) || cache[at + 3] !== cache[at + 3]) {
      const point = sigmaToAlphaSigma(sigma, this.config.use_flow_sigmas);
      cache[at] = sigma;
      cache[at + 1] = point.alphaT;
      cache[at + 2] = point.sigmaT;
      cache[at + 3] = lambdaOf(point);
    }
    return at;
  }

  // diffusers' convert_model_output before thresholding, at sigmas[index], as one form of
  // `axpbyDiv` or a copy (a shared object, rewritten per call).
  #conversionAt(index: number): ModelOutputConversion {
    const { algorithm_type, prediction_type } = this.config;
    const at = this.#point(index);
    const alphaT = this.#points[at + 1]!;
    const sigmaT = this.#points[at + 2]!;
    // One object, rewritten in place: this runs every step.
    const c = this.#conversion;
    if (isDataPrediction(algorithm_type)) {
      switch (prediction_type) {
        case "epsilon": // x0 = (x − σ_t·ε) / α_t
          setConversion(c, "sample-first", 1, -sigmaT, alphaT);
          break;
        case "sample":
          setConversion(c, "copy", 1, 0, 1);
          break;
        case "v_prediction": // x0 = α_t·x − σ_t·v
          setConversion(c, "sample-first", alphaT, -sigmaT, 1);
          break;
        case "flow_prediction": // x0 = x − σ·v
          setConversion(c, "sample-first", 1, -this.sigmas[index]!, 1);
          break;
      }
      return c;
    }
    switch (prediction_type) {
      case "epsilon":
        setConversion(c, "copy", 1, 0, 1);
        break;
      case "sample": // ε = (x − α_t·x0) / σ_t
        setConversion(c, "sample-first", 1, -alphaT, sigmaT);
        break;
      case "v_prediction": // ε = α_t·v + σ_t·x
        setConversion(c, "model-first", alphaT, sigmaT, 1);
        break;
      case "flow_prediction":
        throw new RangeError(
          `Cannot convert the model output as 'prediction_type' "flow_prediction" needs a data-prediction 'algorithm_type'`,
        );
    }
    return c;
  }

  // diffusers' convert_model_output into `out`, at sigmas[index].
  #convertInto<T extends TensorView<T>>(
    kernels: Kernels<T>,
    out: T,
    modelOutput: T,
    sample: T,
    index: number,
    threshold = true,
  ): void {
    const conversion = this.#conversionAt(index);
    convertModelOutput(kernels, out, sample, modelOutput, conversion);
    if (!threshold || !this.config.thresholding) return;
    if (isDataPrediction(this.config.algorithm_type)) {
      this.#threshold(kernels, out);
      return;
    }
    // Threshold the implied x0, then turn it back into noise.
    const at = this.#point(index);
    const alphaT = this.#points[at + 1]!;
    const sigmaT = this.#points[at + 2]!;
    kernels.axpbyDiv(out, 1, sample, -sigmaT, out, alphaT);
    this.#threshold(kernels, out);
    kernels.axpbyDiv(out, 1, sample, -alphaT, out, sigmaT);
  }

  #threshold<T extends TensorView<T>>(kernels: Kernels<T>, x0: T): void {
    kernels.threshold(
      x0,
      this.config.dynamic_thresholding_ratio,
      this.config.sample_max_value,
    );
  }

  // The model output's mean channels (a strided view for learned variance), after shape checks.
  #checkModelOutput<T extends TensorView<T>>(modelOutput: T, sample: T): T {
    const learned = this.config.variance_type === "learned" ||
      this.config.variance_type === "learned_range";
    if (sameShape(modelOutput.shape, sample.shape)) return modelOutput;
    const channels = sample.shape[1];
    const doubled = learned && channels !== undefined &&
      modelOutput.shape.length === sample.shape.length &&
      modelOutput.shape.every((
        n,
        i,
      ) => (i === 1 ? n === 2 * channels : n === sample.shape[i]));
    if (doubled) return modelOutput.slice(1, 0, channels);
    throw new TypeError(
      `Cannot step as 'modelOutput' must have the sample's shape ${
        formatShape(sample.shape)
      }${
        learned ? " (or twice its channels, for a learned variance)" : ""
      }: current value is ${formatShape(modelOutput.shape)}`,
    );
  }

  // The oldest history buffer, reused once it drops out of the window, if we allocated it; else
  // one the previous schedule's history left (same backend and shape), else a new one.
  #recycledBuffer<T extends TensorView<T>>(
    kernels: Kernels<T>,
    shape: readonly number[],
  ): T {
    const outputs = this.modelOutputs;
    const oldest = outputs[0];
    if (
      oldest && this.#owned.has(oldest) && kernels.owns(oldest) &&
      sameShape(oldest.shape, shape) && outputs.indexOf(oldest, 1) < 0
    ) {
      return oldest as T;
    }
    const spare = this.#spare;
    while (spare.length > 0) {
      const buffer = spare.pop()!;
      if (
        kernels.owns(buffer) && sameShape(buffer.shape, shape) &&
        outputs.indexOf(buffer) < 0
      ) {
        return buffer as T;
      }
    }
    const buffer = kernels.empty(shape);
    this.#owned.add(buffer);
    return buffer;
  }
}

// --- fused thresholded step (issue 15): an optional backend method beyond the kernel interface
// (WasmKernels.convertThresholdAndUpdate), the same bits as the conversion then
// thresholdAndUpdate.
interface FusedThreshold<T> {
  convertThresholdAndUpdate(
    out: T,
    converted: T,
    sample: T,
    modelOutput: T,
    conversion: ModelOutputConversion,
    ratio: number,
    maxValue: number,
    history: readonly T[],
    c: MultistepCoefficients,
    noise: T | null,
  ): void;
}
// --- end fused thresholded step

type WritableConversion = {
  -readonly [K in keyof ModelOutputConversion]: ModelOutputConversion[K];
};

function setConversion(
  c: WritableConversion,
  form: ModelOutputConversion["form"],
  a: number,
  b: number,
  d: number,
): void {
  c.form = form;
  c.a = a;
  c.b = b;
  c.d = d;
}

/** Whether the algorithm integrates the data prediction (DPM-Solver++). */
export function isDataPrediction(algorithm: AlgorithmType): boolean {
  return algorithm === "dpmsolver++" || algorithm === "sde-dpmsolver++";
}
