/**
 * The training noise schedule: betas → alphas_cumprod → sigmas, and the VP relations between a
 * sigma and (alpha_t, sigma_t, lambda_t), rounded to float32 where diffusers' torch tensors are.
 *
 * @module
 */
import { f32, fmaF32, logF32, sqrtF32 } from "./_f32.ts";
import type { SchedulerConfig } from "./config.ts";

/**
 * `torch.linspace(start, end, steps, dtype=torch.float32)` bit for bit as torch 1.13 computes it on
 * x86-64 (AVX2): the first half counts up from `start`, the second half down from `end`, in chunks
 * of 8 whose base is a fused multiply-add and whose lanes are `base + (j·step)`, rounded twice;
 * the tail is scalar and fused. A float64 linspace differs in the last bit for ~17% of betas.
 */
export function torchLinspaceF32(
  start: number,
  end: number,
  steps: number,
): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  const at = (idx: number) =>
    idx < halfway ? fmaF32(step, idx, s) : fmaF32(-step, steps - idx - 1, e);
  const lanes = 8;
  let idx = 0;
  // The vector loop handles pairs of 8-lane chunks; the rest falls to the scalar loop.
  for (; idx + 2 * lanes <= steps; idx += lanes) {
    const base = at(idx);
    out[idx] = base;
    out[idx + 1] = f32(base + step);
    for (let j = 2; j < lanes; j++) out[idx + j] = f32(base + f32(j * step));
  }
  for (; idx < steps; idx++) out[idx] = at(idx);
  return out;
}

// Glide's cosine schedule (diffusers' betas_for_alpha_bar), in float64 then stored as float32.
function cosineBetas(n: number, maxBeta = 0.999): Float32Array {
  const alphaBar = (t: number) => {
    const c = Math.cos(((t + 0.008) / 1.008) * Math.PI / 2);
    return c * c;
  };
  const betas = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    betas[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), maxBeta);
  }
  return betas;
}

/** The float32 betas of a config, as diffusers builds them. */
export function betasFor(
  config: Readonly<SchedulerConfig> & { rescale_betas_zero_snr?: boolean },
): Float32Array {
  const betas = configuredBetas(config);
  return config.rescale_betas_zero_snr ? rescaleZeroTerminalSnr(betas) : betas;
}

function configuredBetas(config: Readonly<SchedulerConfig>): Float32Array {
  const n = config.num_train_timesteps;
  if (config.trained_betas) return Float32Array.from(config.trained_betas);
  switch (config.beta_schedule) {
    case "linear":
      return torchLinspaceF32(config.beta_start, config.beta_end, n);
    case "scaled_linear":
      return torchLinspaceF32(
        Math.sqrt(config.beta_start),
        Math.sqrt(config.beta_end),
        n,
      )
        .map((b) => f32(b * b));
    case "squaredcos_cap_v2":
      return cosineBetas(n);
  }
}

/**
 * Rescales float32 betas to zero terminal SNR (arXiv:2305.08891, Algorithm 1), in float32 as
 * diffusers' `rescale_zero_terminal_snr`: shift `sqrt(ᾱ)` so its last value is 0, scale it back to
 * its first value, and turn it back into betas (the last beta becomes 1).
 *
 * @example
 * ```ts
 * import { rescaleZeroTerminalSnr, torchLinspaceF32 } from "./noise_schedule.ts";
 * import assert from "node:assert/strict";
 * const betas = rescaleZeroTerminalSnr(torchLinspaceF32(0.0001, 0.02, 1000));
 * assert.equal(betas[999], 1);
 * ```
 */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const root = alphasCumprodFrom(betas).map(sqrtF32);
  const first = root[0]!;
  const last = root[root.length - 1]!;
  const scale = f32(first / f32(first - last));
  const alphaBar = root.map((r) => {
    const shifted = f32(f32(r - last) * scale);
    return f32(shifted * shifted);
  });
  return alphaBar.map((a, i) =>
    f32(1 - (i === 0 ? a : f32(a / alphaBar[i - 1]!)))
  );
}

