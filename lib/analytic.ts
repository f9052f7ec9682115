/**
 * Analytic diffusion models: data distributions whose ideal denoiser and probability-flow ODE are
 * known exactly, so a scheduler's true error (not its parity with another implementation) can be
 * measured. With the VP forward process `x_t = alpha_t·x0 + sigma_t·eps`:
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
 * @module
 */
import type { MultistepScheduler } from "./multistep_scheduler.ts";
import type { AlphaSigma } from "./noise_schedule.ts";
import type { TorchGenerator } from "./random.ts";
import { Tensor } from "./tensor.ts";
import { formatShape } from "./_shape.ts";
import { isFlowSchedule } from "./_sigma_families.ts";

/** The prediction types an analytic model can output (VP parametrisations; no flow matching). */
export type AnalyticPredictionType = "epsilon" | "sample" | "v_prediction";

/** Posterior means at one noise level, in float64, laid out as the input. */
export interface PosteriorMeans {
  /** `E[x0 | x_t = x]`, the ideal `sample` prediction. */
  x0: Float64Array;
  /** `E[eps | x_t = x]`, the ideal `epsilon` prediction. */
  epsilon: Float64Array;
}

/**
 * A data distribution with an exact denoiser. Values are processed in groups of `dim`
 * consecutive elements (the last axis of a row-major tensor); `dim` is 1 for element-wise models.
 */
export interface AnalyticModel {
  /** How many consecutive values form one data point (1: every element on its own). */
  readonly dim: number;
  /**
   * The posterior means of `x0` and `eps` given `x_t = x` at noise level `level`.
   *
   * @param x Values at that noise level; the length must be a multiple of `dim`.
   * @param level `(alpha_t, sigma_t)`, with `alpha_t > 0`.
   */
  posteriorMeans(x: ArrayLike<number>, level: AlphaSigma): PosteriorMeans;
  /**
   * The probability-flow ODE's solution at noise level `to` from `x` at noise level `from`, in
   * float64 (the direction does not matter: `from` may be the noisier level).
   */
  odeMap(x: ArrayLike<number>, from: AlphaSigma, to: AlphaSigma): Float64Array;
}

/** Parameters of {@link GaussianData}. */
export interface GaussianDataOptions {
  /** Mean `mu` of every element. */
  mean: number;
  /** Standard deviation `s > 0` of every element. */
  std: number;
}

/**
 * Gaussian data `x0 ~ N(mu, s²·I)`: every element independent with mean `mu` and standard
 * deviation `s`. At noise level `(alpha_t, sigma_t)`, with `v = alpha_t²·s² + sigma_t²` and
 * `r = (x − alpha_t·mu) / v`: `E[eps | x] = sigma_t·r` and `E[x0 | x] = mu + alpha_t·s²·r`.
 *
 * @example Exact predictions and the exact ODE map
 * ```ts
 * import { GaussianData } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 *
 * const data = new GaussianData({ mean: 0.5, std: 0.3 });
 * const level = { alphaT: 0.8, sigmaT: 0.6 };
 * const { x0, epsilon } = data.posteriorMeans([1], level);
 * // x = alpha_t·E[x0|x] + sigma_t·E[eps|x] holds exactly
 * assert.ok(Math.abs(0.8 * x0[0]! + 0.6 * epsilon[0]! - 1) < 1e-15);
 * // the ODE keeps the standardised value: the mean maps to the mean
 * const [y] = data.odeMap([0.8 * 0.5], level, { alphaT: 0.6, sigmaT: 0.8 });
 * assert.ok(Math.abs(y! - 0.6 * 0.5) < 1e-15);
 * ```
 */
export class GaussianData implements AnalyticModel {
  /** Mean of every element. */
  readonly mean: number;
  /** Standard deviation of every element. */
  readonly std: number;
  /** 1: every element on its own. */
  readonly dim = 1;

