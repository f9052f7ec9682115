/**
 * The computations of `parity.ipynb`: every reference case of `reference/manifest.json` rerun
 * through our schedulers, with the loaders, stand-in model and tolerances of the parity tests
 * (`tests/_reference.ts`, which reads diffusers' `.npy` files with numpy-parser), and the check of
 * our own `.npy` reader and writer against numpy-parser.
 *
 * @module
 */
// The reader tests/_reference.ts uses, pinned as there.
// deno-lint-ignore no-import-prefix
import { fromArrayBuffer } from "npm:numpy-parser@1.2.3";
import { decodeNpy, encodeNpy } from "../lib/npy.ts";
import { TorchGenerator } from "../lib/random.ts";
import { Tensor } from "../lib/tensor.ts";
import {
  cases,
  float32,
  type ForwardCase,
  forwardCases,
  forwardFloat32,
  forwardInt32,
  forwardSchedulerFor,
  forwardTrajectory,
  int32,
  LOOP_TOLERANCE,
  readWithNumpyParser,
  REFERENCE_DIR,
  type ReferenceCase,
  row,
  schedulerFor,
  SIGMA_TOLERANCE,
  standinModel,
  STEP_TOLERANCE,
} from "../tests/_reference.ts";

export { cases, forwardCases, LOOP_TOLERANCE, SIGMA_TOLERANCE, STEP_TOLERANCE };

/** How far one tensor is from diffusers'. */
export interface Difference {
  /** max |ours − diffusers'|. */
  abs: number;
  /** The largest distance in float32 ulps: how many float32 values lie between the two (0: equal bits). */
  ulps: number;
  /** The tests' scale, max(1, max |diffusers'|). */
  scale: number;
  /** abs ÷ scale: what the tests' tolerances bound. */
  relative: number;
}

/** A float32's position on the number line of float32s, so that neighbours differ by 1. */
const ordinal = (bits: number) => (bits < 0 ? -(bits & 0x7fffffff) : bits);

/** {@link Difference} of two tensors of the same size; NaN on one side only is an infinite error. */
export function compare(actual: Tensor, expected: Tensor): Difference {
  const a = actual.toFloat32Array();
  const e = expected.toFloat32Array();
  if (a.length !== e.length) {
    throw new RangeError(
      `Cannot compare tensors of ${a.length} and ${e.length} elements`,
    );
  }
  const ab = new Int32Array(a.buffer, a.byteOffset, a.length);
  const eb = new Int32Array(e.buffer, e.byteOffset, e.length);
  let [abs, ulps, scale] = [0, 0, 1];
  for (let i = 0; i < e.length; i++) {
    const nan = Number.isNaN(a[i]!) !== Number.isNaN(e[i]!);
    abs = Math.max(abs, nan ? Infinity : Math.abs(a[i]! - e[i]!) || 0);
    ulps = Math.max(
      ulps,
      nan ? Infinity : Math.abs(ordinal(ab[i]!) - ordinal(eb[i]!)),
    );
    scale = Math.max(scale, Math.abs(e[i]!));
  }
  return { abs, ulps, scale, relative: abs / scale };
}

/** One step fed diffusers' inputs. */
export interface StepRun extends Difference {
  step: number;
  t: number;
}

/** Our values against diffusers': elements compared, elements that differ, the largest difference in ulps. */
export interface Agreement {
  elements: number;
  differ: number;
  ulps: number;
}

function agreement(ours: Tensor[], theirs: Tensor[]): Agreement {
  let [elements, differ, ulps] = [0, 0, 0];
  ours.forEach((tensor, i) => {
    const x = tensor.toFloat32Array();
    const y = theirs[i]!.toFloat32Array();
    const [a, b] = [
      new Int32Array(x.buffer, x.byteOffset, x.length),
      new Int32Array(y.buffer, y.byteOffset, y.length),
    ];
    for (let k = 0; k < a.length; k++) {
      const d = Math.abs(ordinal(a[k]!) - ordinal(b[k]!));
      if (d !== 0) differ++;
      ulps = Math.max(ulps, d);
    }
    elements += a.length;
  });
  return { elements, differ, ulps };
}

