/**
 * The digits model of `reference/models/digits/` (trained by `reference/models/train_digits.py`)
 * and what the demo, the notebook and the tests do with it: round trips, class edits, PSNR and a
 * PNG grid. Needs `--allow-read --allow-env --allow-ffi` (ONNX Runtime's native addon).
 *
 * @module
 */
import * as ort from "npm:onnxruntime-node@1.30.0";
import { encode } from "npm:fast-png@8.0.0";
import {
  type DiffusionModel,
  DPMSolverMultistepInverseScheduler,
  DPMSolverMultistepScheduler,
  generate,
  invert,
  type LoopProgress,
  Tensor,
} from "../mod.ts";
import { readNpy, readNpyTensor } from "../npy.ts";
import { onnxDiffusionModel, onnxFunction } from "../onnx.ts";

/** The folder holding `unet.onnx`, `classifier.onnx`, `scheduler/` and the held-out digits. */
export const DIGITS_DIR = new URL(
  "../reference/models/digits/",
  import.meta.url,
);

/** The null class label the UNet was trained with (classifier-free guidance). */
export const NULL_CLASS = 10;

/** The loaded model, classifier, scheduler config and held-out digits. */
export interface Digits {
  /** The UNet as a model function (classifier-free guidance in one batched call). */
  model: DiffusionModel;
  /** The classifier's predicted class per image. */
  classify: (images: Tensor) => Promise<Int32Array>;
  /** `scheduler/scheduler_config.json`. */
  config: Record<string, unknown>;
  /** The held-out digits, [N, 1, 8, 8] in [-1, 1]. */
  images: Tensor;
  /** Their classes. */
  labels: Int32Array;
}

/** Loads the model, the classifier and the held-out digits. */
export async function loadDigits(): Promise<Digits> {
  const path = (name: string) => new URL(name, DIGITS_DIR).pathname;
  const unet = await ort.InferenceSession.create(path("unet.onnx"));
  const classifier = onnxFunction(
    await ort.InferenceSession.create(path("classifier.onnx")),
  );
  const labels = await readNpy(path("heldout_labels.npy"));
  return {
    model: onnxDiffusionModel(unet, { nullClassLabel: NULL_CLASS }),
    classify: async (images) => argmax(await classifier(images)),
    config: JSON.parse(
      await Deno.readTextFile(path("scheduler/scheduler_config.json")),
    ),
    images: await readNpyTensor(path("heldout_images.npy")),
    labels: labels.data as Int32Array,
  };
}

/** Row-wise argmax of a [B, C] tensor. */
export function argmax(logits: Tensor): Int32Array {
  const [batch, classes] = logits.shape as [number, number];
  const v = logits.toFloat32Array();
  return Int32Array.from({ length: batch }, (_, b) => {
    let best = 0;
    for (let c = 1; c < classes; c++) {
      if (v[b * classes + c]! > v[b * classes + best]!) best = c;
    }
    return best;
  });
}

/** The first `n` items of a batch (a view). */
export function firstItems(images: Tensor, n: number): Tensor {
  return images.slice(0, 0, n);
}

/** PSNR in dB of `b` against `a` (values in [-1, 1], peak-to-peak 2), pooled over all pixels. */
export function psnr(a: Tensor, b: Tensor): number {
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += (x[i]! - y[i]!) ** 2;
  return 10 * Math.log10(4 / (sum / x.length));
}

/** A solver setting of the round-trip table. */
export interface Setting {
  /** `solver_order`, 1 to 3. */
  order: 1 | 2 | 3;
  /** Karras sigmas instead of linspace timesteps. */
  karras: boolean;
  /** Inference steps, both ways. */
  steps: number;
}

/** The inverse and forward schedulers of the model's config with a setting's order and sigmas. */
export function schedulers(
  config: Record<string, unknown>,
  { order, karras }: Pick<Setting, "order" | "karras">,
  finalSigmasType: "zero" | "sigma_min" = "zero",
): {
  inverse: DPMSolverMultistepInverseScheduler;
  forward: DPMSolverMultistepScheduler;
} {
  const overrides = { solver_order: order, use_karras_sigmas: karras };
  return {
    inverse: DPMSolverMultistepInverseScheduler.fromConfig(config, overrides),
    forward: DPMSolverMultistepScheduler.fromConfig(config, {
      ...overrides,
      final_sigmas_type: finalSigmasType,
    }),
  };
}

/** A progress callback told which half of the loop reports. */
export type Progress = (
  phase: "invert" | "generate",
  progress: LoopProgress,
) => void;

/** The result of {@link roundTrip}. */
export interface RoundTrip {
  /** The inverted noise. */
  noise: Tensor;
  /** The reconstruction from it. */
  reconstruction: Tensor;
  /** PSNR of the reconstruction against the originals. */
  psnr: number;
}