  /**
   * Gaussian data `N(mean, std²)` per element.
   *
   * @throws {RangeError} A non-finite mean, or a standard deviation that is not positive.
   */
  constructor({ mean, std }: GaussianDataOptions) {
    if (!Number.isFinite(mean)) {
      throw new RangeError(
        `Cannot create GaussianData as 'mean' must be finite: current value is ${mean}`,
      );
    }
    if (!(std > 0 && Number.isFinite(std))) {
      throw new RangeError(
        `Cannot create GaussianData as 'std' must be positive and finite: current value is ${std}`,
      );
    }
    this.mean = mean;
    this.std = std;
  }

  /** Standard deviation of `x_t` at `level`: `sqrt(alpha_t²·s² + sigma_t²)`. */
  marginalStd({ alphaT, sigmaT }: AlphaSigma): number {
    return Math.hypot(alphaT * this.std, sigmaT);
  }

  posteriorMeans(x: ArrayLike<number>, level: AlphaSigma): PosteriorMeans {
    checkLevel(level, "compute posterior means");
    const { alphaT, sigmaT } = level;
    const v = alphaT * alphaT * this.std * this.std + sigmaT * sigmaT;
    const x0 = new Float64Array(x.length);
    const epsilon = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const r = (x[i]! - alphaT * this.mean) / v;
      x0[i] = this.mean + alphaT * this.std * this.std * r;
      epsilon[i] = sigmaT * r;
    }
    return { x0, epsilon };
  }

  /**
   * Draws `mean + std·z` with `z = generator.randn(shape)`. Allocates the result.
   *
   * @example
   * ```ts
   * import { TorchGenerator } from "@dpmsolver/scheduler";
   * import { GaussianData } from "@dpmsolver/scheduler/analytic";
   * import assert from "node:assert/strict";
   * const x = new GaussianData({ mean: 2, std: 1e-3 }).sample([3], new TorchGenerator(0));
   * assert.ok(x.toFloat32Array().every((v) => Math.abs(v - 2) < 0.01));
   * ```
   */
  sample(shape: readonly number[], generator: TorchGenerator): Tensor {
    const z = generator.randn(shape);
    z.data.forEach((v, i) => (z.data[i] = this.mean + this.std * v));
    return z;
  }

  /** The closed form: `alpha_to·mu + std_to·(x − alpha_from·mu) / std_from`. */
  odeMap(x: ArrayLike<number>, from: AlphaSigma, to: AlphaSigma): Float64Array {
    checkLevel(from, "map along the ODE");
    checkLevel(to, "map along the ODE");
    const scale = this.marginalStd(to) / this.marginalStd(from);
    return Float64Array.from(
      x,
      (v) => to.alphaT * this.mean + scale * (v - from.alphaT * this.mean),
    );
  }
}

/** Parameters of {@link GaussianMixture}. */
export interface GaussianMixtureOptions {
  /** Component weights (positive; normalised to sum to 1). */
  weights: readonly number[];
  /**
   * Component means: numbers for a 1-D mixture applied to every element, or `d`-vectors for
   * isotropic components in `d` dimensions (the last tensor axis).
   */
  means: readonly number[] | readonly (readonly number[])[];
  /** Component variances `s_k²` (positive), the same in every dimension of a component. */
  variances: readonly number[];
  /** RK4 steps of {@link GaussianMixture.odeMap}. @default {1000} */
  odeSteps?: number;
}

/**
 * A mixture of isotropic Gaussians `x0 ~ Σ_k w_k·N(m_k, s_k²·I_d)`. At noise level
 * `(alpha_t, sigma_t)` component k's marginal is `N(alpha_t·m_k, v_k·I_d)` with
 * `v_k = alpha_t²·s_k² + sigma_t²`; with the posterior component probabilities
 * `p_k ∝ w_k·N(x; alpha_t·m_k, v_k·I)` and `r_k = (x − alpha_t·m_k) / v_k`,
 * `E[eps | x] = sigma_t·Σ p_k·r_k` and `E[x0 | x] = Σ p_k·(m_k + alpha_t·s_k²·r_k)`. The ODE map
 * has no closed form: {@link integrateProbabilityFlow} computes it.
 *
 * @example A two-component 2-D mixture
 * ```ts
 * import { GaussianMixture } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 *
 * const mixture = new GaussianMixture({ weights: [1, 1], means: [[-1, 0], [1, 0]], variances: [0.01, 0.01] });
 * assert.equal(mixture.dim, 2);
 * // halfway between the components, the posterior mean is halfway too
 * const { x0 } = mixture.posteriorMeans([0, 0.1], { alphaT: 0.9, sigmaT: Math.sqrt(0.19) });
 * assert.ok(Math.abs(x0[0]!) < 1e-15);
 * ```
 */
