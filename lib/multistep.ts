/**
 * `DPMSolverMultistepScheduler`: DPM-Solver(++) sampling from noise down to a clean sample, as
 * diffusers v0.37.0's scheduler of that name, on the same core as the inverse scheduler.
 *
 * @module
 */
import {
  type DPMSolverMultistepConfig,
  type FromPretrainedOptions,
  resolveMultistepConfig,
} from "./config.ts";
import {
  type InferenceSchedule,
  MultistepScheduler,
  type StepOptions,
} from "./multistep_scheduler.ts";
import { TorchGenerator } from "./random.ts";
import { Tensor } from "./tensor.ts";
import { formatShape, sameShape } from "./_shape.ts";
import {
  readPretrainedConfig,
  resolveForeignConfig,
} from "./_scheduler_factory.ts";
import { arange, interpIndex, linspace, roundHalfEven } from "./timesteps.ts";
import {
  familySchedule,
  SIGMA_FAMILIES,
  sigmaFamilyOf,
} from "./_sigma_families.ts";

/** Options of {@link DPMSolverMultistepScheduler.setTimesteps}. */
export interface SetTimestepsOptions {
  /**
   * Dynamic shifting (`use_dynamic_shifting`): the flow sigmas' shift becomes `exp(mu)`, for this
   * and later schedules (as diffusers, the saved `flow_shift` is unchanged).
   */
  mu?: number;
  /** Custom timesteps, noisiest first; then `numInferenceSteps` must be `null` or omitted. */
  timesteps?: ArrayLike<number>;
}

/**
 * The multistep DPM-Solver scheduler: from pure noise at the noisiest timestep down to a clean
 * sample, giving diffusers' numbers step for step, including the SDE variants with torch's noise.
 *
 * @example Sample with a stand-in model, then invert back with the same config
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, DPMSolverMultistepScheduler, TorchGenerator } from "@dpmsolver/scheduler";
 * import assert from "node:assert/strict";
 *
 * const scheduler = new DPMSolverMultistepScheduler({ algorithm_type: "sde-dpmsolver++" });
 * scheduler.setTimesteps(10);
 * const generator = new TorchGenerator(0);
 * let sample = generator.randn([1, 4, 2, 2]);
 * for (const t of scheduler.timesteps) {
 *   const noisePrediction = sample.clone();
 *   sample = scheduler.step(noisePrediction, t, sample, { generator }).prevSample;
 * }
 * assert.equal(scheduler.timesteps[0], 999);
 * const inverse = DPMSolverMultistepInverseScheduler.fromConfig(
 *   DPMSolverMultistepScheduler.fromConfig(scheduler.toJSON(), { algorithm_type: "dpmsolver++" }).toJSON(),
 * );
 * assert.equal(inverse.config.algorithm_type, "dpmsolver++");
 * ```
 */
