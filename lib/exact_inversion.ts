/**
 * Exact inversion of the forward `DPMSolverMultistepScheduler`: the noise from which the ORDINARY
 * `generate` (same forward scheduler, same steps, conditioning and guidance) gives back the clean
 * sample to float32 precision. Each forward step is an implicit equation in the noisier sample,
 * solved by a fixed point preconditioned with the step's linear part and Anderson-mixed per batch
 * item; sweeps over the whole trajectory (one model call per step, a solve of the trajectory's
 * linearized banded system with secant estimates of the model's Jacobian, a scalar per step and
 * then a low-rank part from the first sweeps' moves, Anderson-mixed per item over all steps at
 * once, the stiff clean-end steps also solved one by one) then make every
 * multistep step consistent with the history its noisier neighbours produce. Used through
 * `invert(…, { exact: { forward } })`; see `docs/exact_inversion.md`.
 *
 * @module
 */
import { kernelsFor } from "./backend.ts";
import type { Kernels } from "./kernels.ts";
import type { MultistepScheduler } from "./multistep_scheduler.ts";
import { DPMSolverMultistepScheduler } from "./multistep.ts";
import { Tensor } from "./tensor.ts";
import { AndersonMixer } from "./_anderson.ts";
import type { DiffusionModel, InversionResult, LoopOptions } from "./model.ts";

/** The `exact` option of `invert`. */
export interface ExactInversionOptions {
  /**
   * The forward scheduler the inverted noise is for, as `generate` will run it (same config as
   * the inverse scheduler but for its forward-only keys such as `final_sigmas_type`). Its
   * schedule is set with `setTimesteps(numInferenceSteps)` and its state is overwritten.
   */
  forward: DPMSolverMultistepScheduler;
  /**
   * Target per step: max |forward step(x_next) − x_prev| / max(1, max |x_prev|), reached per
   * batch item.
   * @default {1e-6}
   */
  tolerance?: number;
  /**
   * Model calls one implicit step solve of the first pass may spend (a step that reads a
   * multistep history gets 1 there: its history is still a guess, the sweeps solve it).
   * @default {50}
   */
  maxIterations?: number;
  /**
   * Anderson mixing depth of a step solve: previous iterates the update combines (0: plain fixed
   * point); the sweeps over the whole trajectory mix four times as many. @default {5}
   */
  andersonDepth?: number;
  /**
   * Sweeps over the whole trajectory after the first pass (each costs one model call per step),
   * to make the multistep history consistent and finish the steps the first pass left.
   * @default {50}
   */
  maxSweeps?: number;
  /**
   * A budget of model calls for the whole inversion: once spent, the solves and sweeps stop and
   * the best iterates are kept (the first pass still takes at least one call per step).
   * @default {Infinity}
   */
  maxModelCalls?: number;
  /** Called after every model call of a solve, with the residual of the step being solved. */
  onIteration?: (info: ExactIteration) => void;
}

/** What {@link ExactInversionOptions.onIteration} receives. */
export interface ExactIteration {
  /** 0 for the first pass over the trajectory, then 1, 2… */
  sweep: number;
  /** The inversion step being solved: 0 is the step from the clean sample. */
  step: number;
  /** Model calls of this solve so far (1 after the first). */
  iteration: number;
  /** The step's residual at this iterate (max over the batch items). */
  residual: number;
  /** Model calls of the whole inversion so far. */
  modelCalls: number;
}

/** The result of an exact inversion: {@link InversionResult} plus its diagnostics. */
export interface ExactInversionResult extends InversionResult {
  /** Model calls spent (one call evaluates the whole batch). */
  modelCalls: number;
  /**
   * Per inversion step (0 from the clean sample), the final max |forward step(x_next) − x_prev| /
   * max(1, max |x_prev|), with the final multistep history.
   */
  residuals: Float64Array;
  /**
   * Per batch item, the model calls made while that item was still off tolerance in the solve
   * at hand: about what inverting the item alone would have cost (its median is the cost the
   * benchmark reports).
   */
  itemModelCalls: Int32Array;
  /** Whether every residual is within the tolerance. */
  converged: boolean;
  /** Rounds over the whole trajectory after the first pass. */
  sweeps: number;
}

// Step i as x[i + 1] = sample·x[i] + output·m[i] + previous·m[i − 1] (+ order 3's m[i − 2]), the
// converted output m being linear in the sample and the raw model output.
interface StepCoefficients {
  sample: number;
  output: number;
  previous: number;
}

// The inverse of the n × n matrix `a` (row-major) by Gauss–Jordan elimination with partial
// pivoting, in float64; the identity where it is singular (the plain update).
function invertMatrix(a: Float64Array, n: number): Float64Array {
  const w = 2 * n;
  const m = new Float64Array(n * w);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) m[r * w + c] = a[r * n + c]!;
    m[r * w + n + r] = 1;
  }
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) {
      if (Math.abs(m[r * w + col]!) > Math.abs(m[pivot * w + col]!)) pivot = r;
    }
    const p = m[pivot * w + col]!;
    if (!(Math.abs(p) > 1e-300) || !Number.isFinite(p)) {
      const id = new Float64Array(n * n);
      for (let r = 0; r < n; r++) id[r * n + r] = 1;
      return id;
    }
    if (pivot !== col) {
      for (let c = 0; c < w; c++) {
        const t = m[col * w + c]!;
        m[col * w + c] = m[pivot * w + c]!;
        m[pivot * w + c] = t;
      }
    }
    for (let c = 0; c < w; c++) m[col * w + c]! /= p;
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const factor = m[r * w + col]!;
      if (factor === 0) continue;
      for (let c = 0; c < w; c++) m[r * w + c]! -= factor * m[col * w + c]!;
    }
  }
  const out = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) out[r * n + c] = m[r * w + n + c]!;
  }
  return out;
}

// Model calls per step of the first pass of a step that reads a history, which is a guess there:
// the plain inverse step and its model call, no solve (the sweeps do the solving; on the digits,
// order 2, 25 steps, 5 digits, against 3 calls: guidance 3 linspace 104.5 dB instead of 59.9).
const FIRST_PASS_ITERATIONS = 1;