/** Float32 `cumprod(1 - betas)`, accumulated in float64 as torch's CPU `cumprod` does. */
export function alphasCumprodFrom(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let product = 1;
  for (let i = 0; i < betas.length; i++) {
    product *= f32(1 - betas[i]!);
    out[i] = product;
  }
  return out;
}

/** The training sigmas `sqrt((1 - ᾱ) / ᾱ)`, in float32 as diffusers' tensors. */
export function trainingSigmas(alphasCumprod: Float32Array): Float32Array {
  return alphasCumprod.map((a) => sigmaFromAlphaCumprod(a));
}

/** `((1 - ᾱ) / ᾱ) ** 0.5` for one float32 ᾱ. */
export function sigmaFromAlphaCumprod(alphaCumprod: number): number {
  return sqrtF32(f32(f32(1 - alphaCumprod) / alphaCumprod));
}

/** `lambda_t = log(alpha_t) - log(sigma_t)` over the training timesteps. */
export function trainingLambdas(alphasCumprod: Float32Array): Float64Array {
  return Float64Array.from(
    alphasCumprod,
    (a) => f32(logF32(sqrtF32(a)) - logF32(sqrtF32(f32(1 - a)))),
  );
}

/** (alpha_t, sigma_t) of a noise level. */
export interface AlphaSigma {
  /** Scale of the clean signal. */
  alphaT: number;
  /** Scale of the noise. */
  sigmaT: number;
}

/**
 * diffusers' `_sigma_to_alpha_sigma_t` in float32: VP `alpha_t = 1 / sqrt(sigma² + 1)`,
 * `sigma_t = sigma·alpha_t`, or for flow sigmas `alpha_t = 1 - sigma`, `sigma_t = sigma`.
 */
export function sigmaToAlphaSigma(sigma: number, flow: boolean): AlphaSigma {
  if (flow) return { alphaT: f32(1 - sigma), sigmaT: sigma };
  const alphaT = f32(1 / sqrtF32(f32(f32(sigma * sigma) + 1)));
  return { alphaT, sigmaT: f32(sigma * alphaT) };
}

/** `lambda = log(alpha_t) - log(sigma_t)` in float32, the half-log-SNR DPM-Solver steps in. */
export function lambdaOf({ alphaT, sigmaT }: AlphaSigma): number {
  return f32(logF32(alphaT) - logF32(sigmaT));
}

/**
 * Refuses a training schedule that degenerates (where diffusers runs to NaN): `alphas_cumprod`
 * reaching 0 in float32 (an infinite sigma), or `lambda_min_clipped` above every `lambda_t` (no
 * timestep left). The error names the key to change and the bound it broke.
 *
 * @throws {RangeError} Either case.
 */
export function checkNoiseSchedule(
  config: Readonly<SchedulerConfig>,
  alphasCumprod: Float32Array,
  lambdaT: Float64Array,
): void {
  const zero = alphasCumprod.indexOf(0);
  if (zero >= 0) {
    const key = config.trained_betas
      ? "trained_betas"
      : config.beta_schedule === "squaredcos_cap_v2"
      ? "beta_schedule"
      : "beta_end";
    const value = key === "trained_betas"
      ? `an array of length ${config.trained_betas!.length}`
      : key === "beta_schedule"
      ? `"${config.beta_schedule}"`
      : String(config.beta_end);
    throw new RangeError(
      `Cannot configure the scheduler as 'alphas_cumprod' must stay above 0 (float32) over the ${config.num_train_timesteps} training timesteps, and '${key}' makes it underflow to 0 from timestep ${zero} (an infinite sigma): current value is ${value}`,
    );
  }
  const clip = config.lambda_min_clipped;
  // lambda_t falls with t, so clipping leaves timestep 0 exactly when lambda_t[0] >= clip.
  if (!(lambdaT[0]! >= clip)) {
    throw new RangeError(
      `Cannot configure the scheduler as 'lambda_min_clipped' must be at most lambda_t at timestep 0 (${
        lambdaT[0]
      }), or it clips every timestep: current value is ${clip}`,
    );
  }
}
