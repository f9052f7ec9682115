/**
 * `DPMSolverMultistepInverseScheduler`: DPM-Solver(++) run from a clean sample towards noise, as
 * diffusers v0.37.0's scheduler of that name (DiffEdit, null-text inversion).
 *
 * @module
 */
import {
  type FromPretrainedOptions,
  resolveConfig,
  type SchedulerConfig,
} from "./config.ts";
import {
  type InferenceSchedule,
  MultistepScheduler,
} from "./multistep_scheduler.ts";
import { sigmaFromAlphaCumprod } from "./noise_schedule.ts";
import {
  arange,
  firstOccurrences,
  interpIndex,
  linspace,
  roundHalfEven,
} from "./timesteps.ts";
import { familySchedule, sigmaFamilyOf } from "./_sigma_families.ts";
import {
  readPretrainedConfig,
  resolveForeignConfig,
} from "./_scheduler_factory.ts";

/**
 * The inverse multistep DPM-Solver scheduler: from a clean sample at t = 0 up the noise schedule
 * to the noisiest timestep, giving diffusers' numbers step for step.
 *
 * @example Invert a sample with a stand-in model
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, Tensor } from "@dpmsolver/scheduler";
 * import assert from "node:assert/strict";
 *
 * const scheduler = new DPMSolverMultistepInverseScheduler({ solver_order: 2 });
 * scheduler.setTimesteps(10);
 * let sample = Tensor.from([0.5, -0.25, 0.125, 1], [1, 1, 2, 2]);
 * for (const t of scheduler.timesteps) {
 *   const noisePrediction = new Tensor(sample.toFloat32Array().map((x) => 0.5 * x), sample.shape);
 *   sample = scheduler.step(noisePrediction, t, sample).prevSample;
 * }
 * assert.equal(scheduler.timesteps[0], 0);
 * assert.ok(sample.toFloat32Array().every(Number.isFinite));
 * ```
 */
export class DPMSolverMultistepInverseScheduler extends MultistepScheduler {
  /**
   * An inverse scheduler of `config`, validated and completed with diffusers' defaults.
   *
   * @param config diffusers' config keys (snake_case); missing keys take diffusers' defaults.
   * @throws {TypeError} An unknown key (with the closest valid one) or a value of the wrong type.
   * @throws {RangeError} A value outside its allowed set, or an SDE algorithm type.
   */
  constructor(config: Partial<SchedulerConfig> | Record<string, unknown> = {}) {
    super(checkInverse(resolveConfig(config as Record<string, unknown>)));
  }

  /** `"DPMSolverMultistepInverseScheduler"`. */
  get className(): string {
    return "DPMSolverMultistepInverseScheduler";
  }

  /**
   * A scheduler from any diffusers scheduler config (DDPM, DDIM, PNDM, Euler, DPM-Solver…):
   * keys this scheduler lacks are ignored, `overrides` win.
   *
   * @example
   * ```ts
   * import { DPMSolverMultistepInverseScheduler } from "@dpmsolver/scheduler";
   * import assert from "node:assert/strict";
   * const pndm = { _class_name: "PNDMScheduler", beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012, skip_prk_steps: true, steps_offset: 1 };
   * const scheduler = DPMSolverMultistepInverseScheduler.fromConfig(pndm, { solver_order: 3 });
   * assert.equal(scheduler.config.steps_offset, 1);
   * assert.equal(scheduler.config.solver_order, 3);
   * ```
   */
  static fromConfig(
    config: Record<string, unknown>,
    overrides: Partial<SchedulerConfig> = {},
  ): DPMSolverMultistepInverseScheduler {
    return new DPMSolverMultistepInverseScheduler(
      resolveForeignConfig(resolveConfig, config, overrides),
    );
  }

  /** Reads `scheduler_config.json` from `dir` (or `dir/subfolder`). Errors name the file. */
  static async fromPretrained(
    dir: string,
    options: FromPretrainedOptions = {},
  ): Promise<DPMSolverMultistepInverseScheduler> {
    return new DPMSolverMultistepInverseScheduler(
      await readPretrainedConfig(resolveConfig, dir, options),
    );
  }

  /** The noisiest timestep the schedule reaches (below `lambda_min_clipped` clipping). */
  get noisiestTimestep(): number {
    return this.config.num_train_timesteps - 1 - this.clippedTimesteps();
  }

  /**
   * diffusers' inverse `set_timesteps`: `n` timesteps from 0 up to the noisiest one, repeated
   * timesteps dropped, then the final sigma.
   */
  protected buildSchedule(n: number): InferenceSchedule {
    const { config } = this;
    const noisiest = this.noisiestTimestep;
    const trainCount = config.num_train_timesteps;
    let timesteps: Float64Array;
    switch (config.timestep_spacing) {
      case "linspace":
        timesteps = linspace(0, noisiest, n + 1).map(roundHalfEven).subarray(
          0,
          n,
        );
        break;
      case "leading": {
        const ratio = Math.floor((noisiest + 1) / (n + 1));
        timesteps = Float64Array.from(
          { length: n },
          (_, i) => i * ratio + config.steps_offset,
        );
        break;
      }
      case "trailing": {
        const ratio = trainCount / n;
        timesteps = arange(noisiest + 1, 0, -ratio).map(roundHalfEven).reverse()
          .map((t) => t - 1);
        break;
      }
    }

    // Every family appends a copy of its last sigma; the default appends the noisiest
    // timestep's sigma.
    let sigmas: Float64Array;
    let finalSigma: number;
    const family = sigmaFamilyOf(config);
    if (family !== null) {
      ({ sigmas, timesteps } = familySchedule(family, {
        trainSigmas: this.trainSigmas,
        descending: false,
        flowShift: config.flow_shift,
        roundTimesteps: true,
      }, n));
      finalSigma = sigmas[sigmas.length - 1]!;
    } else {
      sigmas = timesteps.map((t) => interpIndex(t, this.trainSigmas));
      finalSigma = sigmaFromAlphaCumprod(this.alphasCumprod[noisiest]!);
    }

    // diffusers drops repeated timesteps but keeps their sigmas, misaligning the two; we drop
    // the sigmas of the dropped timesteps too.
    const kept = firstOccurrences(timesteps);
    const out = new Float32Array(kept.length + 1);
    kept.forEach((k, i) => (out[i] = sigmas[k]!));
    out[kept.length] = finalSigma;
    return {
      timesteps: Int32Array.from(kept, (k) => Math.trunc(timesteps[k]!)),
      sigmas: out,
    };
  }

  /**
   * diffusers' rule for the first step: the timestep's position in the schedule, the second
   * position if it occurs twice, the last step if it does not occur.
   */
  protected initialStepIndex(timestep: number): number {
    const positions: number[] = [];
    this.timesteps.forEach((t, i) => t === timestep && positions.push(i));
    if (positions.length === 0) return this.timesteps.length - 1;
    if (positions.length > 1) {
      this.overrunAllowance = positions[1]! - positions[0]!;
      return positions[1]!;
    }
    return positions[0]!;
  }
}

function checkInverse(
  config: Readonly<SchedulerConfig>,
): Readonly<SchedulerConfig> {
  if (
    config.algorithm_type === "sde-dpmsolver" ||
    config.algorithm_type === "sde-dpmsolver++"
  ) {
    throw new RangeError(
      `Cannot configure the inverse scheduler as 'algorithm_type' "${config.algorithm_type}" returns NaN when run backwards (diffusers issue 10748: the noise term takes the square root of a negative number): use "dpmsolver++"`,
    );
  }
  return config;
}
