// Loading diffusers' reference cases (reference/manifest.json, reference/inverse/<case>/) and the
// stand-in model that produced them.
import { f32 } from "../lib/_f32.ts";
import { parseConfigJson } from "../lib/_config_file.ts";
import { readNpy, readNpyTensor } from "../lib/npy.ts";
import { Tensor } from "../lib/tensor.ts";
import {
  DPMSolverMultistepInverseScheduler,
  DPMSolverMultistepScheduler,
} from "../mod.ts";

export const REFERENCE_DIR = new URL("../reference/", import.meta.url);

/** Each step fed diffusers' own inputs: within this × max(1, max|reference|). */
export const STEP_TOLERANCE = 1e-5;
/** A whole loop on our own samples: within this × max(1, max|reference|). */
export const LOOP_TOLERANCE = 1e-4;
/** Sigmas: within this, relative. */
export const SIGMA_TOLERANCE = 1e-6;

/** One case of reference/manifest.json. */
export interface ReferenceCase {
  name: string;
  kind: "steps" | "add_noise";
  config: Record<string, unknown>;
  from_config: Record<string, unknown> | null;
  num_inference_steps: number;
  sample_shape: number[];
  model_output_shape: number[] | null;
  x0_scale: number;
  learned_variance: boolean;
  aligned_sigmas: boolean;
  identity_steps: number[];
  overrun: boolean;
  steps: number;
}

export interface Manifest {
  versions: Record<string, string>;
  cases: Record<string, Omit<ReferenceCase, "name">>;
}

export const manifest: Manifest = JSON.parse(
  await Deno.readTextFile(new URL("manifest.json", REFERENCE_DIR)),
);

export const cases: ReferenceCase[] = Object.entries(manifest.cases)
  .map(([name, c]) => ({ name, ...c }))
  .sort((a, b) => a.name.localeCompare(b.name));

export function caseFile(c: ReferenceCase, file: string): URL {
  return new URL(`inverse/${c.name}/${file}`, REFERENCE_DIR);
}

/** The case's scheduler_config.json as diffusers saved it. */
export async function savedConfig(
  c: ReferenceCase,
): Promise<Record<string, unknown>> {
  const file = caseFile(c, "scheduler_config.json");
  return parseConfigJson(await Deno.readTextFile(file), file.pathname);
}

export async function int32(
  c: ReferenceCase,
  file: string,
): Promise<Int32Array> {
  const array = await readNpy(caseFile(c, file));
  if (array.dtype !== "<i4") throw new TypeError(`${file} is not int32`);
  return array.data;
}

export function float32(c: ReferenceCase, file: string): Promise<Tensor> {
  return readNpyTensor(caseFile(c, file));
}

/** The case's scheduler, loaded from its saved config, with its timesteps set. */
export async function schedulerFor(
  c: ReferenceCase,
): Promise<DPMSolverMultistepInverseScheduler> {
  const scheduler = DPMSolverMultistepInverseScheduler.fromConfig(
    await savedConfig(c),
  );
  scheduler.setTimesteps(c.num_inference_steps);
  return scheduler;
}

/** Row `i` of a stacked tensor, as a tensor of the remaining dimensions (a view). */
export function row(stack: Tensor, i: number): Tensor {
  return stack.slice(0, i, i + 1).reshape(stack.shape.slice(1));
}

/**
 * The deterministic stand-in model of reference/generate.py:
 * `eps = (0.8 − 0.3 s)·tanh(x) + (0.2 + 0.1 s)·x` with `s = t / 1000`, and for a learned variance
 * `0.1·x` appended along the channels.
 */
export function standinModel(
  x: Tensor,
  t: number,
  learnedVariance: boolean,
): Tensor {
  const s = t / 1000;
  const c1 = f32(0.8 - 0.3 * s);
  const c2 = f32(0.2 + 0.1 * s);
  const values = x.toFloat32Array();
  const eps = values.map((v) => f32(c1 * f32(Math.tanh(v))) + f32(c2 * v));
  if (!learnedVariance) return new Tensor(eps, x.shape);
  const [batch, channels, ...rest] = x.shape as number[];
  const perItem = values.length / batch!;
  const out = new Float32Array(values.length * 2);
  for (let b = 0; b < batch!; b++) {
    out.set(eps.subarray(b * perItem, (b + 1) * perItem), 2 * b * perItem);
    out.set(
      values.subarray(b * perItem, (b + 1) * perItem).map((v) => f32(0.1 * v)),
      (2 * b + 1) * perItem,
    );
  }
  return new Tensor(out, [batch!, 2 * channels!, ...rest]);
}

