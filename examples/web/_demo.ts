/**
 * The web demo's work, without the page: the digits UNet on ONNX Runtime Web as a model
 * function, and the inversion, reconstruction and class edits stepped on one of the library's
 * kernel backends (WebGPU tensors or WebAssembly-kernel CPU tensors). The Deno demo
 * (`examples/_digits.ts`) runs the same round trip with `invert` and `generate`.
 *
 * @module
 */
import type * as Ort from "npm:onnxruntime-web@1.30.0/wasm";
import {
  type DiffusionModel,
  DPMSolverMultistepInverseScheduler,
  DPMSolverMultistepScheduler,
  type MultistepScheduler,
  Tensor,
  type TensorView,
} from "../../mod.ts";
import type { WebGpuKernels, WebGpuTensor } from "../../webgpu.ts";

/** The null class label the UNet was trained with (classifier-free guidance). */
export const NULL_CLASS = 10;

/** The UNet session as a model function (guidance: one batched call on [x; x]). */
export function ortModel(
  ort: typeof Ort,
  session: Ort.InferenceSession,
): DiffusionModel {
  const run = async (sample: Tensor, t: number, labels: Int32Array) => {
    const batch = sample.shape[0]!;
    const out = await session.run({
      sample: new ort.Tensor("float32", sample.toFloat32Array(), [
        ...sample.shape,
      ]),
      timestep: new ort.Tensor(
        "float32",
        new Float32Array(batch).fill(t),
        [batch],
      ),
      class_labels: new ort.Tensor("int32", labels, [batch]),
    });
    return new Tensor(out.noise_pred!.data as Float32Array, sample.shape);
  };
  return async (sample, t, classLabels, guidanceScale = 1) => {
    const batch = sample.shape[0]!;
    const labels = classLabels ?? new Int32Array(batch).fill(NULL_CLASS);
    if (guidanceScale === 1) return await run(sample, t, labels);
    const x = sample.toFloat32Array();
    const doubled = new Float32Array(2 * x.length);
    doubled.set(x);
    doubled.set(x, x.length);
    const both = new Int32Array(2 * batch).fill(NULL_CLASS);
    both.set(labels);
    const eps = (await run(
      new Tensor(doubled, [2 * batch, ...sample.shape.slice(1)]),
      t,
      both,
    )).toFloat32Array();
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const uncond = eps[x.length + i]!;
      out[i] = uncond + guidanceScale * (eps[i]! - uncond);
    }
    return new Tensor(out, sample.shape);
  };
}

/** The classifier session as a function from images to predicted classes. */
export function ortClassifier(
  ort: typeof Ort,
  session: Ort.InferenceSession,
): (images: Tensor) => Promise<Int32Array> {
  return async (images) => {
    const out = await session.run({
      image: new ort.Tensor("float32", images.toFloat32Array(), [
        ...images.shape,
      ]),
    });
    const logits = out.logits!.data as Float32Array;
    const classes = logits.length / images.shape[0]!;
    return Int32Array.from({ length: images.shape[0]! }, (_, b) => {
      let best = 0;
      for (let c = 1; c < classes; c++) {
        if (logits[b * classes + c]! > logits[b * classes + best]!) best = c;
      }
      return best;
    });
  };
}

/** Where the scheduler's steps run: tensors moved to the backend and read back for the model. */
export interface StepBackend<T> {
  /** What the page says: "WebGPU" or "WebAssembly". */
  name: string;
  upload(x: Tensor): T;
  read(x: T): Promise<Tensor>;
  release(x: T): void;
}

/** CPU tensors, on the default kernels (WebAssembly SIMD where the browser has it). */
export const cpuBackend: StepBackend<Tensor> = {
  name: "WebAssembly",
  upload: (x) => x,
  read: (x) => Promise.resolve(x),
  release: () => {},
};

/** WebGPU tensors of `kernels`. */
export function gpuBackend(kernels: WebGpuKernels): StepBackend<WebGpuTensor> {
  return {
    name: "WebGPU",
    upload: (x) => kernels.upload(x),
    read: (x) => kernels.read(x),
    release: (x) => kernels.release(x),
  };
}

/** Called after every model call and step. */
export type OnStep = (
  phase: "invert" | "generate",
  step: number,
) => void | Promise<void>;

/**
 * Runs the model and the scheduler's step over `timesteps` from `sample`, the steps on
 * `backend`. Returns the last sample.
 */
export async function runLoop<T extends TensorView<T>>(
  model: DiffusionModel,
  scheduler: MultistepScheduler,
  backend: StepBackend<T>,
  sample: Tensor,
  timesteps: Int32Array,
  labels: Int32Array,
  guidanceScale: number,
  onStep: (step: number) => void | Promise<void>,
): Promise<Tensor> {
  let current = sample;
  let onDevice = backend.upload(sample);
  const made: T[] = [onDevice];
  for (let i = 0; i < timesteps.length; i++) {
    const t = timesteps[i]!;
    const eps = backend.upload(
      await model(current, t, labels, guidanceScale),
    );
    made.push(eps);
    onDevice = scheduler.step(eps, t, onDevice).prevSample;
    made.push(onDevice);
    current = await backend.read(onDevice);
    await onStep(i + 1);
  }
  for (const x of made) if (x !== (sample as unknown)) backend.release(x);
  return current;
}