export class GaussianMixture implements AnalyticModel {
  /** Normalised component weights. */
  readonly weights: Float64Array;
  /** Component means, `dim` values per component. */
  readonly means: Float64Array;
  /** Component variances. */
  readonly variances: Float64Array;
  /** Dimension of one data point. */
  readonly dim: number;
  /** RK4 steps of {@link GaussianMixture.odeMap}. */
  readonly odeSteps: number;

  /**
   * A mixture of isotropic Gaussian components with the given weights, means and variances.
   *
   * @throws {RangeError} Empty or mismatched lists, non-positive weights or variances, means of
   *   unequal lengths, or a bad `odeSteps`.
   */
  constructor(options: GaussianMixtureOptions) {
    const { weights, means, variances, odeSteps = 1000 } = options;
    const k = weights.length;
    const fail = (why: string): never => {
      throw new RangeError(`Cannot create a GaussianMixture as ${why}`);
    };
    if (k === 0) fail("'weights' must not be empty: current length is 0");
    if (means.length !== k || variances.length !== k) {
      fail(
        `'weights', 'means' and 'variances' must have one entry per component: current lengths are ${k}, ${means.length} and ${variances.length}`,
      );
    }
    if (!weights.every((w) => w > 0 && Number.isFinite(w))) {
      fail(
        `'weights' must be positive and finite: current value is [${
          weights.join(", ")
        }]`,
      );
    }
    if (!variances.every((v) => v > 0 && Number.isFinite(v))) {
      fail(
        `'variances' must be positive and finite: current value is [${
          variances.join(", ")
        }]`,
      );
    }
    const rows = means.map((m) => (typeof m === "number" ? [m] : [...m]));
    const dim = rows[0]!.length;
    if (dim === 0 || rows.some((r) => r.length !== dim)) {
      fail(
        `'means' must all have the same positive length: current lengths are [${
          rows.map((r) => r.length).join(", ")
        }]`,
      );
    }
    if (!rows.flat().every(Number.isFinite)) {
      fail("'means' must be finite");
    }
    if (!Number.isInteger(odeSteps) || odeSteps < 1) {
      fail(
        `'odeSteps' must be a positive integer: current value is ${odeSteps}`,
      );
    }
    const total = weights.reduce((a, b) => a + b, 0);
    this.weights = Float64Array.from(weights, (w) => w / total);
    this.means = Float64Array.from(rows.flat());
    this.variances = Float64Array.from(variances);
    this.dim = dim;
    this.odeSteps = odeSteps;
  }

  posteriorMeans(x: ArrayLike<number>, level: AlphaSigma): PosteriorMeans {
    checkLevel(level, "compute posterior means");
    const { dim } = this;
    checkLength(x.length, dim);
    const { alphaT, sigmaT } = level;
    const k = this.weights.length;
    const v = this.variances.map((s2) =>
      alphaT * alphaT * s2 + sigmaT * sigmaT
    );
    const logNorm = v.map((vk, j) =>
      Math.log(this.weights[j]!) - 0.5 * dim * Math.log(vk)
    );
    const logP = new Float64Array(k);
    const x0 = new Float64Array(x.length);
    const epsilon = new Float64Array(x.length);
    for (let p = 0; p < x.length; p += dim) {
      let max = -Infinity;
      for (let j = 0; j < k; j++) {
        let d2 = 0;
        for (let i = 0; i < dim; i++) {
          const d = x[p + i]! - alphaT * this.means[j * dim + i]!;
          d2 += d * d;
        }
        logP[j] = logNorm[j]! - d2 / (2 * v[j]!);
        if (logP[j]! > max) max = logP[j]!;
      }
      let total = 0;
      for (let j = 0; j < k; j++) total += logP[j] = Math.exp(logP[j]! - max);
      for (let j = 0; j < k; j++) {
        const pj = logP[j]! / total;
        const vj = v[j]!;
        const s2 = this.variances[j]!;
        for (let i = 0; i < dim; i++) {
          const m = this.means[j * dim + i]!;
          const r = (x[p + i]! - alphaT * m) / vj;
          epsilon[p + i] += pj * sigmaT * r;
          x0[p + i] += pj * (m + alphaT * s2 * r);
        }
      }
    }
    return { x0, epsilon };
  }

