/**
 * The sigma families, one table: each family's config key, the function that lays its sigmas
 * over the training range, and how its timesteps follow from the sigmas. The config check, both
 * schedulers, the CLI and the tests read this table; adding a family is one entry here plus its
 * sigma function in `timesteps.ts` (see CONTRIBUTING.md).
 *
 * @module
 */
import {
  betaSigmas,
  exponentialSigmas,
  flowSigmas,
  karrasSigmas,
  luSigmas,
  numpyLogSigmas,
  roundHalfEven,
  sigmaToT,
} from "./timesteps.ts";

/** What a family's sigma function reads: the ends of the training range, in schedule order. */
export interface SigmaRange {
  /** The training sigma the schedule starts from (smallest inverse, largest forward). */
  readonly from: number;
  /** The training sigma the schedule runs to. */
  readonly to: number;
  /** `np.log(from)` with NumPy's float32 kernel. */
  readonly logFrom: number;
  /** `np.log(to)` with NumPy's float32 kernel. */
  readonly logTo: number;
  /** `num_train_timesteps`. */
  readonly trainCount: number;
  /** The flow sigmas' shift (`flow_shift`, or `exp(mu)` with dynamic shifting). */
  readonly flowShift: number;
}

/**
 * How a family's timesteps follow from its sigmas: `"interpolated"` places each sigma among the
 * training log-sigmas (diffusers' `_sigma_to_t`), `"rounded"` does that then `np.round`s, and
 * `"scaled"` multiplies by `num_train_timesteps` (flow matching).
 */
export type TimestepRule = "interpolated" | "rounded" | "scaled";

/** One sigma family. */
export interface SigmaFamily {
  /**
   * The boolean config key that enables it. `config.ts` makes every key a boolean key of the
   * config (the inverse one too unless `forwardOnly`), so the compiler asks for its default and
   * its rule.
   */
  readonly key: `use_${string}`;
  /** Its name in descriptions (`"Karras sigmas"`). */
  readonly label: string;
  /** The `n` inference sigmas, from `range.from` towards `range.to`, in float64. */
  readonly sigmas: (range: SigmaRange, n: number) => Float64Array;
  /** How the timesteps follow from the sigmas. */
  readonly timesteps: TimestepRule;
  /** Only the forward scheduler has the key. */
  readonly forwardOnly: boolean;
  /** Sigmas of flow matching (`alpha_t = 1 − sigma`), not of the VP training schedule. */
  readonly flow: boolean;
}

/** Every sigma family, in diffusers' order of precedence. */
export const SIGMA_FAMILIES = {
  // Karras et al., arXiv:2206.00364 (rho = 7): diffusers' `_convert_to_karras`.
  karras: {
    key: "use_karras_sigmas",
    label: "Karras",
    sigmas: (r, n) => karrasSigmas(r.to, r.from, n),
    timesteps: "rounded",
    forwardOnly: false,
    flow: false,
  },
  // Evenly spaced in log-sigma: diffusers' `_convert_to_exponential`.
  exponential: {
    key: "use_exponential_sigmas",
    label: "exponential",
    sigmas: (r, n) => exponentialSigmas(r.to, r.from, n),
    timesteps: "interpolated",
    forwardOnly: false,
    flow: false,
  },
  // Beta(0.6, 0.6) quantiles, arXiv:2407.12173: diffusers' `_convert_to_beta`.
  beta: {
    key: "use_beta_sigmas",
    label: "beta",
    sigmas: (r, n) => betaSigmas(r.to, r.from, n),
    timesteps: "interpolated",
    forwardOnly: false,
    flow: false,
  },
  // Lu et al., arXiv:2206.00927: uniform in lambda, diffusers' `_convert_to_lu`.
  lu: {
    key: "use_lu_lambdas",
    label: "Lu",
    sigmas: (r, n) => luSigmas(r.logFrom, r.logTo, n),
    timesteps: "rounded",
    forwardOnly: true,
    flow: false,
  },
  // Flow matching (SD3, Flux): shifted linear sigmas, timesteps = sigma · T.
  flow: {
    key: "use_flow_sigmas",
    label: "flow",
    sigmas: (r, n) => flowSigmas(n, r.flowShift, r.trainCount),
    timesteps: "scaled",
    forwardOnly: false,
    flow: true,
  },
} as const satisfies Record<string, SigmaFamily>;

