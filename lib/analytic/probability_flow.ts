/**
 * The probability-flow ODE of an analytic model, integrated in float64 (RK4 in lambda).
 *
 * @module
 */
import type { AlphaSigma } from "../noise_schedule.ts";
import type { AnalyticModel } from "./analytic_model.ts";
import { checkLength, checkLevel } from "./_checks.ts";

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