/**
 * Inverts `images` with their true classes (no guidance) and regenerates them with the same
 * setting. The inversion starts from the image as the sample at t = 0 (sigma ≈ 0.01 for the
 * linear betas), so by default the regeneration ends there too (`final_sigmas_type`
 * "sigma_min"); "zero" adds a last denoising step, `x − sigma·eps(x)`, that the inversion never
 * took, and the model's noise prediction on a clean digit then caps the PSNR.
 */
export async function roundTrip(
  digits: Pick<Digits, "model" | "config">,
  images: Tensor,
  labels: Int32Array,
  setting: Setting,
  onProgress?: Progress,
  finalSigmasType: "zero" | "sigma_min" = "sigma_min",
): Promise<RoundTrip> {
  const { inverse, forward } = schedulers(
    digits.config,
    setting,
    finalSigmasType,
  );
  const inverted = await invert(digits.model, images, inverse, {
    numInferenceSteps: setting.steps,
    classLabels: labels,
    onProgress: (p) => onProgress?.("invert", p),
  });
  const reconstruction = await generate(
    digits.model,
    inverted.sample,
    forward,
    {
      numInferenceSteps: setting.steps,
      classLabels: labels,
      startSigma: inverted.sigma,
      onProgress: (p) => onProgress?.("generate", p),
    },
  );
  return {
    noise: inverted.sample,
    reconstruction,
    psnr: psnr(images, reconstruction),
  };
}

/** Options of {@link edit}. */
export interface EditOptions extends Setting {
  /** Guidance scale of the regeneration towards the target class. */
  guidanceScale: number;
  /** Fraction of the schedule inverted and regenerated (1: all the way to noise). */
  strength: number;
}

/**
 * Class edits: inverts each image with its own class (no guidance), then regenerates from the
 * inverted sample with the target class and guidance.
 */
export async function edit(
  digits: Pick<Digits, "model" | "config">,
  images: Tensor,
  labels: Int32Array,
  targets: Int32Array,
  options: EditOptions,
  onProgress?: Progress,
): Promise<Tensor> {
  const { inverse, forward } = schedulers(digits.config, options);
  const inverted = await invert(digits.model, images, inverse, {
    numInferenceSteps: options.steps,
    classLabels: labels,
    strength: options.strength,
    onProgress: (p) => onProgress?.("invert", p),
  });
  return await generate(digits.model, inverted.sample, forward, {
    numInferenceSteps: options.steps,
    classLabels: targets,
    guidanceScale: options.guidanceScale,
    startSigma: inverted.sigma,
    onProgress: (p) => onProgress?.("generate", p),
  });
}

/** Repeats each of the B items of `images` `k` times (a copy), [B·k, ...]. */
export function repeatItems(images: Tensor, k: number): Tensor {
  const [batch, ...rest] = images.shape as number[];
  const size = images.size / batch!;
  const data = images.toFloat32Array();
  const out = new Float32Array(data.length * k);
  for (let b = 0; b < batch!; b++) {
    for (let j = 0; j < k; j++) {
      out.set(data.subarray(b * size, (b + 1) * size), (b * k + j) * size);
    }
  }
  return new Tensor(out, [batch! * k, ...rest]);
}

/**
 * A grayscale PNG of a grid of 8×8 images: one row per entry of `rows`, each a list of [1, 8, 8]
 * or [8, 8] tensors (or `null` for a gap), drawn as dark ink on white, `scale` pixels per pixel.
 * Images map [-1, 1] to white..black; pass `range` to map another interval (noise: [-3, 3]).
 */
export function pngGrid(
  rows: (({ image: Tensor; range?: [number, number] }) | null)[][],
  scale = 4,
): Uint8Array {
  const tile = 8 * scale;
  const gap = 2;
  const columns = Math.max(...rows.map((r) => r.length));
  const width = columns * (tile + gap) + gap;
  const height = rows.length * (tile + gap) + gap;
  const pixels = new Uint8Array(width * height).fill(255);
  rows.forEach((row, r) =>
    row.forEach((cell, c) => {
      if (cell === null) return;
      const [lo, hi] = cell.range ?? [-1, 1];
      const v = cell.image.toFloat32Array();
      for (let y = 0; y < tile; y++) {
        for (let x = 0; x < tile; x++) {
          const value = v[Math.floor(y / scale) * 8 + Math.floor(x / scale)]!;
          const ink = Math.min(1, Math.max(0, (value - lo) / (hi - lo)));
          pixels[
            (gap + r * (tile + gap) + y) * width + gap +
            c * (tile + gap) + x
          ] = Math.round(255 * (1 - ink));
        }
      }
    })
  );
  return encode({ width, height, data: pixels, channels: 1, depth: 8 });
}

/** Item `i` of a batch as a [1, 8, 8] view. */
export function item(images: Tensor, i: number): Tensor {
  return images.slice(0, i, i + 1).reshape([1, 8, 8]);
}
