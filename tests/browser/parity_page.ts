// The parity page, bundled for the browser by tests/browser/parity_test.ts: every reference case
// of reference/manifest.json (inverse and forward, thresholding included), fetched from the
// server as files and stepped in the page on the default CPU kernels and on WebGPU. The CPU must
// match diffusers' next sample bit for bit, WebGPU the CPU bit for bit. The harness calls
// `globalThis.runParity(names)` over slices of the case list and reads the returned counts.
import { parseConfigJson } from "../../lib/_config_file.ts";
import { decodeNpy } from "../../lib/npy.ts";
import { DPMSolverMultistepScheduler } from "../../lib/multistep.ts";
import { DPMSolverMultistepInverseScheduler } from "../../lib/multistep_inverse.ts";
import type { MultistepScheduler } from "../../lib/multistep_scheduler.ts";
import {
  requestWebGpuKernels,
  type WebGpuKernels,
} from "../../lib/backends/webgpu.ts";
import { Tensor } from "../../lib/tensor.ts";

/** What one call of `runParity` found. */
export interface ParityReport {
  /** Cases run. */
  cases: number;
  /** Steps (or addNoise calls) compared. */
  steps: number;
  /** CPU results bit-equal to diffusers' (steps cases). */
  cpuExactVsDiffusers: number;
  /** CPU results compared with diffusers' (steps cases). */
  cpuComparedToDiffusers: number;
  /** WebGPU results bit-equal to the CPU's. */
  gpuExactVsCpu: number;
  /** The first mismatches, `case step i: what`. */
  failures: string[];
  /** The WebGPU adapter, or why there is none. */
  adapter: string;
  /** Milliseconds spent. */
  ms: number;
}

interface InverseCase {
  kind: "steps" | "add_noise";
  num_inference_steps: number;
  steps: number;
}

interface ForwardCase {
  kind: "steps" | "add_noise";
  num_inference_steps: number | null;
  custom_timesteps: number[] | null;
  mu: number | null;
  seed: number | null;
  sample_shape: number[];
  model_output_shape: number[] | null;
  steps: number;
}

interface Manifest {
  cases: Record<string, InverseCase>;
  forward_cases: Record<string, ForwardCase>;
}

const base = new URL("/reference/", location.href);

async function fetchOk(path: string): Promise<Response> {
  const response = await fetch(new URL(path, base));
  if (!response.ok) throw new Error(`GET ${path}: ${response.status}`);
  return response;
}

async function npy(path: string): Promise<Tensor> {
  const array = decodeNpy(
    new Uint8Array(await (await fetchOk(path)).arrayBuffer()),
    path,
  );
  if (array.dtype !== "<f4") {
    return new Tensor(Float32Array.from(array.data), array.shape);
  }
  return new Tensor(array.data, array.shape);
}

async function int32(path: string): Promise<Int32Array> {
  const array = decodeNpy(
    new Uint8Array(await (await fetchOk(path)).arrayBuffer()),
    path,
  );
  return Int32Array.from(array.data);
}

async function config(path: string): Promise<Record<string, unknown>> {
  return parseConfigJson(await (await fetchOk(path)).text(), path);
}

function row(stack: Tensor, i: number): Tensor {
  return stack.slice(0, i, i + 1).reshape(stack.shape.slice(1));
}

