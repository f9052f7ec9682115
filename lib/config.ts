/**
 * Scheduler configuration: diffusers' `scheduler_config.json` keys, defaults and validation.
 *
 * @module
 */
import { show } from "./_describe.ts";
import {
  enabledSigmaFamilies,
  type SharedSigmaFamilyKey,
  SIGMA_FAMILIES,
  type SigmaFamilyKey,
} from "./_sigma_families.ts";

// Each enum's values, written once: the type unions below and the validation rules read them.
/** The `beta_schedule` values. */
export const BETA_SCHEDULES = [
  "linear",
  "scaled_linear",
  "squaredcos_cap_v2",
] as const;
/** The `prediction_type` values. */
export const PREDICTION_TYPES = [
  "epsilon",
  "sample",
  "v_prediction",
  "flow_prediction",
] as const;
/** The `algorithm_type` values (besides the remapped `"deis"`). */
export const ALGORITHM_TYPES = [
  "dpmsolver",
  "dpmsolver++",
  "sde-dpmsolver",
  "sde-dpmsolver++",
] as const;
/** The `solver_type` values (besides the remapped `"logrho"`, `"bh1"`, `"bh2"`). */
export const SOLVER_TYPES = ["midpoint", "heun"] as const;
/** The `timestep_spacing` values. */
export const TIMESTEP_SPACINGS = ["linspace", "leading", "trailing"] as const;
/** The `variance_type` values. */
export const VARIANCE_TYPES = [
  null,
  "learned",
  "learned_range",
  "fixed_small",
  "fixed_small_log",
  "fixed_large",
  "fixed_large_log",
] as const;
/** The forward scheduler's `final_sigmas_type` values. */
export const FINAL_SIGMAS_TYPES = ["zero", "sigma_min"] as const;
/** The forward scheduler's `time_shift_type` values. */
export const TIME_SHIFT_TYPES = ["exponential"] as const;

/** How betas are laid over the training timesteps (diffusers' `beta_schedule`). */
export type BetaSchedule = typeof BETA_SCHEDULES[number];
/** What the model predicts (diffusers' `prediction_type`). */
export type PredictionType = typeof PREDICTION_TYPES[number];
/** DPM-Solver (noise prediction) or DPM-Solver++ (data prediction), ODE or SDE. */
export type AlgorithmType = typeof ALGORITHM_TYPES[number];
/** Second-order update rule. */
export type SolverType = typeof SOLVER_TYPES[number];
/** How inference timesteps are spaced over the training range (Table 2 of arXiv:2305.08891). */
export type TimestepSpacing = typeof TIMESTEP_SPACINGS[number];
/**
 * `learned`/`learned_range` mark a model whose output carries a variance after the mean channels;
 * DDPM's `fixed_*` values (and `null`) mean a plain mean prediction.
 */
export type VarianceType = typeof VARIANCE_TYPES[number];

/**
 * Configuration of the DPM-Solver multistep schedulers, with diffusers' snake_case keys so that a
 * `scheduler_config.json` loads as-is. Every field defaults as in diffusers v0.37.0.
 */