// Sweeps whose moves give each step its secant pairs (Δx, Δm) for the low-rank part of its
// Jacobian model (see `#secantCorrection`); the pairs are then kept, so the map the mixing sees
// stays fixed (pairs from every sweep's newest moves: 19.0 dB on 5 digits, Karras guidance 3). On
// the digits (50, order 2, 25 steps, guidance 3) with 4 pairs: linspace 90.8 dB, Karras 66.1 dB,
// against 87.7 and 57.3 with the scalar estimates alone; with 2 or 3: Karras 42.7 or 50.5 dB.
const SECANT_SWEEPS = 4;
// The ridge on the pairs' Gram matrix, relative to its trace.
const RIDGE = 1e-8;

// A step whose derivative in the sample with the model output held fixed, L = a + b·(identity
// part), exceeds this many times its sample coefficient a is stiff: the scalar estimate of the
// model's Jacobian spans too wide a range of its true derivative (the final step to sigma_min of
// linspace sigmas: a ≈ 0.07, L ≈ 2.9) for the sweeps' preconditioner.
const STIFF_RATIO = 10;

// Model calls of a step solve inside every sweep for each step of the clean-end block (see
// `#cleanEndBlock`): one preconditioned fixed-point step, kept where it lowers the step's
// residual. On the digits, order 2, linspace, 25 steps, 50 digits: 1 call 120.9 dB at 17.4× the
// plain calls and guidance 3 87.7 dB, 2 calls 121.4 dB at 18.4× and 71.4 dB (5 digits: 3 calls
// 18.3×; without the block 28.2×).
const BLOCK_ITERATIONS = 1;

// Config keys that must agree between the inverse and the forward scheduler.
const SHARED_KEYS = [
  "num_train_timesteps",
  "beta_start",
  "beta_end",
  "beta_schedule",
  "trained_betas",
  "solver_order",
  "prediction_type",
  "thresholding",
  "dynamic_thresholding_ratio",
  "sample_max_value",
  "algorithm_type",
  "solver_type",
  "lower_order_final",
  "euler_at_final",
  "use_karras_sigmas",
  "use_exponential_sigmas",
  "use_beta_sigmas",
  "use_flow_sigmas",
  "flow_shift",
  "lambda_min_clipped",
  "variance_type",
  "timestep_spacing",
  "steps_offset",
] as const;

/**
 * Checks that `forward` can be inverted exactly with `inverse`'s config: a forward scheduler,
 * no SDE noise, and the same value for every key the two share.
 *
 * @throws {TypeError} `forward` is not a `DPMSolverMultistepScheduler`.
 * @throws {RangeError} An SDE `algorithm_type`, or a shared key with another value (named).
 *
 * @example
 * ```ts
 * import { checkExactInversion, DPMSolverMultistepInverseScheduler, DPMSolverMultistepScheduler } from "@dpmsolver/scheduler";
 * import assert from "node:assert/strict";
 *
 * const inverse = new DPMSolverMultistepInverseScheduler({ solver_order: 2 });
 * checkExactInversion(inverse, new DPMSolverMultistepScheduler({ solver_order: 2, final_sigmas_type: "sigma_min" }));
 * assert.throws(
 *   () => checkExactInversion(inverse, new DPMSolverMultistepScheduler({ solver_order: 2, beta_schedule: "scaled_linear" })),
 *   /'beta_schedule'/,
 * );
 * ```
 */
export function checkExactInversion(
  inverse: MultistepScheduler,
  forward: unknown,
): asserts forward is DPMSolverMultistepScheduler {
  if (!(forward instanceof DPMSolverMultistepScheduler)) {
    throw new TypeError(
      `Cannot invert exactly as 'exact.forward' must be a DPMSolverMultistepScheduler: current value is ${
        (forward as object | null)?.constructor?.name ?? String(forward)
      }`,
    );
  }
  const algorithm = forward.config.algorithm_type;
  if (algorithm === "sde-dpmsolver" || algorithm === "sde-dpmsolver++") {
    throw new RangeError(
      `Cannot invert exactly as the forward 'algorithm_type' "${algorithm}" adds fresh noise every step: use "dpmsolver++" or "dpmsolver"`,
    );
  }
  const a = inverse.config as unknown as Record<string, unknown>;
  const b = forward.config as unknown as Record<string, unknown>;
  for (const key of SHARED_KEYS) {
    if (!(key in a) || !(key in b) || sameValue(a[key], b[key])) continue;
    throw new RangeError(
      `Cannot invert exactly as the forward scheduler's '${key}' differs from the inverse scheduler's: current values are ${
        show(b[key])
      } and ${show(a[key])} (build both from one config)`,
    );
  }
}

function sameValue(x: unknown, y: unknown): boolean {
  if (Object.is(x, y)) return true;
  if (ArrayBuffer.isView(x) || Array.isArray(x)) {
    const u = Array.from(x as ArrayLike<number>);
    const v = y && (ArrayBuffer.isView(y) || Array.isArray(y))
      ? Array.from(y as ArrayLike<number>)
      : null;
    return v !== null && u.length === v.length &&
      u.every((e, i) => Object.is(e, v[i]));
  }
  return false;
}

function show(value: unknown): string {
  return typeof value === "string" ? `"${value}"` : String(value);
}

/**
 * The exact inversion behind `invert(…, { exact })`: `image` is the forward schedule's last
 * sample; returns the sample at `forward.sigmas[n − steps]` whose ordinary `generate` run
 * reproduces it. `inverse` has been prepared (its schedule set) by the caller.
 */