function bitEqual(a: Tensor, b: Tensor): boolean {
  const x = new Uint32Array(a.toFloat32Array().buffer);
  const y = new Uint32Array(b.toFloat32Array().buffer);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

let manifest: Promise<Manifest> | null = null;
let gpu: Promise<WebGpuKernels | null> | null = null;

/** The names of every case, inverse ones as `inverse/<name>`, forward ones as `forward/<name>`. */
async function caseNames(): Promise<string[]> {
  manifest ??= fetchOk("manifest.json").then((r) => r.json());
  const m = await manifest;
  return [
    ...Object.keys(m.cases).sort().map((n) => `inverse/${n}`),
    ...Object.keys(m.forward_cases).sort().map((n) => `forward/${n}`),
  ];
}

/** Runs the named cases on the CPU and on WebGPU. */
async function runParity(names: readonly string[]): Promise<ParityReport> {
  const start = performance.now();
  manifest ??= fetchOk("manifest.json").then((r) => r.json());
  const m = await manifest;
  gpu ??= requestWebGpuKernels();
  const kernels = await gpu;
  const report: ParityReport = {
    cases: 0,
    steps: 0,
    cpuExactVsDiffusers: 0,
    cpuComparedToDiffusers: 0,
    gpuExactVsCpu: 0,
    failures: [],
    adapter: kernels ? "WebGPU device" : "no WebGPU adapter",
    ms: 0,
  };
  const fail = (what: string) => {
    if (report.failures.length < 20) report.failures.push(what);
  };
  if (!kernels) {
    fail("navigator.gpu has no adapter (is --enable-unsafe-webgpu set?)");
  }
  for (const name of names) {
    const [direction, caseName] = name.split("/") as [string, string];
    const dir = `${direction}/${caseName}/`;
    report.cases++;
    if (direction === "inverse") {
      await inverseCase(dir, m.cases[caseName]!, kernels, report, fail, name);
    } else {
      await forwardCase(
        dir,
        m.forward_cases[caseName]!,
        kernels,
        report,
        fail,
        name,
      );
    }
  }
  report.ms = performance.now() - start;
  return report;
}

type Fail = (what: string) => void;

// The GPU results, read back together (each wait costs a device poll), against the CPU's.
async function compareGpu(
  pending: Promise<Tensor>[],
  cpuResults: Tensor[],
  report: ParityReport,
  fail: Fail,
  name: string,
): Promise<void> {
  let results: Tensor[];
  try {
    results = await Promise.all(pending);
  } catch (error) {
    fail(`${name}: WebGPU failed: ${(error as Error).message}`);
    return;
  }
  results.forEach((result, i) => {
    if (bitEqual(result, cpuResults[i]!)) report.gpuExactVsCpu++;
    else fail(`${name} step ${i}: WebGPU differs from the CPU`);
  });
}

// An add_noise case: `addNoise` on the CPU against diffusers, and on WebGPU against the CPU.
async function addNoiseCase(
  dir: string,
  s: MultistepScheduler,
  kernels: WebGpuKernels | null,
  report: ParityReport,
  fail: Fail,
  name: string,
): Promise<void> {
  const [original, noise, timesteps, noisy] = await Promise.all([
    npy(`${dir}original.npy`),
    npy(`${dir}noise.npy`),
    int32(`${dir}noise_timesteps.npy`),
    npy(`${dir}noisy.npy`),
  ]);
  const onCpu = s.addNoise(original, noise, timesteps);
  report.steps++;
  report.cpuComparedToDiffusers++;
  if (bitEqual(onCpu, noisy)) report.cpuExactVsDiffusers++;
  else fail(`${name}: CPU addNoise differs from diffusers`);
  if (kernels) {
    const [x, n] = [kernels.upload(original), kernels.upload(noise)];
    const out = s.addNoise(x, n, timesteps);
    await compareGpu([out.read()], [onCpu], report, fail, name);
    for (const t of [x, n, out]) t.release();
  }
}

async function inverseCase(
  dir: string,
  c: InverseCase,
  kernels: WebGpuKernels | null,
  report: ParityReport,
  fail: Fail,
  name: string,
): Promise<void> {
  const scheduler = async () => {
    const s = DPMSolverMultistepInverseScheduler.fromConfig(
      await config(`${dir}scheduler_config.json`),
    );
    s.setTimesteps(c.num_inference_steps);
    return s;
  };
  if (c.kind === "add_noise") {
    await addNoiseCase(dir, await scheduler(), kernels, report, fail, name);
    return;
  }
  const [samples, modelOutputs] = await Promise.all([
    npy(`${dir}samples.npy`),
    npy(`${dir}model_outputs.npy`),
  ]);
  const cpu = await scheduler();
  const onGpu = await scheduler();
  const pending: Promise<Tensor>[] = [];
  const cpuResults: Tensor[] = [];
  for (let i = 0; i < c.steps; i++) {
    const t = cpu.timesteps[Math.min(i, cpu.timesteps.length - 1)]!;
    const sample = row(samples, i);
    const modelOutput = row(modelOutputs, i);
    const expected = cpu.step(modelOutput, t, sample).prevSample;
    cpuResults.push(expected);
    report.steps++;
    report.cpuComparedToDiffusers++;
    if (bitEqual(expected, row(samples, i + 1))) report.cpuExactVsDiffusers++;
    else fail(`${name} step ${i}: CPU differs from diffusers`);
    if (kernels) {
      const [x, mo] = [kernels.upload(sample), kernels.upload(modelOutput)];
      const out = onGpu.step(mo, t, x).prevSample;
      pending.push(out.read()); // the copy is recorded now, so the buffers may go back
      for (const tensor of [x, mo, out]) tensor.release();
    }
  }
  if (kernels) await compareGpu(pending, cpuResults, report, fail, name);
}

async function forwardCase(
  dir: string,
  c: ForwardCase,
  kernels: WebGpuKernels | null,
  report: ParityReport,
  fail: Fail,
  name: string,
): Promise<void> {
  const scheduler = async () => {
    const s = DPMSolverMultistepScheduler.fromConfig(
      await config(`${dir}scheduler_config.json`),
    );
    if (c.custom_timesteps !== null) {
      s.setTimesteps(null, { timesteps: c.custom_timesteps });
    } else if (c.mu !== null) {
      s.setTimesteps(c.num_inference_steps!, { mu: c.mu });
    } else {
      s.setTimesteps(c.num_inference_steps!);
    }
    return s;
  };
  if (c.kind !== "steps") {
    await addNoiseCase(dir, await scheduler(), kernels, report, fail, name);
    return;
  }
  // trajectory.npy: per row the sample, the model output, then the SDE noise when seeded.
  const stack = await npy(`${dir}trajectory.npy`);
  const size = (shape: number[]) => shape.reduce((n, d) => n * d, 1);
  const s = size(c.sample_shape);
  const mSize = size(c.model_output_shape!);
  const part = (r: Tensor, start: number, n: number, shape: number[]) =>
    new Tensor(r.toFloat32Array().slice(start, start + n), shape);
  const rows = Array.from({ length: stack.shape[0]! }, (_, i) => row(stack, i));
  const cpu = await scheduler();
  const onGpu = await scheduler();
  const pending: Promise<Tensor>[] = [];
  const cpuResults: Tensor[] = [];
  for (let i = 0; i < c.steps; i++) {
    const t = cpu.timesteps[i]!;
    const sample = part(rows[i]!, 0, s, c.sample_shape);
    const modelOutput = part(rows[i]!, s, mSize, c.model_output_shape!);
    const noise = c.seed !== null
      ? part(rows[i]!, s + mSize, s, c.sample_shape)
      : null;
    const expected = cpu.step(
      modelOutput,
      t,
      sample,
      noise ? { varianceNoise: noise } : {},
    ).prevSample;
    cpuResults.push(expected);
    report.steps++;
    report.cpuComparedToDiffusers++;
    const next = part(rows[i + 1]!, 0, s, c.sample_shape);
    if (bitEqual(expected, next)) report.cpuExactVsDiffusers++;
    else fail(`${name} step ${i}: CPU differs from diffusers`);
    if (kernels) {
      const x = kernels.upload(sample);
      const mo = kernels.upload(modelOutput);
      const n = noise ? kernels.upload(noise) : null;
      const out = onGpu.step(mo, t, x, n ? { varianceNoise: n } : {})
        .prevSample;
      pending.push(out.read());
      for (const tensor of [x, mo, n, out]) tensor?.release();
    }
  }
  if (kernels) await compareGpu(pending, cpuResults, report, fail, name);
}

Object.assign(globalThis, { runParity, caseNames });