/** One reference case rerun. */
export interface CaseRun {
  direction: "inverse" | "forward";
  name: string;
  kind: "steps" | "add_noise";
  algorithm: string;
  order: number;
  prediction: string;
  timestepsEqual: boolean;
  /** The largest relative sigma error (absolute where diffusers' sigma is 0). */
  sigmaError: number;
  steps: StepRun[];
  /** The whole loop on our own samples with the stand-in model (steps cases). */
  loop: Difference | null;
  /** `addNoise` on diffusers' inputs (add_noise cases). */
  addNoise: Difference | null;
  /**
   * The stand-in model on diffusers' own samples against the model outputs diffusers recorded:
   * elements compared, elements that differ, and the largest difference in ulps.
   */
  model: (Agreement & { tanh: number }) | null;
  /**
   * SDE cases: the noise `TorchGenerator(seed)` draws (one `randn` of the sample's shape per step,
   * as the scheduler draws it in the whole loop) against the noise diffusers recorded.
   */
  noise: Agreement | null;
  /** Every tolerance the case breaks (the tests' tolerances). */
  failures: string[];
}

function sigmaError(
  ours: ArrayLike<number>,
  theirs: ArrayLike<number>,
): number {
  if (ours.length !== theirs.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < theirs.length; i++) {
    const error = theirs[i] === 0
      ? Math.abs(ours[i]!)
      : Math.abs(ours[i]! - theirs[i]!) / Math.abs(theirs[i]!);
    worst = Math.max(worst, Number.isNaN(error) ? Infinity : error);
  }
  return worst;
}

/** The float32 `k` representable values away from `x` (k may be negative). */
function neighbour(x: number, k: number): number {
  const f = new Float32Array([x]);
  const i = new Int32Array(f.buffer);
  const n = ordinal(i[0]!) + k;
  i[0] = n < 0 ? -n | 0x80000000 : n;
  return f[0]!;
}

/**
 * The stand-in model on diffusers' own samples against the model outputs diffusers recorded, over
 * the noise-prediction channels (with a learned variance, the scheduler drops the variance
 * channels). `tanh` counts the differing elements that diffusers' value reproduces exactly when
 * our float32 tanh(x) is replaced by a float32 one or two values away from it: there the only
 * difference is tanh's last bits (V8's `Math.tanh` rounded to float32 against torch's float32 tanh).
 */
function modelAgreement(
  samples: Tensor[],
  outputs: Tensor[],
  timesteps: ArrayLike<number>,
  learnedVariance: boolean,
): Agreement & { tanh: number } {
  const f32 = Math.fround;
  let [elements, differ, ulps, tanh] = [0, 0, 0, 0];
  outputs.forEach((output, i) => {
    const t = timesteps[Math.min(i, timesteps.length - 1)]!;
    const sample = samples[i]!;
    const x = sample.toFloat32Array();
    const ours = standinModel(sample, t, learnedVariance).toFloat32Array();
    const theirs = output.toFloat32Array();
    const perItem = x.length / sample.shape[0]!;
    const c1 = f32(0.8 - 0.3 * (t / 1000));
    const c2 = f32(0.2 + 0.1 * (t / 1000));
    for (let k = 0; k < x.length; k++) {
      // The eps element of sample element k (items interleave eps and variance halves).
      const o = learnedVariance
        ? 2 * perItem * Math.floor(k / perItem) + (k % perItem)
        : k;
      const [a, b] = new Int32Array(
        new Float32Array([ours[o]!, theirs[o]!]).buffer,
      );
      const d = Math.abs(ordinal(a!) - ordinal(b!));
      elements++;
      if (d === 0) continue;
      differ++;
      ulps = Math.max(ulps, d);
      const th = f32(Math.tanh(x[k]!));
      if (
        [-2, -1, 1, 2].some((j) =>
          f32(f32(c1 * neighbour(th, j)) + f32(c2 * x[k]!)) === theirs[o]
        )
      ) tanh++;
    }
  });
  return { elements, differ, ulps, tanh };
}

function verdicts(run: Omit<CaseRun, "failures">): string[] {
  const failures: string[] = [];
  if (!run.timestepsEqual) failures.push("timesteps differ");
  if (!(run.sigmaError <= SIGMA_TOLERANCE)) {
    failures.push(`sigma error ${run.sigmaError.toExponential(2)}`);
  }
  const worst = Math.max(0, ...run.steps.map((s) => s.relative));
  if (!(worst <= STEP_TOLERANCE)) {
    failures.push(`step error ${worst.toExponential(2)}`);
  }
  if (run.loop && !(run.loop.relative <= LOOP_TOLERANCE)) {
    failures.push(`loop error ${run.loop.relative.toExponential(2)}`);
  }
  if (run.addNoise && !(run.addNoise.relative <= STEP_TOLERANCE)) {
    failures.push(`addNoise error ${run.addNoise.relative.toExponential(2)}`);
  }
  return failures;
}