export async function invertExact(
  model: DiffusionModel,
  image: Tensor,
  inverse: MultistepScheduler,
  options: LoopOptions & { exact: ExactInversionOptions },
  labels: Int32Array | undefined,
): Promise<ExactInversionResult> {
  const { exact } = options;
  checkExactInversion(inverse, exact.forward);
  const forward = exact.forward;
  const tolerance = exact.tolerance ?? 1e-6;
  const maxIterations = exact.maxIterations ?? 50;
  const depth = exact.andersonDepth ?? 5;
  const maxSweeps = exact.maxSweeps ?? 50;
  const maxModelCalls = exact.maxModelCalls ?? Infinity;
  if (!(maxModelCalls >= 1)) {
    throw new RangeError(
      `Cannot invert exactly as 'exact.maxModelCalls' must be at least 1: current value is ${maxModelCalls}`,
    );
  }
  if (!(tolerance > 0) || !Number.isFinite(tolerance)) {
    throw new RangeError(
      `Cannot invert exactly as 'exact.tolerance' must be positive and finite: current value is ${tolerance}`,
    );
  }
  for (
    const [name, value, min] of [
      ["exact.maxIterations", maxIterations, 1],
      ["exact.andersonDepth", depth, 0],
      ["exact.maxSweeps", maxSweeps, 0],
    ] as const
  ) {
    if (!Number.isInteger(value) || value < min) {
      throw new RangeError(
        `Cannot invert exactly as '${name}' must be an integer ≥ ${min}: current value is ${value}`,
      );
    }
  }
  const kernels = kernelsFor<Tensor>("invert exactly", image);
  if (!kernels.maxAbs || !kernels.dot) {
    throw new TypeError(
      `Cannot invert exactly as the '${kernels.name}' kernels lack the 'maxAbs' and 'dot' reductions`,
    );
  }
  const n = inverse.numInferenceSteps!;
  forward.setTimesteps(n);
  const strength = options.strength ?? 1;
  const steps = Math.min(Math.trunc(n * strength), forward.timesteps.length);
  const start = n - steps;
  const solver = new ExactSolver(
    model,
    forward,
    kernels,
    image,
    labels,
    options.guidanceScale,
    {
      maxModelCalls,
      tolerance,
      maxIterations,
      depth,
      start,
      onIteration: exact.onIteration,
    },
  );
  return await solver.run(maxSweeps, steps);
}

interface SolverSettings {
  maxModelCalls: number;
  tolerance: number;
  maxIterations: number;
  depth: number;
  start: number;
  onIteration: ((info: ExactIteration) => void) | undefined;
}

/**
 * `reduce(b)` for every item `b < count`, all issued before any is awaited: a device backend
 * queues every reduction at once and waits for their readbacks together, not one by one.
 */
function perItem(
  count: number,
  reduce: (b: number) => number | Promise<number>,
): Promise<number[]> {
  return Promise.all(Array.from({ length: count }, (_, b) => reduce(b)));
}

// Per step of the sweeps, the secant pairs (Δx, Δm) of the first sweeps' moves and, once they are
// all in, per item the inverse of the small matrix of `#secantCorrection` (null: no estimate).
class SecantPairs {
  readonly pairs: { dx: Tensor; dm: Tensor }[][];
  readonly inverses: (Float64Array | null)[][];
  constructor(count: number) {
    this.pairs = Array.from({ length: count }, () => []);
    this.inverses = Array.from({ length: count }, () => []);
  }
}

// One exact inversion: the trajectory x[start..n] (x[n] the clean sample), the raw model outputs
// e[i] at x[i] and their conversions m[i], forward step i mapping x[i] to x[i + 1].
class ExactSolver {
  readonly #model: DiffusionModel;
  readonly #forward: DPMSolverMultistepScheduler;
  readonly #k: Kernels<Tensor>;
  readonly #labels: Int32Array | undefined;
  readonly #guidance: number | undefined;
  readonly #s: SolverSettings;
  readonly #n: number;
  readonly #shape: readonly number[];
  readonly #batch: number;
  readonly #x: (Tensor | null)[];
  readonly #e: (Tensor | null)[];
  readonly #m: (Tensor | null)[];
  readonly #precondition: number[];
  readonly #coefficients: (StepCoefficients | null)[];
  // The steps the sweeps also solve one by one, clean → noisy (see `#cleanEndBlock`).
  readonly #block: number[];
  readonly #itemCalls: Int32Array;
  #calls = 0;
  #sweep = 0;

  constructor(
    model: DiffusionModel,
    forward: DPMSolverMultistepScheduler,
    kernels: Kernels<Tensor>,
    image: Tensor,
    labels: Int32Array | undefined,
    guidance: number | undefined,
    settings: SolverSettings,
  ) {
    this.#model = model;
    this.#forward = forward;
    this.#k = kernels;
    this.#labels = labels;
    this.#guidance = guidance;
    this.#s = settings;
    this.#n = forward.timesteps.length;
    this.#shape = image.shape;
    this.#batch = image.shape[0]!;
    this.#itemCalls = new Int32Array(this.#batch);
    this.#x = new Array(this.#n + 1).fill(null);
    this.#e = new Array(this.#n + 1).fill(null);
    this.#m = new Array(this.#n + 1).fill(null);
    const last = kernels.empty(image.shape);
    kernels.copy(last, image);
    this.#x[this.#n] = last;
    this.#precondition = Array.from(
      { length: this.#n },
      (_, i) => i >= settings.start ? this.#linearPart(i) : 1,
    );
    this.#coefficients = Array.from(
      { length: this.#n },
      (_, i) => i >= settings.start ? this.#stepCoefficients(i) : null,
    );
    this.#block = this.#cleanEndBlock();
  }

