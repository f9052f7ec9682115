/**
 * Building blocks of inference schedules, in NumPy's float64 arithmetic as diffusers uses it:
 * NumPy's `linspace`/`arange`/`round`, the Karras, exponential and beta sigma families, and the
 * sigma → timestep interpolation.
 *
 * @module
 */
import { betaQuantile } from "./_beta_quantile.ts";
import { f32 } from "./_f32.ts";
import { numpyLogF32 } from "./_numpy_log.ts";

/** `np.round` of a float64: to the nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `np.linspace(start, stop, num)` (endpoint included), in float64. */
export function linspace(
  start: number,
  stop: number,
  num: number,
): Float64Array {
  const out = new Float64Array(num);
  const div = num - 1;
  const delta = stop - start;
  const step = delta / div;
  for (let i = 0; i < num; i++) {
    // NumPy's branches: no step for a single point, a zero step scales by delta afterwards.
    out[i] =
      (div <= 0 ? i * delta : step === 0 ? (i / div) * delta : i * step) +
      start;
  }
  if (num > 1) out[num - 1] = stop;
  return out;
}

/** `np.arange(start, stop, step)` for floats: NumPy fills `start + i·((start + step) - start)`. */
export function arange(
  start: number,
  stop: number,
  step: number,
): Float64Array {
  const length = Math.max(Math.ceil((stop - start) / step), 0);
  const out = new Float64Array(length);
  const delta = start + step - start;
  for (let i = 0; i < length; i++) {
    out[i] = i === 1 ? start + step : start + i * delta;
  }
  return out;
}

/**
 * Karras et al. (arXiv:2206.00364) sigmas, rho = 7, from `sigmaMax` to `sigmaMin` (diffusers'
 * `_convert_to_karras`, whose names the ends whatever their order).
 */
export function karrasSigmas(
  sigmaMin: number,
  sigmaMax: number,
  n: number,
): Float64Array {
  const rho = 7;
  const minInvRho = sigmaMin ** (1 / rho);
  const maxInvRho = sigmaMax ** (1 / rho);
  return linspace(0, 1, n).map((ramp) =>
    (maxInvRho + ramp * (minInvRho - maxInvRho)) ** rho
  );
}

/** Sigmas evenly spaced in log from `sigmaMax` to `sigmaMin` (diffusers' `_convert_to_exponential`). */
export function exponentialSigmas(
  sigmaMin: number,
  sigmaMax: number,
  n: number,
): Float64Array {
  return linspace(Math.log(sigmaMax), Math.log(sigmaMin), n).map(Math.exp);
}

/**
 * Beta-distribution sigmas (arXiv:2407.12173, alpha = beta = 0.6): `sigmaMin + ppf(1 − u)·(sigmaMax − sigmaMin)`
 * for u evenly spaced in [0, 1] (diffusers' `_convert_to_beta`; the quantile is stdlib's port of
 * the Boost inverse incomplete beta that SciPy uses).
 */
export function betaSigmas(
  sigmaMin: number,
  sigmaMax: number,
  n: number,
  alpha = 0.6,
  beta = 0.6,
): Float64Array {
  return linspace(0, 1, n).map((u) =>
    sigmaMin + betaQuantile(1 - u, alpha, beta) * (sigmaMax - sigmaMin)
  );
}

/**
 * Lu et al. (arXiv:2206.00927) sigmas: evenly spaced in log-sigma (so in lambda) from
 * `exp(logSigmaFrom)` to `exp(logSigmaTo)` (diffusers' `_convert_to_lu`, rho = 1).
 */
export function luSigmas(
  logSigmaFrom: number,
  logSigmaTo: number,
  n: number,
): Float64Array {
  return linspace(0, 1, n).map((ramp) =>
    Math.exp(logSigmaFrom + ramp * (logSigmaTo - logSigmaFrom))
  );
}

/**
 * Flow-matching sigmas, largest first: `1 − linspace(1, 1/trainCount, n + 1)` shifted by
 * `shift·s / (1 + (shift − 1)·s)`, flipped, the last (0) dropped (diffusers' `use_flow_sigmas`
 * branch, the same in both schedulers).
 */
export function flowSigmas(
  n: number,
  shift: number,
  trainCount: number,
): Float64Array {
  return linspace(1, 1 / trainCount, n + 1)
    .map((alpha) => 1 - alpha)
    .map((s) => (shift * s) / (1 + (shift - 1) * s))
    .reverse()
    .subarray(0, n);
}

/**
 * diffusers' `_sigma_to_t`: the fractional training timestep whose log-sigma matches `sigma`, by
 * linear interpolation in log-sigma. Follows NumPy 1.24's promotion: the float64 log-sigma meets
 * the float32 `logSigmas` in float32, so the weight `w` is float32 and `t` float64.
 *
 * @param sigma The sigma to place.
 * @param logSigmas `np.log` of the float32 training sigmas (ascending), see {@link numpyLogSigmas}.
 */
export function sigmaToT(sigma: number, logSigmas: Float32Array): number {
  const logSigma = f32(Math.log(Math.max(sigma, 1e-10)));
  const n = logSigmas.length;
  // argmax of cumsum(dists >= 0): the first index at which the count reaches its maximum.
  let count = 0;
  let best = 0;
  let lowIdx = 0;
  for (let i = 0; i < n; i++) {
    if (f32(logSigma - logSigmas[i]!) >= 0) count++;
    if (count > best) {
      best = count;
      lowIdx = i;
    }
  }
  lowIdx = Math.min(lowIdx, n - 2);
  const low = logSigmas[lowIdx]!;
  const high = logSigmas[lowIdx + 1]!;
  let w = f32(f32(low - logSigma) / f32(low - high));
  w = Math.min(Math.max(w, 0), 1);
  return f32(1 - w) * lowIdx + w * (lowIdx + 1);
}

/** `np.log` of float32 sigmas, with NumPy's float32 kernel. */
export function numpyLogSigmas(sigmas: Float32Array): Float32Array {
  return sigmas.map(numpyLogF32);
}

/** `np.interp(x, arange(n), values)` for x within or beyond [0, n - 1]. */
export function interpIndex(x: number, values: ArrayLike<number>): number {
  const last = values.length - 1;
  if (x <= 0) return values[0]!;
  if (x >= last) return values[last]!;
  const i = Math.floor(x);
  const frac = x - i;
  return frac === 0
    ? values[i]!
    : values[i]! + frac * (values[i + 1]! - values[i]!);
}

/**
 * The positions of the first occurrence of each distinct value, in order of appearance: what
 * `timesteps[np.sort(np.unique(timesteps, return_index=True)[1])]` keeps.
 */
export function firstOccurrences(values: ArrayLike<number>): number[] {
  const seen = new Set<number>();
  const kept: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (!seen.has(values[i]!)) {
      seen.add(values[i]!);
      kept.push(i);
    }
  }
  return kept;
}