  /** The ODE map by {@link integrateProbabilityFlow} with `odeSteps` RK4 steps in lambda. */
  odeMap(x: ArrayLike<number>, from: AlphaSigma, to: AlphaSigma): Float64Array {
    return integrateProbabilityFlow(this, x, from, to, {
      steps: this.odeSteps,
    });
  }

  /**
   * Draws samples of `shape` (its last axis must be `dim`): one `randn(shape)` from `generator`,
   * then one `nextUint32()` per data point to pick its component. Allocates the result.
   *
   * @throws {TypeError} A shape whose last axis is not `dim`.
   *
   * @example
   * ```ts
   * import { TorchGenerator } from "@dpmsolver/scheduler";
   * import { GaussianMixture } from "@dpmsolver/scheduler/analytic";
   * import assert from "node:assert/strict";
   * const mixture = new GaussianMixture({ weights: [1], means: [3], variances: [1e-6] });
   * const x = mixture.sample([2, 4], new TorchGenerator(0));
   * assert.ok(x.toFloat32Array().every((v) => Math.abs(v - 3) < 0.01));
   * ```
   */
  sample(shape: readonly number[], generator: TorchGenerator): Tensor {
    if (this.dim !== 1 && shape.at(-1) !== this.dim) {
      throw new TypeError(
        `Cannot sample the mixture as the last axis of 'shape' must be ${this.dim}: current value is ${
          formatShape(shape)
        }`,
      );
    }
    const z = generator.randn(shape);
    const data = z.data;
    const k = this.weights.length;
    for (let p = 0; p < data.length; p += this.dim) {
      const u = generator.nextUint32() / 4294967296;
      let j = 0;
      for (let acc = this.weights[0]!; j < k - 1 && u >= acc;) {
        acc += this.weights[++j]!;
      }
      const s = Math.sqrt(this.variances[j]!);
      for (let i = 0; i < this.dim; i++) {
        data[p + i] = this.means[j * this.dim + i]! + s * data[p + i]!;
      }
    }
    return z;
  }
}

/** Options of {@link integrateProbabilityFlow}. */
export interface ProbabilityFlowOptions {
  /** Number of RK4 steps. @default {1000} */
  steps?: number;
}

/**
 * Integrates the probability-flow ODE of `model` from `x` at noise level `from` to noise level
 * `to` in float64 with classic RK4. With `y = x / alpha_t` and `nu = sigma_t / alpha_t = e^(−lambda)`
 * the ODE reads `dy/dnu = E[eps | x_t]` (arXiv:2206.00927, eq. 3.4), and the posterior depends on
 * `(y, nu)` only, so the map holds for any noise schedule. Steps are uniform in `lambda` (uniform in
 * `nu` on a short first stretch when an end is noise-free, `sigma_t = 0`).
 *
 * @throws {RangeError} A level with `alpha_t <= 0`, or `steps` not a positive integer.
 *
 * @example Against the closed form of Gaussian data
 * ```ts
 * import { GaussianData, integrateProbabilityFlow } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 *
 * const data = new GaussianData({ mean: 0.5, std: 0.3 });
 * const from = { alphaT: 0.99995, sigmaT: 0.01 };
 * const to = { alphaT: 0.0064, sigmaT: Math.sqrt(1 - 0.0064 ** 2) };
 * const numeric = integrateProbabilityFlow(data, [0.2, 0.9], from, to, { steps: 2000 });
 * const exact = data.odeMap([0.2, 0.9], from, to);
 * numeric.forEach((v, i) => assert.ok(Math.abs(v - exact[i]!) < 1e-9));
 * ```
 */