  async run(maxSweeps: number, steps: number): Promise<ExactInversionResult> {
    const n = this.#n;
    const { start, tolerance } = this.#s;
    const sigma = this.#forward.sigmas[start]!;
    if (steps === 0) {
      return {
        sample: this.#x[n]!,
        sigma,
        steps: 0,
        modelCalls: 0,
        residuals: new Float64Array(0),
        itemModelCalls: new Int32Array(this.#batch),
        converged: true,
        sweeps: 0,
      };
    }
    // First pass, clean → noisy: each step from the plain inverse step, the noisier history
    // (not known yet) estimated by the newest known converted output.
    for (let i = n - 1; i >= start; i--) {
      let x = this.#x[i + 1]!;
      let e = this.#e[i + 1];
      if (e === null) {
        e = await this.#call(x, this.#forward.timesteps[n - 1]!);
        this.#itemCalls.fill(1);
      }
      const history = this.#history(i, x, e);
      // The plain (explicit) inverse step: the fixed-point map at the cleaner sample.
      const y = this.#k.empty(this.#shape);
      const scratch = this.#k.empty(this.#shape);
      this.#stepInto(i, x, e, history, y, scratch);
      const guess = this.#k.empty(this.#shape);
      this.#k.axpbyDiv(guess, 1, y, -1, x, -this.#precondition[i]!);
      this.#k.axpbyDiv(guess, 1, x, 1, guess, 1);
      x = guess;
      // With a multistep history still guessed, the sweeps solve the step.
      await this.#solve(
        i,
        x,
        null,
        history,
        this.#readsHistory(i)
          ? Math.min(FIRST_PASS_ITERATIONS, this.#s.maxIterations)
          : this.#s.maxIterations,
      );
    }
    // Sweeps over the whole trajectory x[start..n − 1]: one model call per step at the current
    // iterate, then one solve of the trajectory's linearized (banded) system with those outputs
    // and secant estimates of the model's Jacobian, the whole map Anderson-mixed per item.
    let sweeps = 0;
    let residuals = await this.#residuals();
    if (
      maxSweeps > 0 && this.#calls < this.#s.maxModelCalls &&
      residuals.some((r) => !(r <= tolerance))
    ) {
      sweeps = await this.#sweeps(maxSweeps);
      residuals = await this.#residuals();
    }
    return {
      sample: this.#x[start]!,
      sigma,
      steps,
      modelCalls: this.#calls,
      residuals,
      itemModelCalls: this.#itemCalls,
      converged: residuals.every((r) => r <= tolerance),
      sweeps,
    };
  }

  // The sweeps of `run`: Anderson mixing (per item, over the whole trajectory) of the map
  // x ↦ x + f, f = −A⁻¹·r with r[i] = F_i(x) − x[i + 1] at the model outputs of x and A the
  // linearized system of `#bandedUpdate`, keeping per item the trajectory of least worst residual.
  // Returns the sweeps made.
  async #sweeps(maxSweeps: number): Promise<number> {
    const n = this.#n;
    const { start, tolerance, depth } = this.#s;
    const count = n - start;
    const B = this.#batch;
    const k = this.#k;
    const shape = this.#shape;
    const list = () => Array.from({ length: count }, () => k.empty(shape));
    let x = list();
    let next = list();
    const f = list();
    const e: Tensor[] = [];
    const m = list();
    const best = { x: list(), e: list(), m: list() };
    const bestResidual = new Float64Array(B).fill(Infinity);
    for (let j = 0; j < count; j++) {
      k.copy(x[j]!, this.#x[start + j]!);
      e.push(this.#e[start + j]!);
    }
    const mixer = new AndersonMixer(k, shape, count, 4 * depth);
    const active = new Uint8Array(B);
    const y = k.empty(shape);
    const r = list();
    const dx = k.empty(shape);
    const dm = k.empty(shape);
    // Per step j and item b (index j·B + b), the scalar estimate of dm/dx; NaN until the first
    // sweep has moved the trajectory.
    const jacobian = new Float64Array(count * B).fill(NaN);
    const scratch = k.empty(shape);
    // Per step, the secant pairs of the first sweeps' moves (see `#secantCorrection`), and the
    // trajectory of the sweep before (their other end).
    const secants = new SecantPairs(count);
    const previous = { x: list(), m: list() };
    const corrected = list();
    let sweeps = 0;
    while (true) {
      // Conversions of the outputs (the conversion does not read the history).
      for (let j = 0; j < count; j++) {
        this.#stepInto(start + j, x[j]!, e[j]!, [x[j]!, x[j]!], y, m[j]!);
      }
      // Order 3 keeps the lagged coupling: with the estimates it did worse (digits, 50, linspace,
      // 25 steps: 20.4 dB against 34.2 dB).
      if (sweeps === 1 && this.#forward.config.solver_order < 3) {
        // Secant estimates from the move of the first sweep (`best` still holds the first
        // pass's trajectory): ⟨Δm, Δx⟩ / ⟨Δx, Δx⟩ per step and item, then kept, so the map the
        // mixing sees stays fixed; its one difference so far was of the old map: forgotten.
        await this.#estimateJacobian(x, m, best.x, best.m, dx, dm, jacobian);
        for (let b = 0; b < B; b++) mixer.forget(b);
      }
      // The secant pairs of the first sweeps' moves (the first one the scalar estimate's), then
      // fixed: the map changes once more when the last is in, and the mixing forgets. Order 2
      // only: measured there (order 1's sweeps only finish what its first pass left).
      const low = sweeps >= 1 && this.#forward.config.solver_order === 2;
      if (low && sweeps <= SECANT_SWEEPS) {
        const from = sweeps === 1 ? best : previous;
        for (let j = 0; j < count; j++) {
          const pair = { dx: k.empty(shape), dm: k.empty(shape) };
          k.axpbyDiv(pair.dx, 1, x[j]!, -1, from.x[j]!, 1);
          k.axpbyDiv(pair.dm, 1, m[j]!, -1, from.m[j]!, 1);
          secants.pairs[j]!.push(pair);
        }
        if (sweeps === SECANT_SWEEPS) {
          await this.#prepareSecants(secants, jacobian);
          for (let b = 0; b < B; b++) mixer.forget(b);
        }
      }
      // The stiff steps and the outputs they read, solved in turn against the sweep's history
      // (one call each): the part of the trajectory the scalar estimates model worst.
      for (const i of this.#block) {
        const j = i - start;
        await this.#solve(
          i,
          x[j]!,
          e[j]!,
          this.#sweepHistory(j, m),
          BLOCK_ITERATIONS,
        );
        k.copy(x[j]!, this.#x[i]!);
        e[j] = this.#e[i]!;
        k.copy(m[j]!, this.#m[i]!);
      }
      if (low && sweeps < SECANT_SWEEPS) {
        for (let j = 0; j < count; j++) {
          k.copy(previous.x[j]!, x[j]!);
          k.copy(previous.m[j]!, m[j]!);
        }
      }
      // Residuals per item; the best trajectory per item.
      const worst = new Float64Array(B);
      for (let j = count - 1; j >= 0; j--) {
        const i = start + j;
        const target = j + 1 < count ? x[j + 1]! : this.#x[n]!;
        this.#stepInto(i, x[j]!, e[j]!, this.#sweepHistory(j, m), y, scratch);
        k.axpbyDiv(r[j]!, 1, y, -1, target, 1);
        let stepResidual = 0;
        const [scales, sizes] = await Promise.all([
          perItem(B, (b) => k.maxAbs!(target.slice(0, b, b + 1))),
          perItem(B, (b) => k.maxAbs!(r[j]!.slice(0, b, b + 1))),
        ]);
        for (let b = 0; b < B; b++) {
          const res = sizes[b]! / Math.max(1, scales[b]!);
          if (!(res <= worst[b]!)) worst[b] = res;
          if (!(res <= stepResidual)) stepResidual = res;
        }
        if (sweeps > 0) {
          this.#s.onIteration?.({
            sweep: sweeps,
            step: n - 1 - i,
            iteration: 1,
            residual: stepResidual,
            modelCalls: this.#calls,
          });
        }
      }
      for (let b = 0; b < B; b++) this.#bandedUpdate(b, f, r, jacobian);
      if (low && sweeps >= SECANT_SWEEPS) {
        // The items' passes interleave (each reads and writes its own slices only), so a device
        // backend waits for their reductions together.
        await Promise.all(
          Array.from(
            { length: B },
            (_, b) =>
              this.#secantCorrection(b, f, r, jacobian, secants, corrected, y),
          ),
        );
      }
      let unsolved = 0;
      for (let b = 0; b < B; b++) {
        if (worst[b]! < bestResidual[b]!) {
          bestResidual[b] = worst[b]!;
          for (const [to, from] of [[best.x, x], [best.e, e], [best.m, m]]) {
            for (let j = 0; j < count; j++) {
              k.copy(to[j]!.slice(0, b, b + 1), from[j]!.slice(0, b, b + 1));
            }
          }
        }
        // Grown tenfold past the best, or not finite: Anderson's history misleads.
        if (!(worst[b]! <= 10 * bestResidual[b]!)) mixer.restart(b);
        active[b] = worst[b]! <= tolerance ? 0 : 1;
        if (!(bestResidual[b]! <= tolerance)) unsolved++;
      }
      if (
        unsolved === 0 || sweeps >= maxSweeps ||
        this.#calls + count > this.#s.maxModelCalls
      ) break;
      await mixer.next(x, f, next, active);
      [x, next] = [next, x];
      sweeps++;
      this.#sweep = sweeps;
      for (let j = count - 1; j >= 0; j--) {
        e[j] = await this.#call(x[j]!, this.#forward.timesteps[start + j]!);
      }
      for (let b = 0; b < B; b++) {
        if (!(bestResidual[b]! <= tolerance)) this.#itemCalls[b] += count;
      }
    }
    for (let j = 0; j < count; j++) {
      this.#x[start + j] = best.x[j]!;
      this.#e[start + j] = best.e[j]!;
      this.#m[start + j] = best.m[j]!;
    }
    return sweeps;
  }

  // Per step j and item b, jacobian[j·B + b] = ⟨Δm, Δx⟩ / ⟨Δx, Δx⟩ between the trajectories
  // (x, m) and (x0, m0); left as it was where the item did not move.
  async #estimateJacobian(
    x: Tensor[],
    m: Tensor[],
    x0: Tensor[],
    m0: Tensor[],
    dx: Tensor,
    dm: Tensor,
    jacobian: Float64Array,
  ): Promise<void> {
    const k = this.#k;
    const B = this.#batch;
    for (let j = 0; j < x.length; j++) {
      k.axpbyDiv(dx, 1, x[j]!, -1, x0[j]!, 1);
      k.axpbyDiv(dm, 1, m[j]!, -1, m0[j]!, 1);
      const item = (t: typeof dx, b: number) => t.slice(0, b, b + 1);
      const [xxs, mxs] = await Promise.all([
        perItem(B, (b) => k.dot!(item(dx, b), item(dx, b))),
        perItem(B, (b) => k.dot!(item(dm, b), item(dx, b))),
      ]);
      for (let b = 0; b < B; b++) {
        const xx = xxs[b]!;
        if (!(xx > 0)) continue;
        const estimate = mxs[b]! / xx;
        if (Number.isFinite(estimate)) jacobian[j * B + b] = estimate;
      }
    }
  }