export interface SchedulerConfig {
  /** Number of diffusion steps the model was trained with. @default {1000} */
  num_train_timesteps: number;
  /** First beta of the `linear`/`scaled_linear` schedules. @default {0.0001} */
  beta_start: number;
  /** Last beta of the `linear`/`scaled_linear` schedules. @default {0.02} */
  beta_end: number;
  /** The beta schedule. @default {"linear"} */
  beta_schedule: BetaSchedule;
  /** Betas given directly (one per training timestep); overrides `beta_schedule`. @default {null} */
  trained_betas: readonly number[] | null;
  /** Multistep order, 1, 2 or 3. @default {2} */
  solver_order: number;
  /** What the model predicts. @default {"epsilon"} */
  prediction_type: PredictionType;
  /** Dynamic thresholding of the predicted clean sample (arXiv:2205.11487). @default {false} */
  thresholding: boolean;
  /** Quantile of |x0| used as the threshold. @default {0.995} */
  dynamic_thresholding_ratio: number;
  /** Upper bound of the threshold. @default {1.0} */
  sample_max_value: number;
  /** Solver family. @default {"dpmsolver++"} */
  algorithm_type: AlgorithmType;
  /** Second-order update rule. @default {"midpoint"} */
  solver_type: SolverType;
  /** Lower the order on the last steps of schedules shorter than 15 steps. @default {true} */
  lower_order_final: boolean;
  /** First order on the very last step. @default {false} */
  euler_at_final: boolean;
  /** Karras sigmas (arXiv:2206.00364). @default {false} */
  use_karras_sigmas: boolean;
  /** Exponentially spaced sigmas. @default {false} */
  use_exponential_sigmas: boolean;
  /** Beta-distribution sigmas (arXiv:2407.12173). @default {false} */
  use_beta_sigmas: boolean;
  /** Flow-matching sigmas. @default {false} */
  use_flow_sigmas: boolean;
  /** Shift of the flow sigmas. @default {1.0} */
  flow_shift: number;
  /** Lower clip of lambda(t), for the cosine schedule. @default {-Infinity} */
  lambda_min_clipped: number;
  /** Whether the model output carries a learned variance. @default {null} */
  variance_type: VarianceType;
  /** Timestep spacing. @default {"linspace"} */
  timestep_spacing: TimestepSpacing;
  /** Offset added to `leading` timesteps. @default {0} */
  steps_offset: number;
}

/** The final sigma of the forward schedule: 0, or the smallest training sigma. */
export type FinalSigmasType = typeof FINAL_SIGMAS_TYPES[number];
/** How `mu` shifts the flow sigmas with dynamic shifting (`flow_shift = exp(mu)`). */
export type TimeShiftType = typeof TIME_SHIFT_TYPES[number];

/**
 * Configuration of the forward `DPMSolverMultistepScheduler`: every key of
 * {@link SchedulerConfig} plus the keys only diffusers' forward scheduler has.
 */
export interface DPMSolverMultistepConfig extends SchedulerConfig {
  /** Timesteps uniform in log-SNR (Lu et al., arXiv:2206.00927). @default {false} */
  use_lu_lambdas: boolean;
  /** The sigma the last step goes to. @default {"zero"} */
  final_sigmas_type: FinalSigmasType;
  /** Rescale the betas to zero terminal SNR (arXiv:2305.08891, Algorithm 1). @default {false} */
  rescale_betas_zero_snr: boolean;
  /** Allow `setTimesteps(n, { mu })` to shift the flow sigmas. @default {false} */
  use_dynamic_shifting: boolean;
  /** The shift applied with `mu`. @default {"exponential"} */
  time_shift_type: TimeShiftType;
}

/** diffusers v0.37.0's defaults. */
export const DEFAULT_CONFIG: Readonly<SchedulerConfig> = Object.freeze({
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: "linear",
  trained_betas: null,
  solver_order: 2,
  prediction_type: "epsilon",
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  algorithm_type: "dpmsolver++",
  solver_type: "midpoint",
  lower_order_final: true,
  euler_at_final: false,
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  use_flow_sigmas: false,
  flow_shift: 1.0,
  lambda_min_clipped: -Infinity,
  variance_type: null,
  timestep_spacing: "linspace",
  steps_offset: 0,
});

/** diffusers v0.37.0's defaults of the forward scheduler, in its key order. */
export const MULTISTEP_DEFAULT_CONFIG: Readonly<DPMSolverMultistepConfig> =
  Object.freeze({
    ...DEFAULT_CONFIG,
    use_lu_lambdas: false,
    final_sigmas_type: "zero",
    rescale_betas_zero_snr: false,
    use_dynamic_shifting: false,
    time_shift_type: "exponential",
  });

/** The diffusers version whose behaviour and defaults this module follows. */
export const DIFFUSERS_VERSION = "0.37.0";