/** A sigma family's name: `"karras"`, `"exponential"`, `"beta"`, `"lu"` or `"flow"`. */
export type SigmaFamilyName = keyof typeof SIGMA_FAMILIES;

/** The config keys that enable a family: `"use_karras_sigmas"`, … */
export type SigmaFamilyKey = typeof SIGMA_FAMILIES[SigmaFamilyName]["key"];

/** The keys of the families both schedulers have. */
export type SharedSigmaFamilyKey = {
  [N in SigmaFamilyName]: typeof SIGMA_FAMILIES[N]["forwardOnly"] extends false
    ? typeof SIGMA_FAMILIES[N]["key"]
    : never;
}[SigmaFamilyName];

/** The family names, in the table's order. */
export const SIGMA_FAMILY_NAMES: readonly SigmaFamilyName[] = Object.freeze(
  Object.keys(SIGMA_FAMILIES) as SigmaFamilyName[],
);

/** The families `config` enables (at most one in a valid config), in the table's order. */
export function enabledSigmaFamilies(
  config: Readonly<Partial<Record<SigmaFamilyKey, unknown>>>,
): SigmaFamilyName[] {
  return SIGMA_FAMILY_NAMES.filter((name) =>
    config[SIGMA_FAMILIES[name].key] === true
  );
}

/** The family `config` enables, or `null` for the default (sigmas interpolated at the timesteps). */
export function sigmaFamilyOf(
  config: Readonly<Partial<Record<SigmaFamilyKey, unknown>>>,
): SigmaFamilyName | null {
  return enabledSigmaFamilies(config)[0] ?? null;
}

/**
 * Whether `config`'s sigmas are flow-matching sigmas (`alpha_t = 1 − sigma`, `sigma_t = sigma`)
 * rather than VP ones.
 */
export function isFlowSchedule(
  config: Readonly<Partial<Record<SigmaFamilyKey, unknown>>>,
): boolean {
  const family = sigmaFamilyOf(config);
  return family !== null && SIGMA_FAMILIES[family].flow;
}

/** What {@link familySchedule} needs from a scheduler. */
export interface FamilyScheduleContext {
  /** The float32 training sigmas, ascending. */
  readonly trainSigmas: Float32Array;
  /** Whether the schedule runs from the largest sigma down (forward) or up (inverse). */
  readonly descending: boolean;
  /** The flow shift in use. */
  readonly flowShift: number;
  /** Whether `"rounded"` families round (the forward scheduler skips it for the cosine schedule). */
  readonly roundTimesteps: boolean;
}

/** A family's `n` sigmas and their (fractional) timesteps, in float64, in schedule order. */
export function familySchedule(
  name: SigmaFamilyName,
  context: FamilyScheduleContext,
  n: number,
): { sigmas: Float64Array; timesteps: Float64Array } {
  const family: SigmaFamily = SIGMA_FAMILIES[name];
  const train = context.trainSigmas;
  const trainCount = train.length;
  const first = train[0]!;
  const last = train[trainCount - 1]!;
  const logSigmas = family.timesteps === "scaled"
    ? null
    : numpyLogSigmas(train);
  const [from, to] = context.descending ? [last, first] : [first, last];
  const [logFrom, logTo] = logSigmas === null
    ? [NaN, NaN]
    : context.descending
    ? [logSigmas[trainCount - 1]!, logSigmas[0]!]
    : [logSigmas[0]!, logSigmas[trainCount - 1]!];
  const sigmas = family.sigmas(
    { from, to, logFrom, logTo, trainCount, flowShift: context.flowShift },
    n,
  );
  if (logSigmas === null) {
    return { sigmas, timesteps: sigmas.map((s) => s * trainCount) };
  }
  const times = sigmas.map((s) => sigmaToT(s, logSigmas));
  const round = family.timesteps === "rounded" && context.roundTimesteps;
  return { sigmas, timesteps: round ? times.map(roundHalfEven) : times };
}