  // Per step j and item b, the k × k matrix (L·G + output·H)⁻¹ of `#secantCorrection`, from the
  // pairs' Gram matrix G = ΔXᵀΔX and H = ΔXᵀ(ΔM − J·ΔX), J the scalar estimate and
  // L = sample + output·J. Left null where J is not known.
  async #prepareSecants(
    secants: SecantPairs,
    jacobian: Float64Array,
  ): Promise<void> {
    const k = this.#k;
    const { start } = this.#s;
    const B = this.#batch;
    for (let j = 0; j < secants.pairs.length; j++) {
      const pairs = secants.pairs[j]!;
      const q = pairs.length;
      const c = this.#coefficients[start + j]!;
      const inverses: (Float64Array | null)[] = [];
      // ⟨Δx_u, other_w⟩ per item b and pair indices u, w, at [b·q·q + u·q + w].
      const pairDots = (other: "dx" | "dm") =>
        perItem(B * q * q, (t) => {
          const b = Math.floor(t / (q * q));
          const u = Math.floor(t / q) % q;
          return k.dot!(
            pairs[u]!.dx.slice(0, b, b + 1),
            pairs[t % q]![other].slice(0, b, b + 1),
          );
        });
      const [gram, mixed] = await Promise.all([pairDots("dx"), pairDots("dm")]);
      for (let b = 0; b < B; b++) {
        const estimate = jacobian[j * B + b]!;
        if (!Number.isFinite(estimate)) {
          inverses.push(null);
          continue;
        }
        const diagonal = c.sample + c.output * estimate;
        // A tiny ridge on G for pairs that are nearly parallel.
        let trace = 0;
        for (let u = 0; u < q; u++) trace += gram[b * q * q + u * q + u]!;
        const a = new Float64Array(q * q);
        for (let t = 0; t < q * q; t++) {
          const g = gram[b * q * q + t]! +
            (t % (q + 1) === 0 ? RIDGE * trace : 0);
          a[t] = diagonal * g +
            c.output * (mixed[b * q * q + t]! - estimate * g);
        }
        inverses.push(invertMatrix(a, q));
      }
      secants.inverses[j] = inverses;
    }
  }

  // Item b of the sweep's update with each step's diagonal block L_j = sample + output·J_j taken
  // with a low-rank Jacobian model instead of the scalar J_j alone: J_j = γ·I + W·G⁻¹·ΔXᵀ, exact
  // on the step's secant pairs (J_j·Δx = Δm), γ the scalar estimate elsewhere, W = ΔM − γ·ΔX.
  // A Gauss–Seidel pass clean → noisy of row j of `#bandedUpdate`'s system, the coupling to the
  // noisier step from the scalar solution `f` (which this pass reproduces with no pairs):
  // f'[j] = L_j⁻¹·(f'[j + 1] − r[j] − previous·γ_{j−1}·f[j − 1]), L_j⁻¹ by Sherman–Morrison–
  // Woodbury: (v − output·W·(L·G + output·ΔXᵀW)⁻¹·ΔXᵀv) / L, with L = sample + output·γ; `f`
  // is overwritten.
  async #secantCorrection(
    b: number,
    f: Tensor[],
    r: Tensor[],
    jacobian: Float64Array,
    secants: SecantPairs,
    out: Tensor[],
    scratch: Tensor,
  ): Promise<void> {
    const k = this.#k;
    const { start } = this.#s;
    const count = f.length;
    const B = this.#batch;
    const item = (t: Tensor) => t.slice(0, b, b + 1);
    const v = item(scratch);
    for (let j = count - 1; j >= 0; j--) {
      const c = this.#coefficients[start + j]!;
      const estimate = jacobian[j * B + b]!;
      const diagonal = Number.isFinite(estimate)
        ? c.sample + c.output * estimate
        : this.#precondition[start + j]!;
      k.axpbyDiv(v, -1, item(r[j]!), 0, null, 1);
      if (j + 1 < count) k.axpbyDiv(v, 1, v, 1, item(out[j + 1]!), 1);
      const noisier = j > 0 ? jacobian[(j - 1) * B + b]! : NaN;
      if (Number.isFinite(noisier)) {
        k.axpbyDiv(v, 1, v, -c.previous * noisier, item(f[j - 1]!), 1);
      }
      const fj = item(out[j]!);
      k.axpbyDiv(fj, 1, v, 0, null, diagonal);
      const inverse = secants.inverses[j]![b];
      if (!inverse) continue;
      const pairs = secants.pairs[j]!;
      const q = pairs.length;
      const p = await Promise.all(
        pairs.map((pair) => k.dot!(item(pair.dx), v)),
      );
      for (let w = 0; w < q; w++) {
        let z = 0;
        for (let u = 0; u < q; u++) z += inverse[w * q + u]! * p[u]!;
        if (!Number.isFinite(z) || z === 0) continue;
        const weight = -c.output * z / diagonal;
        k.axpbyDiv(fj, 1, fj, weight, item(pairs[w]!.dm), 1);
        k.axpbyDiv(fj, 1, fj, -estimate * weight, item(pairs[w]!.dx), 1);
      }
    }
    for (let j = 0; j < count; j++) k.copy(item(f[j]!), item(out[j]!));
  }

  // Item b of the sweep's update f = −A⁻¹·r: A is the trajectory's linearized system in the
  // step errors δ (row j: L_j·δ[j] − δ[j + 1] + C_j·J_{j−1}·δ[j − 1], with
  // L_j = sample_j + output_j·J_j and C_j the weight of the newest history output), the model
  // Jacobian dm/dx at step j replaced by the scalar J_j = jacobian[j·B + b]. Where J_j is not
  // known yet, L_j is the step's linear part (the conversion's identity part for dm/dx) and the
  // coupling through step j is dropped: then A is lower bidiagonal and f the Gauss–Seidel pass
  // clean → noisy of −(r − δ[j + 1]) / L_j. Order 3's coupling to the older output m_{j−2} is
  // left out: with it, order 3 did worse (digits, 5, linspace, 25 steps: 21.0 dB against 41.9;
  // order 3 now uses no estimates, see `#sweeps`).
  // The tridiagonal system is solved exactly on the host (count × count, float64); f[j] is a
  // linear combination of the residuals r.
  #bandedUpdate(
    b: number,
    f: Tensor[],
    r: Tensor[],
    jacobian: Float64Array,
  ): void {
    const k = this.#k;
    const { start } = this.#s;
    const count = f.length;
    const B = this.#batch;
    const a = new Float64Array(count * count);
    for (let j = 0; j < count; j++) {
      const c = this.#coefficients[start + j]!;
      const own = jacobian[j * B + b]!;
      a[j * count + j] = Number.isFinite(own)
        ? c.sample + c.output * own
        : this.#precondition[start + j]!;
      if (j + 1 < count) a[j * count + j + 1] = -1;
      const estimate = j > 0 ? jacobian[(j - 1) * B + b]! : NaN;
      if (Number.isFinite(estimate)) {
        a[j * count + j - 1] = c.previous * estimate;
      }
    }
    const inverse = invertMatrix(a, count);
    for (let j = 0; j < count; j++) {
      const fb = f[j]!.slice(0, b, b + 1);
      k.axpbyDiv(
        fb,
        -inverse[j * count]!,
        r[0]!.slice(0, b, b + 1),
        0,
        null,
        1,
      );
      for (let q = 1; q < count; q++) {
        const w = -inverse[j * count + q]!;
        if (w !== 0) k.axpbyDiv(fb, 1, fb, w, r[q]!.slice(0, b, b + 1), 1);
      }
    }
  }

  // The converted outputs step start + j reads besides its own, from a sweep's list `m`.
  #sweepHistory(j: number, m: Tensor[]): (Tensor | null)[] {
    const out: (Tensor | null)[] = [];
    for (let o = 1; o < this.#forward.config.solver_order; o++) {
      out.push(j - o >= 0 ? m[j - o]! : null);
    }
    return out;
  }

  // Per inversion step (0 from the clean end), the contract's residual with the final history.
  async #residuals(): Promise<Float64Array> {
    const n = this.#n;
    const { start } = this.#s;
    const out = new Float64Array(n - start);
    const y = this.#k.empty(this.#shape);
    const scratch = this.#k.empty(this.#shape);
    for (let i = n - 1; i >= start; i--) {
      const target = this.#x[i + 1]!;
      this.#stepInto(
        i,
        this.#x[i]!,
        this.#e[i]!,
        this.#knownHistory(i),
        y,
        scratch,
      );
      this.#k.axpbyDiv(scratch, 1, y, -1, target, 1);
      const [size, scale] = await Promise.all([
        this.#k.maxAbs!(scratch),
        this.#k.maxAbs!(target),
      ]);
      out[n - 1 - i] = size / Math.max(1, scale);
    }
    return out;
  }

  async #call(x: Tensor, t: number): Promise<Tensor> {
    this.#calls++;
    return await this.#model(
      this.#forward.scaleModelInput(x, t),
      t,
      this.#labels,
      this.#guidance,
    );
  }

  // The converted outputs step i reads besides its own, newest first: the solved ones.
  #knownHistory(i: number): (Tensor | null)[] {
    const out: (Tensor | null)[] = [];
    for (let k = 1; k < this.#forward.config.solver_order; k++) {
      out.push(i - k >= this.#s.start ? this.#m[i - k] : null);
    }
    return out;
  }

  // The history for step i in the first pass: solved outputs where known, else the newest known
  // converted output (that of x[i + 1], or for the clean end the conversion of e at x[n]).
  #history(i: number, x: Tensor, e: Tensor): (Tensor | null)[] {
    const history = this.#knownHistory(i);
    if (history.every((h, k) => h !== null || i - k - 1 < this.#s.start)) {
      return history;
    }
    let estimate = this.#m[i + 1];
    if (estimate === null) {
      estimate = this.#k.empty(this.#shape);
      const y = this.#k.empty(this.#shape);
      // The conversion does not read the history: any tensor of the shape stands in.
      this.#stepInto(i, x, e, history.map(() => x), y, estimate);
    }
    return history.map((h, k) =>
      h ?? (i - k - 1 >= this.#s.start ? estimate : null)
    );
  }

  // Forward step i of the user's scheduler from x (model output e, earlier converted outputs
  // `history`, newest first) into `out`, its conversion of e into `converted`: the scheduler's
  // own `step`, with its state set as `generate` would have it at step i.
  #stepInto(
    i: number,
    x: Tensor,
    e: Tensor,
    history: readonly (Tensor | null)[],
    out: Tensor,
    converted: Tensor,
  ): void {
    const f = this.#forward;
    this.#prime(i, history);
    f.step(e, f.timesteps[i]!, x, { out });
    this.#k.copy(
      converted,
      f.modelOutputs[f.modelOutputs.length - 1] as Tensor,
    );
  }

  #prime(i: number, history: readonly (Tensor | null)[]): void {
    const f = this.#forward;
    const order = f.config.solver_order;
    f.setTimesteps(this.#n);
    f.setBeginIndex(i);
    const outputs: (Tensor | null)[] = new Array(order).fill(null);
    for (let k = 1; k < order; k++) outputs[order - k] = history[k - 1] ?? null;
    f.modelOutputs = outputs;
    f.lowerOrderNums = Math.min(i - this.#s.start, order);
  }

  // The step's derivative in the sample with the model output held fixed (a + b·dm/dx, the
  // identity part of the conversion included): the scheduler's step of a one-element sample 1
  // with model output 0 and a zero history. The fixed point's preconditioner.
  #linearPart(i: number): number {
    const f = this.#forward;
    const zero = Tensor.zeros([1]);
    this.#prime(i, [zero, zero]);
    const out = f.step(zero, f.timesteps[i]!, Tensor.from([1], [1])).prevSample;
    const value = out.toFloat32Array()[0]!;
    return Number.isFinite(value) && Math.abs(value) > 1e-12 ? value : 1;
  }

  // Step i's coefficients on one-element tensors: the sample's (model output held fixed), the
  // converted output's and the newest history output's.
  #stepCoefficients(i: number): StepCoefficients {
    const f = this.#forward;
    const order = f.config.solver_order;
    const run = (x: number, e: number, history: number[]) => {
      this.#prime(i, history.map((h) => Tensor.from([h], [1])));
      const value = f.step(
        Tensor.from([e], [1]),
        f.timesteps[i]!,
        Tensor.from([x], [1]),
      ).prevSample.toFloat32Array()[0]!;
      const converted = (f.modelOutputs[f.modelOutputs.length - 1] as Tensor)
        .toFloat32Array()[0]!;
      return { value, converted };
    };
    const zeros = new Array(order - 1).fill(0);
    const unit = run(1, 0, zeros);
    const fromOutput = run(0, 1, zeros);
    const output = fromOutput.converted !== 0
      ? fromOutput.value / fromOutput.converted
      : 0;
    return {
      sample: this.#precondition[i]! - output * unit.converted,
      output,
      previous: order > 1
        ? run(0, 0, zeros.map((_, q) => (q === 0 ? 1 : 0))).value
        : 0,
    };
  }

  // Clean → noisy, each stiff step (STIFF_RATIO) that reads a multistep history and the noisier
  // steps whose outputs it reads: where the history weight is large (the final step to sigma_min
  // of 25 linspace steps reads x_n ≈ 0.07·x + 2.85·m_{n−1} − 1.91·m_{n−2}), so its error and the
  // history's move together. Empty for order 1 and for 25 Karras steps (whose final step starts
  // at sigma_min), and for order 3, whose sweeps use no estimates: with the block it did worse
  // (digits, 5, linspace, 25 steps: 30.8 dB against 36.0 dB). Solving only the stiff step itself
  // did worse (digits, 5, order 2, linspace, 25 steps, 3 calls: 95.0 dB at 39.4× the plain
  // calls, unconverged; with its neighbour 117.6 dB at 18.3×).
  #cleanEndBlock(): number[] {
    const { start } = this.#s;
    const order = this.#forward.config.solver_order;
    const block = new Set<number>();
    if (order >= 3) return [];
    for (let i = this.#n - 1; i >= start; i--) {
      const a = this.#coefficients[i]!.sample;
      const stiff =
        Math.abs(this.#precondition[i]!) > STIFF_RATIO * Math.abs(a);
      if (!stiff || !this.#readsHistory(i)) continue;
      for (let o = 0; o < order && i - o >= start; o++) block.add(i - o);
    }
    return [...block].sort((p, q) => q - p);
  }

  // Whether step i reads its history (a multistep step past the warm-up and not a lower-order
  // final step): the scheduler's step of a one-element sample 0, model output 0 and history 1.
  #readsHistory(i: number): boolean {
    const f = this.#forward;
    const one = Tensor.from([1], [1]);
    this.#prime(i, [one, one]);
    const zero = Tensor.zeros([1]);
    return f.step(zero, f.timesteps[i]!, zero).prevSample
      .toFloat32Array()[0] !==
      0;
  }

  // Per item: max |F(x) − target| / max(1, max |target|); F(x) into `y`, the conversion into `m`.
  async #itemResiduals(
    i: number,
    x: Tensor,
    e: Tensor,
    history: readonly (Tensor | null)[],
    y = this.#k.empty(this.#shape),
    m = this.#k.empty(this.#shape),
    r = this.#k.empty(this.#shape),
  ): Promise<{ residuals: Float64Array; y: Tensor; m: Tensor; r: Tensor }> {
    const target = this.#x[i + 1]!;
    this.#stepInto(i, x, e, history, y, m);
    this.#k.axpbyDiv(r, 1, y, -1, target, 1);
    const residuals = new Float64Array(this.#batch);
    const [scales, sizes] = await Promise.all([
      perItem(this.#batch, (b) => this.#k.maxAbs!(target.slice(0, b, b + 1))),
      perItem(this.#batch, (b) => this.#k.maxAbs!(r.slice(0, b, b + 1))),
    ]);
    for (let b = 0; b < this.#batch; b++) {
      residuals[b] = sizes[b]! / Math.max(1, scales[b]!);
    }
    return { residuals, y, m, r };
  }

  // Solves forward step i for x[i] given x[i + 1] and `history`, from `x` (with its model output
  // `e` when known): x ← x − (F(x) − x[i + 1]) / L, Anderson-mixed per item; keeps per item the
  // iterate of least residual. Never throws on non-convergence.
  async #solve(
    i: number,
    x0: Tensor,
    e0: Tensor | null,
    history: readonly (Tensor | null)[],
    maxIterations: number,
  ): Promise<void> {
    const k = this.#k;
    const shape = this.#shape;
    const B = this.#batch;
    const { tolerance, depth, onIteration } = this.#s;
    const L = this.#precondition[i]!;
    const t = this.#forward.timesteps[i]!;
    const mixer = new AndersonMixer(k, shape, 1, depth);
    const best = {
      x: k.empty(shape),
      e: null as Tensor | null,
      m: k.empty(shape),
      residual: new Float64Array(B).fill(Infinity),
    };
    const y = k.empty(shape);
    const m = k.empty(shape);
    const r = k.empty(shape);
    const f = k.empty(shape);
    let x = k.empty(shape);
    k.copy(x, x0);
    let next = k.empty(shape);
    const active = new Uint8Array(B);
    let calls = 0;
    let e = e0;
    while (true) {
      if (e === null) {
        e = await this.#call(x, t);
        calls++;
        // What inverting each item alone would have cost: calls while it was unsolved.
        for (let b = 0; b < B; b++) {
          if (!(best.residual[b]! <= tolerance)) this.#itemCalls[b]++;
        }
      }
      if (best.e === null) best.e = k.empty(e.shape);
      const { residuals } = await this.#itemResiduals(
        i,
        x,
        e,
        history,
        y,
        m,
        r,
      );
      let worst = 0;
      for (let b = 0; b < B; b++) {
        const res = residuals[b]!;
        const old = best.residual[b]!;
        if (old === Infinity || Number.isNaN(old) || res < old) {
          best.residual[b] = res;
          k.copy(best.x.slice(0, b, b + 1), x.slice(0, b, b + 1));
          k.copy(best.e.slice(0, b, b + 1), e.slice(0, b, b + 1));
          k.copy(best.m.slice(0, b, b + 1), m.slice(0, b, b + 1));
        }
        // A residual grown tenfold past the best: Anderson's history misleads, start over.
        if (res > 10 * best.residual[b]!) mixer.restart(b);
        active[b] = res <= tolerance ? 0 : 1;
        worst = Math.max(worst, best.residual[b]!);
      }
      onIteration?.({
        sweep: this.#sweep,
        step: this.#n - 1 - i,
        iteration: calls,
        residual: Math.max(...residuals),
        modelCalls: this.#calls,
      });
      if (
        worst <= tolerance || calls >= maxIterations ||
        this.#calls >= this.#s.maxModelCalls
      ) break;
      // f = g(x) − x = −(F(x) − x[i + 1]) / L.
      k.axpbyDiv(f, -1, r, 0, null, L);
      await mixer.next([x], [f], [next], active);
      [x, next] = [next, x];
      e = null;
    }
    this.#x[i] = best.x;
    this.#e[i] = best.e;
    this.#m[i] = best.m;
  }
}