export function integrateProbabilityFlow(
  model: AnalyticModel,
  x: ArrayLike<number>,
  from: AlphaSigma,
  to: AlphaSigma,
  options: ProbabilityFlowOptions = {},
): Float64Array {
  const { steps = 1000 } = options;
  checkLevel(from, "integrate the probability-flow ODE");
  checkLevel(to, "integrate the probability-flow ODE");
  if (!Number.isInteger(steps) || steps < 1) {
    throw new RangeError(
      `Cannot integrate the probability-flow ODE as 'steps' must be a positive integer: current value is ${steps}`,
    );
  }
  checkLength(x.length, model.dim);
  const nuFrom = from.sigmaT / from.alphaT;
  const nuTo = to.sigmaT / to.alphaT;
  const y = Float64Array.from(x, (v) => v / from.alphaT);
  if (nuFrom === nuTo) return Float64Array.from(y, (v) => v * to.alphaT);
  // dy/dnu = eps(y, nu), evaluated at the VP level with that ratio.
  const slope = (yy: Float64Array, nu: number): Float64Array => {
    const alphaT = 1 / Math.hypot(1, nu);
    const xx = yy.map((v) => v * alphaT);
    return model.posteriorMeans(xx, { alphaT, sigmaT: nu * alphaT }).epsilon;
  };
  // A noise-free end (nu = 0) has lambda = ∞: integrate in nu up to a small nu first.
  const lo = Math.min(nuFrom, nuTo);
  const hi = Math.max(nuFrom, nuTo);
  const bridge = lo === 0 ? Math.min(hi, 1e-2) : lo;
  const linearSteps = lo === 0 ? Math.max(1, Math.round(steps / 10)) : 0;
  const logSteps = bridge === hi ? 0 : steps;
  // Segments in the direction of travel: [kind, start, end, steps].
  const segments: ["nu" | "log", number, number, number][] = [];
  if (linearSteps > 0) segments.push(["nu", 0, bridge, linearSteps]);
  if (logSteps > 0) {
    segments.push(["log", Math.log(bridge), Math.log(hi), logSteps]);
  }
  if (nuFrom > nuTo) {
    segments.reverse();
    for (const s of segments) [s[1], s[2]] = [s[2], s[1]];
  }
  const tmp = new Float64Array(y.length);
  const sum = new Float64Array(y.length);
  // In u = log(nu): dy/du = nu·eps(y, nu); a noise-free stretch steps in nu itself.
  for (const [kind, start, end, n] of segments) {
    const f = (yy: Float64Array, u: number): Float64Array => {
      const nu = kind === "nu" ? Math.max(0, u) : Math.exp(u);
      const eps = slope(yy, nu);
      if (kind === "log") { for (let j = 0; j < eps.length; j++) eps[j] *= nu; }
      return eps;
    };
    const h = (end - start) / n;
    // Classic RK4: y += h/6·(k1 + 2·k2 + 2·k3 + k4).
    const stage = (k: Float64Array, c: number, w: number) => {
      for (let j = 0; j < y.length; j++) {
        tmp[j] = y[j]! + c * h * k[j]!;
        sum[j] += w * k[j]!;
      }
      return tmp;
    };
    for (let i = 0; i < n; i++) {
      const u = start + i * h;
      sum.fill(0);
      const k1 = f(y, u);
      const k2 = f(stage(k1, 0.5, 1), u + 0.5 * h);
      const k3 = f(stage(k2, 0.5, 2), u + 0.5 * h);
      const k4 = f(stage(k3, 1, 2), u + h);
      for (let j = 0; j < y.length; j++) {
        y[j] += (h / 6) * (sum[j]! + k4[j]!);
      }
    }
  }
  return y.map((v) => v * to.alphaT);
}