export class DPMSolverMultistepScheduler
  extends MultistepScheduler<DPMSolverMultistepConfig> {
  #beginIndex: number | null = null;
  #flowShift: number;

  /**
   * A forward scheduler of `config`, validated and completed with diffusers' defaults.
   *
   * @param config diffusers' config keys (snake_case); missing keys take diffusers' defaults.
   * @throws {TypeError} An unknown key (with the closest valid one) or a value of the wrong type.
   * @throws {RangeError} A value outside its allowed set; `final_sigmas_type` "zero" with a
   *   noise-prediction algorithm (as diffusers); "sde-dpmsolver" at order 3.
   */
  constructor(
    config: Partial<DPMSolverMultistepConfig> | Record<string, unknown> = {},
  ) {
    super(
      checkForward(resolveMultistepConfig(config as Record<string, unknown>)),
    );
    this.#flowShift = this.config.flow_shift;
  }

  /** `"DPMSolverMultistepScheduler"`. */
  get className(): string {
    return "DPMSolverMultistepScheduler";
  }

  /**
   * A scheduler from any diffusers scheduler config (the inverse scheduler's, DDIM, PNDM…): keys
   * this scheduler lacks are ignored, `overrides` win.
   *
   * @example Round trip through the inverse scheduler (diffusers' test_switch)
   * ```ts
   * import { DPMSolverMultistepInverseScheduler, DPMSolverMultistepScheduler } from "@dpmsolver/scheduler";
   * import assert from "node:assert/strict";
   * const forward = new DPMSolverMultistepScheduler({ final_sigmas_type: "sigma_min", solver_order: 3 });
   * const inverse = DPMSolverMultistepInverseScheduler.fromConfig(forward.toJSON());
   * const back = DPMSolverMultistepScheduler.fromConfig(inverse.toJSON());
   * assert.equal(back.config.solver_order, 3);
   * assert.equal(back.config.final_sigmas_type, "zero"); // the inverse has no such key
   * ```
   */
  static fromConfig(
    config: Record<string, unknown>,
    overrides: Partial<DPMSolverMultistepConfig> = {},
  ): DPMSolverMultistepScheduler {
    return new DPMSolverMultistepScheduler(
      resolveForeignConfig(resolveMultistepConfig, config, overrides),
    );
  }

  /** Reads `scheduler_config.json` from `dir` (or `dir/subfolder`). Errors name the file. */
  static async fromPretrained(
    dir: string,
    options: FromPretrainedOptions = {},
  ): Promise<DPMSolverMultistepScheduler> {
    return new DPMSolverMultistepScheduler(
      await readPretrainedConfig(resolveMultistepConfig, dir, options),
    );
  }

  /** The index of the first step when set by `setBeginIndex` (image-to-image), else `null`. */
  get beginIndex(): number | null {
    return this.#beginIndex;
  }

  /** The shift the flow sigmas use: `flow_shift`, or `exp(mu)` after `setTimesteps(n, { mu })`. */
  get flowShift(): number {
    return this.#flowShift;
  }

  /**
   * Makes the first `step` start at `beginIndex` whatever its timestep (diffusers'
   * `set_begin_index`, called by pipelines after `setTimesteps`).
   */
  setBeginIndex(beginIndex = 0): void {
    if (!Number.isInteger(beginIndex) || beginIndex < 0) {
      throw new RangeError(
        `Cannot set the begin index as 'beginIndex' must be a non-negative integer: current value is ${beginIndex}`,
      );
    }
    this.#beginIndex = beginIndex;
  }

  /**
   * Sets the inference schedule, noisiest first, and resets the solver state and begin index.
   *
   * @param numInferenceSteps An integer in [1, num_train_timesteps], or `null` with custom
   *   `timesteps`.
   * @param options `mu` for dynamic shifting, or custom `timesteps`.
   * @throws {RangeError} A bad step count, `mu` without `use_dynamic_shifting`, both or neither
   *   of `numInferenceSteps` and `timesteps`, or custom timesteps with a sigma family.
   */
  override setTimesteps(
    numInferenceSteps?: number | null,
    options: SetTimestepsOptions = {},
  ): void {
    const { mu, timesteps } = options;
    if (mu !== undefined) {
      if (
        !this.config.use_dynamic_shifting || !Number.isFinite(mu)
      ) {
        throw new RangeError(
          `Cannot set timesteps as 'mu' needs 'use_dynamic_shifting' and a finite value: current values are ${this.config.use_dynamic_shifting} and ${mu}`,
        );
      }
      this.#flowShift = Math.exp(mu);
    }
    const hasCount = numInferenceSteps !== undefined &&
      numInferenceSteps !== null;
    if (hasCount === (timesteps !== undefined)) {
      throw new RangeError(
        `Cannot set timesteps as exactly one of 'numInferenceSteps' and 'timesteps' must be given: current values are ${numInferenceSteps} and ${
          timesteps === undefined ? "undefined" : "an array"
        }`,
      );
    }
    if (timesteps !== undefined) {
      this.applySchedule(this.#customSchedule(timesteps));
    } else {
      super.setTimesteps(numInferenceSteps!);
    }
    this.#beginIndex = null;
  }

  /** The step count and the flow shift in use (which `setTimesteps(n, { mu })` changes). */
  protected override scheduleKey(numInferenceSteps: number): string {
    return `${numInferenceSteps} ${this.#flowShift}`;
  }

  /** diffusers' `set_timesteps`: `n` timesteps noisiest first, then the final sigma. */
  protected buildSchedule(n: number): InferenceSchedule {
    const { config } = this;
    const trainCount = config.num_train_timesteps;
    const lastTimestep = trainCount - this.clippedTimesteps();
    let timesteps: Float64Array;
    switch (config.timestep_spacing) {
      case "linspace":
        timesteps = linspace(0, lastTimestep - 1, n + 1).map(roundHalfEven)
          .reverse().subarray(0, n);
        break;
      case "leading": {
        const ratio = Math.floor(lastTimestep / (n + 1));
        timesteps = Float64Array.from(
          { length: n },
          (_, i) => (n - i) * ratio + config.steps_offset,
        );
        break;
      }
      case "trailing":
        timesteps = arange(lastTimestep, 0, -trainCount / n).map((t) =>
          roundHalfEven(t) - 1
        );
        break;
    }

    let sigmas: Float64Array;
    const family = sigmaFamilyOf(config);
    if (family !== null) {
      ({ sigmas, timesteps } = familySchedule(family, {
        trainSigmas: this.trainSigmas,
        descending: true,
        flowShift: this.#flowShift,
        // Karras and Lu timesteps are rounded, except for the cosine schedule (as diffusers).
        roundTimesteps: config.beta_schedule !== "squaredcos_cap_v2",
      }, n));
    } else {
      sigmas = timesteps.map((t) => interpIndex(t, this.trainSigmas));
    }
    return this.#withFinalSigma(timesteps, sigmas);
  }

  // diffusers keeps repeated timesteps in the forward schedule (no de-duplication).
  #withFinalSigma(
    timesteps: ArrayLike<number>,
    sigmas: ArrayLike<number>,
  ): InferenceSchedule {
    const out = new Float32Array(timesteps.length + 1);
    out.set(Array.from(sigmas).slice(0, timesteps.length));
    out[timesteps.length] = this.config.final_sigmas_type === "sigma_min"
      ? this.trainSigmas[0]!
      : 0;
    return {
      timesteps: Int32Array.from(timesteps, (t) => Math.trunc(t)),
      sigmas: out,
    };
  }

  #customSchedule(timesteps: ArrayLike<number>): InferenceSchedule {
    const { config } = this;
    const family = sigmaFamilyOf(config);
    if (family !== null) {
      throw new RangeError(
        `Cannot set custom timesteps as '${
          SIGMA_FAMILIES[family].key
        }' computes its own: current value is true`,
      );
    }
    const values = Array.from(timesteps);
    if (values.length === 0 || !values.every(Number.isFinite)) {
      throw new RangeError(
        `Cannot set custom timesteps as 'timesteps' must hold at least one finite number: current value is [${
          values.join(", ")
        }]`,
      );
    }
    const ints = values.map(Math.trunc);
    return this.#withFinalSigma(
      ints,
      ints.map((t) => interpIndex(t, this.trainSigmas)),
    );
  }

  /**
   * diffusers' `_init_step_index`: the begin index if set, else the timestep's position (the
   * second one if it occurs twice, the last step if it does not occur).
   */
  protected initialStepIndex(timestep: number): number {
    if (this.#beginIndex !== null) return this.#beginIndex;
    const index = this.indexForTimestep(timestep);
    const first = this.timesteps.indexOf(timestep);
    // Starting at the second copy makes a loop over `timesteps` run past the end.
    if (first >= 0 && index > first) this.overrunAllowance = index - first;
    return index;
  }

  /** diffusers' `add_noise` index: per timestep, unless a begin index is set. */
  protected override addNoiseIndex(timestep: number): number {
    if (this.#beginIndex === null) return this.indexForTimestep(timestep);
    return this.stepIndex ?? this.#beginIndex;
  }

  /** With `final_sigmas_type` "zero" the last step is first order (diffusers' `step`). */
  protected override firstOrderFinal(): boolean {
    return this.config.final_sigmas_type === "zero";
  }

  /** `varianceNoise`, or one `randn` of the sample's shape from the generator (SDE types only). */
  protected override noiseFor<T>(options: StepOptions<T>, sample: T): T | null {
    const algorithm = this.config.algorithm_type;
    if (algorithm !== "sde-dpmsolver" && algorithm !== "sde-dpmsolver++") {
      return null;
    }
    const shape = (sample as { shape: readonly number[] }).shape;
    if (options.varianceNoise !== undefined) {
      const noiseShape = (options.varianceNoise as { shape: readonly number[] })
        .shape;
      if (!sameShape(noiseShape, shape)) {
        throw new TypeError(
          `Cannot step as 'varianceNoise' must have the sample's shape ${
            formatShape(shape)
          }: current value is ${formatShape(noiseShape)}`,
        );
      }
      return options.varianceNoise;
    }
    if (!(sample instanceof Tensor)) {
      throw new TypeError(
        `Cannot step as 'generator' draws CPU tensors: pass 'varianceNoise' on the sample's backend`,
      );
    }
    return (options.generator ?? sharedGenerator()).randn(shape) as T;
  }
}

let shared: TorchGenerator | undefined;

// Like torch's global generator when no generator is passed: seeded once, nondeterministically.
function sharedGenerator(): TorchGenerator {
  shared ??= new TorchGenerator(crypto.getRandomValues(new Uint32Array(1))[0]!);
  return shared;
}

function checkForward(
  config: Readonly<DPMSolverMultistepConfig>,
): Readonly<DPMSolverMultistepConfig> {
  const { algorithm_type: algorithm } = config;
  if (
    config.final_sigmas_type === "zero" && algorithm !== "dpmsolver++" &&
    algorithm !== "sde-dpmsolver++"
  ) {
    throw new RangeError(
      `Cannot configure the scheduler as 'final_sigmas_type' "zero" needs 'algorithm_type' "dpmsolver++" or "sde-dpmsolver++": current value is "${algorithm}" (use 'final_sigmas_type' "sigma_min")`,
    );
  }
  if (algorithm === "sde-dpmsolver" && config.solver_order === 3) {
    throw new RangeError(
      `Cannot configure the scheduler as 'algorithm_type' "sde-dpmsolver" has no third-order update (diffusers fails at the first third-order step): current 'solver_order' is 3, use 2 or "sde-dpmsolver++"`,
    );
  }
  return config;
}