/** Reruns an inverse case as `tests/multistep_inverse_test.ts` does. */
export async function runInverse(c: ReferenceCase): Promise<CaseRun> {
  const scheduler = await schedulerFor(c);
  const config = scheduler.config;
  const expectedTimesteps = await int32(c, "timesteps.npy");
  const base = {
    direction: "inverse" as const,
    name: c.name,
    kind: c.kind,
    algorithm: config.algorithm_type,
    order: config.solver_order,
    prediction: config.prediction_type,
    timestepsEqual: expectedTimesteps.length === scheduler.timesteps.length &&
      expectedTimesteps.every((t, i) => t === scheduler.timesteps[i]),
    sigmaError: sigmaError(
      scheduler.sigmas,
      (await float32(c, "sigmas.npy")).toFloat32Array(),
    ),
  };
  if (c.kind === "add_noise") {
    const noisy = scheduler.addNoise(
      await float32(c, "original.npy"),
      await float32(c, "noise.npy"),
      await int32(c, "noise_timesteps.npy"),
    );
    const run = {
      ...base,
      steps: [],
      loop: null,
      addNoise: compare(noisy, await float32(c, "noisy.npy")),
      model: null,
      noise: null,
    };
    return { ...run, failures: verdicts(run) };
  }
  const samples = await float32(c, "samples.npy");
  const outputs = await float32(c, "model_outputs.npy");
  const sampleRows = Array.from(
    { length: c.steps + 1 },
    (_, i) => row(samples, i),
  );
  const outputRows = Array.from({ length: c.steps }, (_, i) => row(outputs, i));
  const steps: StepRun[] = [];
  for (let i = 0; i < c.steps; i++) {
    // Overrun cases step past the schedule's end at its last timestep, as diffusers allows.
    const t = scheduler.timesteps[Math.min(i, scheduler.timesteps.length - 1)]!;
    const out = scheduler.step(outputRows[i]!, t, sampleRows[i]!).prevSample;
    steps.push({ step: i, t, ...compare(out, sampleRows[i + 1]!) });
  }
  // The whole inversion: a plain loop over `timesteps` with the stand-in model, on our own samples.
  const looper = await schedulerFor(c);
  let sample = sampleRows[0]!.clone();
  for (const t of looper.timesteps) {
    sample = looper.step(standinModel(sample, t, c.learned_variance), t, sample)
      .prevSample;
  }
  const run = {
    ...base,
    steps,
    loop: compare(sample, sampleRows[c.steps]!),
    addNoise: null,
    model: modelAgreement(
      sampleRows,
      outputRows,
      scheduler.timesteps,
      c.learned_variance,
    ),
    noise: null,
  };
  return { ...run, failures: verdicts(run) };
}