/** The model's scheduler config with the demo's settings (as `examples/_digits.ts` sets them). */
export function demoSchedulers(config: Record<string, unknown>): {
  inverse: DPMSolverMultistepInverseScheduler;
  forward: DPMSolverMultistepScheduler;
} {
  const overrides = { use_karras_sigmas: false };
  return {
    inverse: DPMSolverMultistepInverseScheduler.fromConfig(config, overrides),
    // The inversion starts at sigma(t = 0), so the regeneration ends there too.
    forward: DPMSolverMultistepScheduler.fromConfig(config, {
      ...overrides,
      final_sigmas_type: "sigma_min",
    }),
  };
}

/** The index of the forward schedule's sigma nearest (in log) to `sigma`. */
export function nearestSigmaIndex(
  scheduler: DPMSolverMultistepScheduler,
  sigma: number,
): number {
  const n = scheduler.timesteps.length;
  let best = 0;
  for (let i = 1; i < n; i++) {
    if (
      Math.abs(Math.log(scheduler.sigmas[i]! / sigma)) <
        Math.abs(Math.log(scheduler.sigmas[best]! / sigma))
    ) best = i;
  }
  return best;
}

/** Everything a run needs. */
export interface DemoContext<T> {
  model: DiffusionModel;
  config: Record<string, unknown>;
  backend: StepBackend<T>;
}

/** The inverted sample and the sigma it reached. */
export interface Inverted {
  sample: Tensor;
  sigma: number;
}

/** Inverts `image` ([B, 1, 8, 8]) with its classes over the first `strength` of `steps` steps. */
export async function invertImage<T extends TensorView<T>>(
  ctx: DemoContext<T>,
  image: Tensor,
  labels: Int32Array,
  steps: number,
  strength: number,
  onStep: OnStep,
): Promise<Inverted> {
  const { inverse } = demoSchedulers(ctx.config);
  inverse.setTimesteps(steps);
  const count = Math.min(
    Math.trunc(steps * strength),
    inverse.timesteps.length,
  );
  const sample = await runLoop(
    ctx.model,
    inverse,
    ctx.backend,
    image,
    inverse.timesteps.subarray(0, count),
    labels,
    1,
    (i) => onStep("invert", i),
  );
  return { sample, sigma: inverse.sigmas[count]! };
}

/** Regenerates from an inverted sample with `labels` and guidance. */
export async function regenerate<T extends TensorView<T>>(
  ctx: DemoContext<T>,
  inverted: Inverted,
  labels: Int32Array,
  steps: number,
  guidanceScale: number,
  onStep: OnStep,
): Promise<Tensor> {
  const { forward } = demoSchedulers(ctx.config);
  forward.setTimesteps(steps);
  const start = nearestSigmaIndex(forward, inverted.sigma);
  if (start > 0) forward.setBeginIndex(start);
  return await runLoop(
    ctx.model,
    forward,
    ctx.backend,
    inverted.sample,
    forward.timesteps.subarray(start),
    labels,
    guidanceScale,
    (i) => onStep("generate", i),
  );
}

/**
 * Five steps of each scheduler on a zero [1, 1, 8, 8] sample with zero noise predictions, on
 * `backend`, read back once at the end: this builds every kernel a round trip uses (first and
 * second order, both directions), so that WebGPU pipelines compile while the page loads the
 * model rather than at the first step.
 */
export async function warmUp<T extends TensorView<T>>(
  backend: StepBackend<T>,
  config: Record<string, unknown>,
): Promise<void> {
  const zeros = new Tensor(new Float32Array(64), [1, 1, 8, 8]);
  const made: T[] = [];
  const last: T[] = [];
  for (const scheduler of Object.values(demoSchedulers(config))) {
    scheduler.setTimesteps(5);
    let sample = backend.upload(zeros);
    made.push(sample);
    for (const t of scheduler.timesteps) {
      const eps = backend.upload(zeros);
      sample = scheduler.step(eps, t, sample).prevSample;
      made.push(eps, sample);
    }
    last.push(sample);
  }
  await Promise.all(last.map((x) => backend.read(x)));
  for (const x of made) backend.release(x);
}

/** PSNR in dB of `b` against `a` (values in [-1, 1], peak-to-peak 2). */
export function psnr(a: Tensor, b: Tensor): number {
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += (x[i]! - y[i]!) ** 2;
  return 10 * Math.log10(4 / (sum / x.length));
}

/** `k` copies of a [1, ...] sample, [k, ...]. */
export function repeat(sample: Tensor, k: number): Tensor {
  const x = sample.toFloat32Array();
  const out = new Float32Array(x.length * k);
  for (let j = 0; j < k; j++) out.set(x, j * x.length);
  return new Tensor(out, [k, ...sample.shape.slice(1)]);
}

/** What the page reports (read by the browser test). */
export interface DemoState {
  status: "loading" | "running" | "done" | "error";
  error?: string;
  backend?: string;
  digit?: number;
  label?: number;
  steps?: number;
  psnr?: number;
  /** Milliseconds from navigation start to the first reconstruction on screen. */
  firstResultMs?: number;
  edits?: number[];
  /** Milliseconds from navigation start at which each part was ready. */
  timings?: Record<string, number>;
  roundTrip?: (
    index: number,
    steps: number,
  ) => Promise<{ psnr: number; label: number }>;
}