type Rule =
  | { kind: "int"; min: number; max?: number; allowed?: readonly number[] }
  | {
    kind: "number";
    min?: number;
    max?: number;
    minExclusive?: boolean;
    maxExclusive?: boolean;
  }
  | { kind: "boolean" }
  | {
    kind: "enum";
    allowed: readonly (string | null)[];
    remap?: Record<string, string>;
  }
  | { kind: "betas" };

const RULES: Record<keyof DPMSolverMultistepConfig, Rule> = {
  use_lu_lambdas: { kind: "boolean" },
  final_sigmas_type: { kind: "enum", allowed: FINAL_SIGMAS_TYPES },
  rescale_betas_zero_snr: { kind: "boolean" },
  use_dynamic_shifting: { kind: "boolean" },
  time_shift_type: { kind: "enum", allowed: TIME_SHIFT_TYPES },
  num_train_timesteps: { kind: "int", min: 2 },
  beta_start: {
    kind: "number",
    min: 0,
    max: 1,
    minExclusive: true,
    maxExclusive: true,
  },
  beta_end: {
    kind: "number",
    min: 0,
    max: 1,
    minExclusive: true,
    maxExclusive: true,
  },
  beta_schedule: { kind: "enum", allowed: BETA_SCHEDULES },
  trained_betas: { kind: "betas" },
  solver_order: { kind: "int", min: 1, max: 3, allowed: [1, 2, 3] },
  prediction_type: { kind: "enum", allowed: PREDICTION_TYPES },
  thresholding: { kind: "boolean" },
  dynamic_thresholding_ratio: { kind: "number", min: 0, max: 1 },
  sample_max_value: { kind: "number", min: 0, minExclusive: true },
  algorithm_type: {
    kind: "enum",
    allowed: ALGORITHM_TYPES,
    // diffusers maps DEIS configs onto DPM-Solver++.
    remap: { deis: "dpmsolver++" },
  },
  solver_type: {
    kind: "enum",
    allowed: SOLVER_TYPES,
    // diffusers maps UniPC/DEIS solver types onto the midpoint rule.
    remap: { logrho: "midpoint", bh1: "midpoint", bh2: "midpoint" },
  },
  lower_order_final: { kind: "boolean" },
  euler_at_final: { kind: "boolean" },
  use_karras_sigmas: { kind: "boolean" },
  use_exponential_sigmas: { kind: "boolean" },
  use_beta_sigmas: { kind: "boolean" },
  use_flow_sigmas: { kind: "boolean" },
  flow_shift: { kind: "number", min: 0, minExclusive: true },
  lambda_min_clipped: { kind: "number" },
  variance_type: { kind: "enum", allowed: VARIANCE_TYPES },
  timestep_spacing: { kind: "enum", allowed: TIMESTEP_SPACINGS },
  steps_offset: { kind: "int", min: 0 },
};

/** The configuration keys, in diffusers' order. */
export const CONFIG_KEYS: readonly (keyof SchedulerConfig)[] = Object.freeze(
  Object.keys(DEFAULT_CONFIG) as (keyof SchedulerConfig)[],
);

/** The forward scheduler's configuration keys. */
export const MULTISTEP_CONFIG_KEYS:
  readonly (keyof DPMSolverMultistepConfig)[] = Object.freeze(
    Object.keys(MULTISTEP_DEFAULT_CONFIG) as (keyof DPMSolverMultistepConfig)[],
  );

/** Where a configuration came from, for error messages. */
export interface ConfigSource {
  /** The file the values were read from, if any. */
  file?: string;
}

/**
 * Fills `partial` with the defaults, applies diffusers' compatibility remaps and validates every
 * key. Unknown keys throw with the closest valid key unless `ignoreUnknown` (as `fromConfig` does
 * for other schedulers' configs, and for keys starting with `_`).
 *
 * @throws {TypeError} A value of the wrong type, or an unknown key.
 * @throws {RangeError} A value outside its allowed range or set.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * import assert from "node:assert/strict";
 *
 * const config = resolveConfig({ solver_order: 3, algorithm_type: "deis" });
 * assert.equal(config.algorithm_type, "dpmsolver++");
 * assert.throws(() => resolveConfig({ solver_ordr: 3 }), /did you mean 'solver_order'/);
 * ```
 */
