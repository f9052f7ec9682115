// The digits model through ONNX Runtime (issue 8): parity with the training script's torch
// outputs, and round-trip PSNR targets on 50 held-out digits. Needs --allow-read --allow-env --allow-ffi.
import assert from "node:assert/strict";
import * as ort from "npm:onnxruntime-node@1.30.0";
import type { Tensor } from "../mod.ts";
import { readNpy, readNpyTensor } from "../npy.ts";
import { onnxDiffusionModel, onnxFunction } from "../onnx.ts";
import {
  DIGITS_DIR,
  firstItems,
  loadDigits,
  NULL_CLASS,
  roundTrip,
  type Setting,
} from "../examples/_digits.ts";

const path = (name: string) => new URL(name, DIGITS_DIR).pathname;

function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
}

Deno.test("onnxDiffusionModel() matches torch's UNet output (reference/models/digits/parity/noise_pred.npy) within 1e-5", async () => {
  const session = await ort.InferenceSession.create(path("unet.onnx"));
  const model = onnxDiffusionModel(session, { nullClassLabel: NULL_CLASS });
  const sample = await readNpyTensor(path("parity/sample.npy"));
  const timesteps = (await readNpyTensor(path("parity/timestep.npy")))
    .toFloat32Array();
  const labels = (await readNpy(path("parity/class_labels.npy")))
    .data as Int32Array;
  const expected = await readNpyTensor(path("parity/noise_pred.npy"));
  // The model function takes one timestep per call: run the items one by one.
  for (let i = 0; i < sample.shape[0]!; i++) {
    const out = await model(
      sample.slice(0, i, i + 1),
      timesteps[i]!,
      labels.subarray(i, i + 1),
    );
    const diff = maxAbsDiff(out, expected.slice(0, i, i + 1).contiguous());
    assert.ok(diff <= 1e-5, `item ${i}: max |onnx - torch| = ${diff}`);
  }
});

Deno.test("onnxFunction() matches torch's classifier logits (parity/logits.npy) within 1e-5", async () => {
  const classify = onnxFunction(
    await ort.InferenceSession.create(path("classifier.onnx")),
  );
  const logits = await classify(await readNpyTensor(path("parity/image.npy")));
  const expected = await readNpyTensor(path("parity/logits.npy"));
  const diff = maxAbsDiff(logits, expected);
  assert.ok(diff <= 1e-5, `max |onnx - torch| = ${diff}`);
});

Deno.test("onnxDiffusionModel() guidance equals uncond + scale · (cond − uncond) from separate calls", async () => {
  const session = await ort.InferenceSession.create(path("unet.onnx"));
  const model = onnxDiffusionModel(session, { nullClassLabel: NULL_CLASS });
  const sample = await readNpyTensor(path("parity/sample.npy"));
  const labels = Int32Array.of(1, 2, 3, 4);
  const cond = (await model(sample, 500, labels)).toFloat32Array();
  const uncond = (await model(sample, 500)).toFloat32Array();
  const guided = (await model(sample, 500, labels, 3)).toFloat32Array();
  guided.forEach((v, i) => {
    const expected = uncond[i]! + 3 * (cond[i]! - uncond[i]!);
    assert.ok(Math.abs(v - expected) <= 1e-5, `${v} vs ${expected}`);
  });
});

// Issue 8's targets: 50 held-out digits, true class, no guidance.
const targets: [Setting, number][] = [
  [{ order: 2, karras: false, steps: 50 }, 38],
  [{ order: 2, karras: true, steps: 50 }, 58],
  [{ order: 2, karras: true, steps: 100 }, 58],
  [{ order: 3, karras: true, steps: 50 }, 58],
  [{ order: 3, karras: true, steps: 100 }, 58],
];
const digits = await loadDigits();
const images = firstItems(digits.images, 50);
const labels = digits.labels.subarray(0, 50);
for (const [setting, min] of targets) {
  const name = `order ${setting.order}, ${
    setting.karras ? "Karras" : "linspace"
  }, ${setting.steps} steps`;
  Deno.test(`invert() then generate() reconstructs 50 held-out digits at ≥ ${min} dB (${name})`, async () => {
    const result = await roundTrip(digits, images, labels, setting);
    assert.ok(
      result.reconstruction.toFloat32Array().every(Number.isFinite),
      "non-finite reconstruction",
    );
    assert.ok(
      result.psnr >= min,
      `PSNR ${result.psnr.toFixed(2)} dB < ${min} dB`,
    );
  });
}