/**
 * The model output a perfect model of `model`'s data gives for `sample` at `level`, as a float32
 * tensor: `epsilon` is `E[eps | x]`, `sample` is `E[x0 | x]` and `v_prediction` is
 * `alpha_t·E[eps | x] − sigma_t·E[x0 | x]`. Allocates the result.
 *
 * @throws {RangeError} A prediction type other than these three.
 * @throws {TypeError} A sample whose last axis is not the model's `dim`.
 *
 * @example
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { analyticPrediction, GaussianData } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 *
 * const data = new GaussianData({ mean: 0, std: 1 });
 * const level = { alphaT: 0.6, sigmaT: 0.8 };
 * // unit-variance data: x_t ~ N(0, 1) and E[eps | x] = sigma_t·x
 * const eps = analyticPrediction(data, Tensor.from([1, 2]), level, "epsilon");
 * assert.deepEqual(Array.from(eps.toFloat32Array()), [Math.fround(0.8), Math.fround(1.6)]);
 * ```
 */
export function analyticPrediction(
  model: AnalyticModel,
  sample: Tensor,
  level: AlphaSigma,
  predictionType: AnalyticPredictionType,
): Tensor {
  checkPredictionType(predictionType);
  if (model.dim !== 1 && sample.shape.at(-1) !== model.dim) {
    throw new TypeError(
      `Cannot run the analytic model as the sample's last axis must be ${model.dim}: current shape is ${
        formatShape(sample.shape)
      }`,
    );
  }
  const { x0, epsilon } = model.posteriorMeans(sample.toFloat32Array(), level);
  const out = predictionType === "epsilon"
    ? epsilon
    : predictionType === "sample"
    ? x0
    : epsilon.map((e, i) => level.alphaT * e - level.sigmaT * x0[i]!);
  return new Tensor(Float32Array.from(out), sample.shape);
}

/** Options of {@link schedulerModel}. */
export interface SchedulerModelOptions {
  /**
   * Where the noise level of a call at timestep `t` comes from: `"alphas_cumprod"` uses the
   * training schedule, `alpha_t = sqrt(ᾱ_t)`, `sigma_t = sqrt(1 − ᾱ_t)`, as a network conditioned
   * on the integer timestep would; `"schedule"` uses the scheduler's own sigma for the step it is
   * about to take, which differs from the former where a sigma family (Karras, exponential, beta)
   * places sigmas between integer timesteps. Measuring a solver's error needs `"schedule"`: with
   * `"alphas_cumprod"` and Karras sigmas the model and the solver disagree about the noise level
   * by up to half a timestep, an error that does not shrink with more steps.
   * @default {"alphas_cumprod"}
   */
  noiseLevel?: "alphas_cumprod" | "schedule";
  /** The output's prediction type. @default {the scheduler's `prediction_type`} */
  predictionType?: AnalyticPredictionType;
}

/**
 * A model function for a scheduler loop: `(sample, t) => modelOutput` with a perfect model of
 * `model`'s data, at the noise level of timestep `t` (see {@link SchedulerModelOptions}), in the
 * scheduler's `prediction_type`. Works with any schedule of VP sigmas.
 *
 * @throws {RangeError} A flow-matching scheduler (`prediction_type` "flow_prediction" or
 *   `use_flow_sigmas`), when the function is made.
 *
 * @example Invert Gaussian data and compare with the exact ODE map
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, Tensor } from "@dpmsolver/scheduler";
 * import { GaussianData, schedulerModel } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 *
 * const data = new GaussianData({ mean: 0.5, std: 0.3 });
 * const scheduler = new DPMSolverMultistepInverseScheduler({ solver_order: 3, use_karras_sigmas: true });
 * scheduler.setTimesteps(50);
 * const model = schedulerModel(data, scheduler);
 * const x0 = Tensor.from([0.2, 0.5, 0.9]);
 * let x = x0;
 * for (const t of scheduler.timesteps) x = scheduler.step(model(x, t), t, x).prevSample;
 * const exact = data.odeMap(x0.toFloat32Array(), scheduler.alphaSigmaAt(0), scheduler.alphaSigmaAt(50));
 * // the solver's error, about 1e-2 here: third order, but 50 Karras steps over 9.7 nats of lambda
 * x.toFloat32Array().forEach((v, i) => assert.ok(Math.abs(v - exact[i]!) < 2e-2));
 * ```
 */