export function resolveConfig(
  partial: Record<string, unknown> = {},
  options: { ignoreUnknown?: boolean } & ConfigSource = {},
): Readonly<SchedulerConfig> {
  return resolveWith(DEFAULT_CONFIG, partial, options);
}

/**
 * {@link resolveConfig} for the forward scheduler's keys ({@link DPMSolverMultistepConfig}).
 *
 * @throws {TypeError} A value of the wrong type, or an unknown key.
 * @throws {RangeError} A value outside its allowed range or set.
 *
 * @example
 * ```ts
 * import { resolveMultistepConfig } from "./config.ts";
 * import assert from "node:assert/strict";
 *
 * const config = resolveMultistepConfig({ use_lu_lambdas: true });
 * assert.equal(config.final_sigmas_type, "zero");
 * assert.throws(() => resolveMultistepConfig({ final_sigma_type: "zero" }), /did you mean 'final_sigmas_type'/);
 * ```
 */
export function resolveMultistepConfig(
  partial: Record<string, unknown> = {},
  options: { ignoreUnknown?: boolean } & ConfigSource = {},
): Readonly<DPMSolverMultistepConfig> {
  return resolveWith(MULTISTEP_DEFAULT_CONFIG, partial, options);
}

function resolveWith<C extends SchedulerConfig>(
  defaults: Readonly<C>,
  partial: Record<string, unknown>,
  options: { ignoreUnknown?: boolean } & ConfigSource,
): Readonly<C> {
  const keys = Object.keys(defaults);
  if (
    partial === null || typeof partial !== "object" || Array.isArray(partial)
  ) {
    throw new TypeError(
      `Cannot read the scheduler config${
        where(options)
      } as it must be an object: current value is ${show(partial)}`,
    );
  }
  const config: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(partial)) {
    if (keys.includes(key)) {
      config[key] = checkValue(key as keyof SchedulerConfig, value, options);
    } else if (!options.ignoreUnknown && !key.startsWith("_")) {
      const hint = closestKey(key, keys);
      throw new TypeError(
        `Cannot configure the scheduler${
          where(options)
        } as '${key}' is not a config key${
          hint ? ` (did you mean '${hint}'?)` : ""
        }: valid keys are ${keys.join(", ")}`,
      );
    }
  }
  checkRelations(config as unknown as SchedulerConfig, options);
  const frozen = config as unknown as C;
  if (frozen.trained_betas) {
    frozen.trained_betas = Object.freeze([...frozen.trained_betas]);
  }
  return Object.freeze(frozen);
}