/** Reruns a forward case as `tests/multistep_test.ts` does. */
export async function runForward(c: ForwardCase): Promise<CaseRun> {
  const scheduler = await forwardSchedulerFor(c);
  const config = scheduler.config;
  const base = {
    direction: "forward" as const,
    name: c.name,
    kind: c.kind,
    algorithm: config.algorithm_type,
    order: config.solver_order,
    prediction: config.prediction_type,
    timestepsEqual: c.timesteps.length === scheduler.timesteps.length &&
      c.timesteps.every((t, i) => t === scheduler.timesteps[i]),
    sigmaError: sigmaError(scheduler.sigmas, c.sigmas),
  };
  if (c.kind === "add_noise") {
    const noisy = scheduler.addNoise(
      await forwardFloat32(c, "original.npy"),
      await forwardFloat32(c, "noise.npy"),
      await forwardInt32(c, "noise_timesteps.npy"),
    );
    const run = {
      ...base,
      steps: [],
      loop: null,
      addNoise: compare(noisy, await forwardFloat32(c, "noisy.npy")),
      model: null,
      noise: null,
    };
    return { ...run, failures: verdicts(run) };
  }
  const { samples, modelOutputs, noises } = await forwardTrajectory(c);
  const steps: StepRun[] = [];
  for (let i = 0; i < c.steps; i++) {
    const t = scheduler.timesteps[i]!;
    const options = noises ? { varianceNoise: noises[i]! } : {};
    const out =
      scheduler.step(modelOutputs[i]!, t, samples[i]!, options).prevSample;
    steps.push({ step: i, t, ...compare(out, samples[i + 1]!) });
  }
  // The whole sampling loop on our own samples; SDE noise from TorchGenerator(seed), as diffusers.
  const looper = await forwardSchedulerFor(c);
  const generator = c.seed === null ? undefined : new TorchGenerator(c.seed);
  let sample = samples[0]!.clone();
  for (const t of looper.timesteps) {
    sample = looper.step(
      standinModel(sample, t, c.learned_variance),
      t,
      sample,
      generator ? { generator } : {},
    ).prevSample;
  }
  const run = {
    ...base,
    steps,
    loop: compare(sample, samples[c.steps]!),
    addNoise: null,
    model: modelAgreement(
      samples,
      modelOutputs,
      scheduler.timesteps,
      c.learned_variance,
    ),
    noise: noises === null || c.seed === null ? null : agreement(
      (() => {
        const draws = new TorchGenerator(c.seed);
        return noises.map((n) => draws.randn(n.shape));
      })(),
      noises,
    ),
  };
  return { ...run, failures: verdicts(run) };
}

/** One `.npy` file under `reference/`, read by numpy-parser and by our reader, and rewritten by ours. */
export interface ReaderCheck {
  file: string;
  dtype: "<f4" | "<i4";
  elements: number;
  /** Our reader's shape equals numpy-parser's (whose 1-D `[n, 1]` is taken as `[n]`). */
  shapeAgrees: boolean;
  /** Our reader's values equal numpy-parser's, bit for bit. */
  dataAgrees: boolean;
  /** numpy-parser reads our writer's bytes back to the same shape and bits. */
  writerAgrees: boolean;
  /** Our writer's bytes equal NumPy's file byte for byte. */
  sameBytes: boolean;
}

/** The `.npy` files under `reference/`, relative to it, sorted. */
export function referenceFiles(): string[] {
  const found: string[] = [];
  const walk = (dir: URL, prefix: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isDirectory) {
        walk(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`);
      } else if (entry.name.endsWith(".npy")) {
        found.push(`${prefix}${entry.name}`);
      }
    }
  };
  walk(REFERENCE_DIR, "");
  return found.sort();
}

const sameBits = (a: ArrayBufferView, b: ArrayBufferView) => {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

/** Reads `file` (under `reference/`) with numpy-parser and with `decodeNpy`, and rewrites it with `encodeNpy`. */
export async function checkReader(file: string): Promise<ReaderCheck> {
  const url = new URL(file, REFERENCE_DIR);
  const bytes = await Deno.readFile(url);
  const theirs = await readWithNumpyParser(url);
  const ours = decodeNpy(bytes, file);
  // numpy-parser gives a 1-D array of n elements the shape [n, 1].
  const theirShape = theirs.shape.length === 2 && theirs.shape[1] === 1 &&
      ours.shape.length === 1
    ? [theirs.shape[0]!]
    : theirs.shape;
  const sameShape = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((d, i) => d === b[i]);
  const encoded = ours.dtype === "<f4"
    ? encodeNpy(new Tensor(ours.data, ours.shape))
    : encodeNpy(ours.data);
  const back = fromParser(encoded);
  const expectedType = ours.dtype === "<f4" ? Float32Array : Int32Array;
  return {
    file,
    dtype: ours.dtype,
    elements: ours.data.length,
    shapeAgrees: sameShape(ours.shape, theirShape),
    dataAgrees: theirs.data instanceof expectedType &&
      sameBits(theirs.data, ours.data),
    writerAgrees: back.data instanceof expectedType &&
      sameBits(back.data, theirs.data) && sameShape(back.shape, theirs.shape),
    sameBytes: sameBits(encoded, bytes),
  };
}

/** numpy-parser on bytes in memory. */
function fromParser(
  bytes: Uint8Array,
): { data: ArrayBufferView; shape: number[] } {
  return fromArrayBuffer(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
  );
}