export function schedulerModel(
  model: AnalyticModel,
  scheduler: MultistepScheduler,
  options: SchedulerModelOptions = {},
): (sample: Tensor, timestep: number) => Tensor {
  const { noiseLevel = "alphas_cumprod" } = options;
  const config = scheduler.config;
  const predictionType = options.predictionType ?? config.prediction_type;
  if (isFlowSchedule(config)) {
    throw new RangeError(
      `Cannot make an analytic model for the scheduler as 'use_flow_sigmas' is not a VP schedule: current value is true`,
    );
  }
  checkPredictionType(predictionType);
  if (noiseLevel !== "alphas_cumprod" && noiseLevel !== "schedule") {
    throw new RangeError(
      `Cannot make an analytic model as 'noiseLevel' must be "alphas_cumprod" or "schedule": current value is ${noiseLevel}`,
    );
  }
  return (sample, timestep) => {
    const level = noiseLevel === "schedule"
      ? scheduleLevel(scheduler, timestep)
      : alphaSigmaOfTimestep(scheduler.alphasCumprod, timestep);
    return analyticPrediction(
      model,
      sample,
      level,
      predictionType as AnalyticPredictionType,
    );
  };
}

/**
 * The noise level of an integer training timestep: `alpha_t = sqrt(ᾱ_t)`,
 * `sigma_t = sqrt(1 − ᾱ_t)` (float64 from the float32 `alphas_cumprod`).
 *
 * @throws {RangeError} A timestep that is not an index of `alphasCumprod`.
 *
 * @example
 * ```ts
 * import { DPMSolverMultistepInverseScheduler } from "@dpmsolver/scheduler";
 * import { alphaSigmaOfTimestep } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 * const { alphasCumprod } = new DPMSolverMultistepInverseScheduler();
 * const { alphaT, sigmaT } = alphaSigmaOfTimestep(alphasCumprod, 0);
 * assert.ok(Math.abs(sigmaT - 0.01) < 1e-6); // beta_0 = 1e-4
 * assert.ok(Math.abs(alphaT ** 2 + sigmaT ** 2 - 1) < 1e-15);
 * ```
 */
export function alphaSigmaOfTimestep(
  alphasCumprod: ArrayLike<number>,
  timestep: number,
): AlphaSigma {
  if (
    !Number.isInteger(timestep) || timestep < 0 ||
    timestep >= alphasCumprod.length
  ) {
    throw new RangeError(
      `Cannot look up the noise level as 'timestep' must be an integer in [0, ${
        alphasCumprod.length - 1
      }]: current value is ${timestep}`,
    );
  }
  const a = alphasCumprod[timestep]!;
  return { alphaT: Math.sqrt(a), sigmaT: Math.sqrt(1 - a) };
}

/**
 * The least-squares slope of `−log(error)` against `log(steps)`: the measured order of
 * convergence (1 when the error halves as the steps double).
 *
 * @throws {RangeError} Fewer than two points, lists of unequal length, or a non-positive value.
 *
 * @example
 * ```ts
 * import { convergenceOrder } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 * const steps = [10, 20, 40];
 * assert.ok(Math.abs(convergenceOrder(steps, steps.map((n) => 3 / n ** 2)) - 2) < 1e-12);
 * ```
 */
export function convergenceOrder(
  steps: readonly number[],
  errors: readonly number[],
): number {
  if (steps.length < 2 || steps.length !== errors.length) {
    throw new RangeError(
      `Cannot fit a convergence order as 'steps' and 'errors' must have the same length of at least 2: current lengths are ${steps.length} and ${errors.length}`,
    );
  }
  if (![...steps, ...errors].every((v) => v > 0 && Number.isFinite(v))) {
    throw new RangeError(
      `Cannot fit a convergence order as 'steps' and 'errors' must be positive and finite: current errors are [${
        errors.join(", ")
      }]`,
    );
  }
  const xs = steps.map(Math.log);
  const ys = errors.map((e) => -Math.log(e));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  xs.forEach((x, i) => {
    sxy += (x - mx) * (ys[i]! - my);
    sxx += (x - mx) ** 2;
  });
  return sxy / sxx;
}

