// Loading diffusers' reference cases (reference/manifest.json, reference/inverse/<case>/) and the
// stand-in model that produced them. The .npy files are read with a third-party reader,
// numpy-parser (the package the design names), not with lib/npy.ts: the parity tests then do not
// rest on our own reader, and notebooks/parity.ipynb checks our reader and writer against it.
// A test-only dependency, pinned here rather than in deno.json so that only the tests fetch it.
// deno-lint-ignore no-import-prefix
import { fromArrayBuffer } from "npm:numpy-parser@1.2.3";
import { f32 } from "../lib/_f32.ts";
import { parseConfigJson } from "../lib/_config_file.ts";
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

/** A `.npy` file as numpy-parser reads it: its typed array and its shape, as numpy-parser gives it. */
export interface ParsedNpy {
  data: Float32Array | Int32Array | Float64Array | Uint8Array;
  /**
   * numpy-parser's shape: a 1-D array of n elements comes back as `[n, 1]` (its header parser
   * turns `(n,)` into `[n, 1]`), so it cannot tell `(n,)` from `(n, 1)`.
   */
  shape: number[];
}

/**
 * Reads a `.npy` file with numpy-parser (`npm:numpy-parser@1.2.3`). It refuses int64 (reference
 * integer arrays are int32) and Fortran order; it reads to the end of the buffer, so the element
 * count is checked here against the shape.
 */
export async function readWithNumpyParser(path: URL): Promise<ParsedNpy> {
  const bytes = await Deno.readFile(path);
  const parsed = fromArrayBuffer(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
  ) as ParsedNpy;
  const count = parsed.shape.reduce((n, d) => n * d, 1);
  if (parsed.data.length !== count) {
    throw new TypeError(
      `Cannot read '${path.pathname}': numpy-parser gives ${parsed.data.length} elements for shape [${parsed.shape}]`,
    );
  }
  return parsed;
}

/**
 * The shape diffusers saved a case's file with, from the manifest: the stacked samples and model
 * outputs, the add_noise tensors, the forward trajectory; null for the 1-D arrays (timesteps,
 * sigmas, betas, alphas_cumprod, noise_timesteps).
 */
function savedShape(
  c: ReferenceCase | ForwardCase,
  file: string,
): number[] | null {
  const size = (shape: number[]) => shape.reduce((n, d) => n * d, 1);
  switch (file) {
    case "samples.npy":
      return [c.steps + 1, ...c.sample_shape];
    case "model_outputs.npy":
      return [c.steps, ...c.model_output_shape!];
    case "original.npy":
    case "noise.npy":
    case "noisy.npy":
      return c.sample_shape;
    case "trajectory.npy": {
      const s = size(c.sample_shape);
      const sde = "seed" in c && c.seed !== null;
      return [c.steps + 1, s + size(c.model_output_shape!) + (sde ? s : 0)];
    }
    default:
      return null;
  }
}

/**
 * A reference file read by numpy-parser, with the shape the manifest gives it (numpy-parser's
 * `[n, 1]` for a 1-D file becomes `[n]`), of the dtype asked for; a shape that differs from the
 * manifest's, or another dtype, throws.
 */
async function readReference<T extends Float32Array | Int32Array>(
  c: ReferenceCase | ForwardCase,
  url: URL,
  file: string,
  type: { new (length: number): T; name: string },
): Promise<{ data: T; shape: number[] }> {
  const { data, shape } = await readWithNumpyParser(url);
  if (!(data instanceof type)) {
    throw new TypeError(
      `Cannot read '${url.pathname}' as ${type.name}: numpy-parser gives ${data.constructor.name}`,
    );
  }
  const expected = savedShape(c, file);
  const oneD = shape.length === 2 && shape[1] === 1;
  const matches = expected === null ? oneD : shape.length === expected.length &&
    shape.every((d, i) => d === expected[i]);
  if (!matches) {
    throw new TypeError(
      `Cannot read '${url.pathname}': numpy-parser gives shape [${shape}], the manifest ${
        expected === null ? "a 1-D array" : `[${expected}]`
      }`,
    );
  }
  return { data: data as T, shape: expected ?? [data.length] };
}

export async function int32(
  c: ReferenceCase,
  file: string,
): Promise<Int32Array> {
  return (await readReference(c, caseFile(c, file), file, Int32Array)).data;
}

export async function float32(c: ReferenceCase, file: string): Promise<Tensor> {
  const { data, shape } = await readReference(
    c,
    caseFile(c, file),
    file,
    Float32Array,
  );
  return new Tensor(data, shape);
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

/** A forward case's int32 file (numpy-parser, shape checked against the manifest). */
export async function forwardInt32(
  c: ForwardCase,
  file: string,
): Promise<Int32Array> {
  return (await readReference(c, forwardFile(c, file), file, Int32Array)).data;
}

/** A forward case's float32 file as a tensor (numpy-parser, shape checked against the manifest). */
export async function forwardFloat32(
  c: ForwardCase,
  file: string,
): Promise<Tensor> {
  const { data, shape } = await readReference(
    c,
    forwardFile(c, file),
    file,
    Float32Array,
  );
  return new Tensor(data, shape);
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
  const stack = await forwardFloat32(c, "trajectory.npy");
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