/** max |a − b| over two same-shape tensors (NaN if either holds NaN where the other does not). */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i]! - y[i]!);
    if (!(d <= worst)) {
      worst = Number.isNaN(d) && x[i] !== y[i] ? NaN : Math.max(worst, d || 0);
    }
    if (Number.isNaN(worst)) return NaN;
  }
  return worst;
}

export function maxAbs(a: Tensor): number {
  return a.toFloat32Array().reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

/** Whether two tensors hold the same float32 values bit for bit. */
export function bitEqual(a: Tensor, b: Tensor): boolean {
  const x = new Uint32Array(a.toFloat32Array().buffer);
  const y = new Uint32Array(b.toFloat32Array().buffer);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** One case of reference/manifest.json's `forward_cases` (DPMSolverMultistepScheduler). */
export interface ForwardCase {
  name: string;
  scheduler: "DPMSolverMultistepScheduler";
  kind: "steps" | "add_noise";
  config: Record<string, unknown>;
  from_config: Record<string, unknown> | null;
  num_inference_steps: number | null;
  custom_timesteps: number[] | null;
  mu: number | null;
  seed: number | null;
  sample_shape: number[];
  model_output_shape: number[] | null;
  x0_scale: number;
  learned_variance: boolean;
  identity_steps: number[];
  lowered_steps: number[];
  overrun: boolean;
  steps: number;
  timesteps: number[];
  sigmas: number[];
}

const forwardManifest = manifest as unknown as {
  forward_cases: Record<string, Omit<ForwardCase, "name">>;
  randn: Record<string, { seed: number; shapes: number[][] }>;
};

export const forwardCases: ForwardCase[] = Object.entries(
  forwardManifest.forward_cases,
).map(([name, c]) => ({ name, ...c }))
  .sort((a, b) => a.name.localeCompare(b.name));

/** The torch.randn draws of reference/randn/<name>.npy: seed and shapes drawn in order. */
export const randnCases = Object.entries(forwardManifest.randn)
  .map(([name, c]) => ({ name, ...c }));

export function forwardFile(c: ForwardCase, file: string): URL {
  return new URL(`forward/${c.name}/${file}`, REFERENCE_DIR);
}

/**
 * The forward case's scheduler, loaded from its saved config, with its timesteps set (custom
 * timesteps, or a step count and `mu` where the case has them).
 */
export async function forwardSchedulerFor(
  c: ForwardCase,
): Promise<DPMSolverMultistepScheduler> {
  const file = forwardFile(c, "scheduler_config.json");
  const scheduler = DPMSolverMultistepScheduler.fromConfig(
    parseConfigJson(await Deno.readTextFile(file), file.pathname),
  );
  if (c.custom_timesteps !== null) {
    scheduler.setTimesteps(null, { timesteps: c.custom_timesteps });
  } else if (c.mu !== null) {
    scheduler.setTimesteps(c.num_inference_steps!, { mu: c.mu });
  } else {
    scheduler.setTimesteps(c.num_inference_steps!);
  }
  return scheduler;
}

/** A forward case's per-step rows: samples (steps + 1), model outputs and SDE noises (steps). */
export async function forwardTrajectory(c: ForwardCase): Promise<{
  samples: Tensor[];
  modelOutputs: Tensor[];
  noises: Tensor[] | null;
}> {
  const stack = await readNpyTensor(forwardFile(c, "trajectory.npy"));
  const size = (shape: number[]) => shape.reduce((n, d) => n * d, 1);
  const s = size(c.sample_shape);
  const m = size(c.model_output_shape!);
  const sde = c.seed !== null;
  const rows = Array.from({ length: stack.shape[0]! }, (_, i) => row(stack, i));
  const part = (r: Tensor, start: number, n: number, shape: number[]) =>
    new Tensor(r.toFloat32Array().slice(start, start + n), shape);
  return {
    samples: rows.map((r) => part(r, 0, s, c.sample_shape)),
    modelOutputs: rows.slice(0, -1).map((r) =>
      part(r, s, m, c.model_output_shape!)
    ),
    noises: sde
      ? rows.slice(0, -1).map((r) => part(r, s + m, s, c.sample_shape))
      : null,
  };
}