// The scheduler's sigma for the step about to be taken at `timestep`; a timestep that is not the
// current step's takes its first position in the schedule, one not in it its alphas_cumprod.
function scheduleLevel(
  scheduler: MultistepScheduler,
  timestep: number,
): AlphaSigma {
  const current = scheduler.stepIndex;
  const index = current !== null && scheduler.timesteps[current] === timestep
    ? current
    : scheduler.timesteps.indexOf(timestep);
  return index < 0
    ? alphaSigmaOfTimestep(scheduler.alphasCumprod, timestep)
    : scheduler.alphaSigmaAt(index);
}

function checkPredictionType(type: string): void {
  if (type !== "epsilon" && type !== "sample" && type !== "v_prediction") {
    throw new RangeError(
      `Cannot run the analytic model as 'prediction_type' must be "epsilon", "sample" or "v_prediction": current value is "${type}"`,
    );
  }
}

function checkLevel({ alphaT, sigmaT }: AlphaSigma, operation: string): void {
  if (
    !(alphaT > 0 && Number.isFinite(alphaT) && sigmaT >= 0 &&
      Number.isFinite(sigmaT))
  ) {
    throw new RangeError(
      `Cannot ${operation} as the noise level needs alpha_t > 0 and sigma_t >= 0: current values are ${alphaT} and ${sigmaT}`,
    );
  }
}

function checkLength(length: number, dim: number): void {
  if (length % dim !== 0) {
    throw new TypeError(
      `Cannot run the analytic model as the number of values must be a multiple of its dimension ${dim}: current value is ${length}`,
    );
  }
}

/** Names of the {@link builtinAnalyticModel} models. */
export type BuiltinAnalyticModelName = "gaussian" | "mixture" | "mixture2d";

/** The names {@link builtinAnalyticModel} accepts. */
export const BUILTIN_ANALYTIC_MODELS: readonly BuiltinAnalyticModelName[] =
  Object.freeze(["gaussian", "mixture", "mixture2d"]);

/**
 * The analytic models the CLI, the notebook and the tests share:
 *
 * - `"gaussian"`: {@link GaussianData} with mean 0.5 and standard deviation 0.3, per element;
 * - `"mixture"`: a three-component 1-D {@link GaussianMixture} applied per element, weights
 *   0.3 / 0.5 / 0.2, means −1 / 0.25 / 1.5, standard deviations 0.2 / 0.3 / 0.15;
 * - `"mixture2d"`: a three-component isotropic 2-D mixture over the last axis (size 2), weights
 *   0.45 / 0.35 / 0.2, means (−1.2, −0.4) / (0.9, 0.8) / (0.6, −1.1), standard deviations
 *   0.2 / 0.3 / 0.15.
 *
 * @throws {RangeError} Another name.
 *
 * @example
 * ```ts
 * import { builtinAnalyticModel, GaussianMixture } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 * const mixture = builtinAnalyticModel("mixture2d") as GaussianMixture;
 * assert.equal(mixture.dim, 2);
 * assert.equal(mixture.weights.length, 3);
 * ```
 */
export function builtinAnalyticModel(
  name: BuiltinAnalyticModelName,
): GaussianData | GaussianMixture {
  switch (name) {
    case "gaussian":
      return new GaussianData({ mean: 0.5, std: 0.3 });
    case "mixture":
      return new GaussianMixture({
        weights: [0.3, 0.5, 0.2],
        means: [-1, 0.25, 1.5],
        variances: [0.2 ** 2, 0.3 ** 2, 0.15 ** 2],
      });
    case "mixture2d":
      return new GaussianMixture({
        weights: [0.45, 0.35, 0.2],
        means: [[-1.2, -0.4], [0.9, 0.8], [0.6, -1.1]],
        variances: [0.2 ** 2, 0.3 ** 2, 0.15 ** 2],
      });
    default:
      throw new RangeError(
        `Cannot make a built-in analytic model as the name must be one of ${
          BUILTIN_ANALYTIC_MODELS.map((n) => `"${n}"`).join(", ")
        }: current value is "${name}"`,
      );
  }
}