function checkValue(
  key: keyof DPMSolverMultistepConfig,
  value: unknown,
  source: ConfigSource,
): unknown {
  const rule = RULES[key];
  const fail = (
    constraint: string,
    Type: typeof RangeError | typeof TypeError = RangeError,
  ) => {
    throw new Type(
      `Cannot configure the scheduler${
        where(source)
      } as '${key}' ${constraint}: current value is ${show(value)}`,
    );
  };
  switch (rule.kind) {
    case "boolean":
      if (typeof value !== "boolean") fail("must be true or false", TypeError);
      return value;
    case "int":
      if (typeof value !== "number") fail("must be an integer", TypeError);
      if (rule.allowed && !rule.allowed.includes(value as number)) {
        fail(
          `must be ${rule.allowed.join(", ").replace(/, (\d+)$/, " or $1")}`,
        );
      }
      if (!Number.isInteger(value) || (value as number) < rule.min) {
        fail(`must be an integer >= ${rule.min}`);
      }
      return value;
    case "number": {
      if (typeof value !== "number") fail("must be a number", TypeError);
      const v = value as number;
      const below = rule.min !== undefined &&
        (rule.minExclusive ? v <= rule.min : v < rule.min);
      const above = rule.max !== undefined &&
        (rule.maxExclusive ? v >= rule.max : v > rule.max);
      if (Number.isNaN(v) || below || above) {
        const lo = rule.min === undefined
          ? ""
          : `${rule.minExclusive ? ">" : ">="} ${rule.min}`;
        const hi = rule.max === undefined
          ? ""
          : `${rule.maxExclusive ? "<" : "<="} ${rule.max}`;
        fail(
          `must be a number ${[lo, hi].filter(Boolean).join(" and ")}`
            .trimEnd(),
        );
      }
      return value;
    }
    case "enum": {
      if (
        typeof value === "string" && rule.remap &&
        Object.hasOwn(rule.remap, value)
      ) {
        return rule.remap[value];
      }
      if (!rule.allowed.includes(value as string | null)) {
        const remaps = rule.remap
          ? ` (or ${Object.keys(rule.remap).map(quote).join(", ")})`
          : "";
        fail(`must be one of ${rule.allowed.map(quote).join(", ")}${remaps}`);
      }
      return value;
    }
    case "betas": {
      if (value === null || value === undefined) return null;
      if (!Array.isArray(value) && !ArrayBuffer.isView(value)) {
        fail("must be null or an array of numbers", TypeError);
      }
      const betas = Array.from(value as ArrayLike<unknown>);
      if (
        !betas.every((b) =>
          typeof b === "number" && Number.isFinite(b) && b > 0 && b < 1
        )
      ) {
        throw new RangeError(
          `Cannot configure the scheduler${
            where(source)
          } as 'trained_betas' must hold finite numbers in (0, 1): current value holds ${
            show(betas.find((b) => !(typeof b === "number" && b > 0 && b < 1)))
          }`,
        );
      }
      return betas;
    }
  }
}

// The sigma-family table's keys, as the configs declare them: `Pick` fails to compile when a
// family's key is missing from the config that should have it (so a new family gets its key,
// its default and its rule).
type SigmaFamilyFlags =
  & Pick<SchedulerConfig, SharedSigmaFamilyKey>
  & Partial<Pick<DPMSolverMultistepConfig, SigmaFamilyKey>>;

function checkRelations(config: SchedulerConfig, source: ConfigSource): void {
  const fail = (message: string) => {
    throw new RangeError(
      `Cannot configure the scheduler${where(source)} as ${message}`,
    );
  };
  if (config.beta_start > config.beta_end) {
    fail(
      `'beta_start' must be <= 'beta_end': current values are ${config.beta_start} and ${config.beta_end}`,
    );
  }
  if (
    config.trained_betas &&
    config.trained_betas.length !== config.num_train_timesteps
  ) {
    fail(
      `'trained_betas' must hold 'num_train_timesteps' (${config.num_train_timesteps}) values: current length is ${config.trained_betas.length}`,
    );
  }
  const families = enabledSigmaFamilies(config as SigmaFamilyFlags).map((
    name,
  ) => SIGMA_FAMILIES[name].key);
  if (families.length > 1) {
    fail(
      `at most one sigma family may be enabled: current value enables ${
        families.join(" and ")
      }`,
    );
  }
  if (
    config.prediction_type === "flow_prediction" &&
    config.algorithm_type !== "dpmsolver++" &&
    config.algorithm_type !== "sde-dpmsolver++"
  ) {
    fail(
      `'prediction_type' "flow_prediction" needs 'algorithm_type' "dpmsolver++" or "sde-dpmsolver++": current value is "${config.algorithm_type}"`,
    );
  }
}

/** Options of `fromPretrained`. */
export interface FromPretrainedOptions {
  /** Folder inside `dir` holding `scheduler_config.json` (e.g. `"scheduler"` in a pipeline). */
  subfolder?: string;
}

function closestKey(
  key: string,
  keys: readonly string[],
): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of keys) {
    const d = editDistance(key, candidate);
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3))
    ? best
    : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

function where(source: ConfigSource): string {
  return source.file ? ` from '${source.file}'` : "";
}

function quote(value: string | null): string {
  return value === null ? "null" : `"${value}"`;
}
