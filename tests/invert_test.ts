// invert() and generate() (lib/invert.ts, lib/generate.ts) with an analytic stand-in model: the
// steps `strength` allows, where `startSigma` starts, progress reports, argument errors, and a
// partial round trip that lands back on the input. The digits model's targets are in onnx_test.ts.
import assert from "node:assert/strict";
import {
  DPMSolverMultistepInverseScheduler,
  DPMSolverMultistepScheduler,
  generate,
  invert,
  type LoopProgress,
  Tensor,
} from "../mod.ts";

// The stand-in model of reference/generate.py: eps = (0.8 − 0.3 s)·tanh(x) + (0.2 + 0.1 s)·x.
const model = (x: Tensor, t: number) => {
  const s = t / 1000;
  return new Tensor(
    x.toFloat32Array().map((v) =>
      (0.8 - 0.3 * s) * Math.tanh(v) + (0.2 + 0.1 * s) * v
    ),
    x.shape,
  );
};
const image = Tensor.from(
  Array.from({ length: 32 }, (_, i) => Math.sin(i * 0.7)),
  [2, 1, 4, 4],
);

function psnr(a: Tensor, b: Tensor): number {
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  const mse = x.reduce((s, v, i) => s + (v - y[i]!) ** 2, 0) / x.length;
  return 10 * Math.log10(4 / mse);
}

Deno.test("invert() takes trunc(n · strength) steps and reports each", async () => {
  const seen: LoopProgress[] = [];
  const result = await invert(
    model,
    image,
    new DPMSolverMultistepInverseScheduler(),
    {
      numInferenceSteps: 20,
      strength: 0.55,
      onProgress: (p) => void seen.push(p),
    },
  );
  assert.equal(result.steps, 11);
  assert.deepEqual(
    seen.map((p) => p.step),
    Array.from({ length: 11 }, (_, i) => i + 1),
  );
  assert.ok(seen.every((p) => p.steps === 11));
  assert.equal(seen.at(-1)!.sample, result.sample);
});

Deno.test("invert() with strength 0 returns the image itself", async () => {
  const scheduler = new DPMSolverMultistepInverseScheduler();
  const result = await invert(model, image, scheduler, {
    numInferenceSteps: 10,
    strength: 0,
  });
  assert.equal(result.sample, image);
  assert.equal(result.sigma, scheduler.sigmas[0]);
});

for (const config of [{}, { use_karras_sigmas: true }]) {
  const name = "use_karras_sigmas" in config ? "Karras" : "linspace";
  Deno.test(`generate() from invert()'s sigma regenerates a partial inversion (${name}, strength 0.5)`, async () => {
    const inverse = new DPMSolverMultistepInverseScheduler(config);
    const inverted = await invert(model, image, inverse, {
      numInferenceSteps: 40,
      strength: 0.5,
    });
    const forward = new DPMSolverMultistepScheduler({
      ...config,
      final_sigmas_type: "sigma_min",
    });
    let first: number | undefined;
    const back = await generate(model, inverted.sample, forward, {
      numInferenceSteps: 40,
      startSigma: inverted.sigma,
      onProgress: ({ step }) => void (first ??= step),
    });
    // The forward schedule holds the sigma the inversion reached: the start is exact.
    assert.equal(forward.sigmas[forward.beginIndex ?? 0], inverted.sigma);
    assert.equal(first, 1);
    assert.ok(psnr(image, back) > 40, `PSNR ${psnr(image, back)}`);
  });
}

Deno.test("generate() with strength runs the last trunc(n · strength) steps", async () => {
  const forward = new DPMSolverMultistepScheduler();
  let steps = 0;
  await generate(model, image, forward, {
    numInferenceSteps: 10,
    strength: 0.3,
    onProgress: (p) => void (steps = p.steps),
  });
  assert.equal(steps, 3);
  assert.equal(forward.beginIndex, 7);
});

Deno.test("invert() and generate() pass class labels and the guidance scale to the model", async () => {
  const calls: [number[], number | undefined][] = [];
  const recording = (
    x: Tensor,
    _t: number,
    labels?: Int32Array,
    scale?: number,
  ) => {
    calls.push([Array.from(labels ?? []), scale]);
    return Promise.resolve(x.clone());
  };
  await invert(recording, image, new DPMSolverMultistepInverseScheduler(), {
    numInferenceSteps: 2,
    classLabels: [4, 5],
  });
  await generate(recording, image, new DPMSolverMultistepScheduler(), {
    numInferenceSteps: 2,
    classLabels: Int32Array.of(6, 7),
    guidanceScale: 2.5,
  });
  assert.deepEqual(calls, [[[4, 5], undefined], [[4, 5], undefined], [[
    6,
    7,
  ], 2.5], [[6, 7], 2.5]]);
});

Deno.test("invert() and generate() throw on bad strength, labels, start sigma or no schedule", async () => {
  const inverse = new DPMSolverMultistepInverseScheduler();
  await assert.rejects(
    invert(model, image, inverse, { numInferenceSteps: 5, strength: 1.5 }),
    {
      name: "RangeError",
      message:
        "Cannot invert as 'strength' must be in [0, 1]: current value is 1.5",
    },
  );
  await assert.rejects(invert(model, image, inverse), {
    name: "RangeError",
    message:
      "Cannot invert as the scheduler has no schedule: pass 'numInferenceSteps' or call setTimesteps first",
  });
  await assert.rejects(
    invert(model, image, inverse, { numInferenceSteps: 5, classLabels: [1] }),
    {
      name: "TypeError",
      message:
        "Cannot invert as 'classLabels' must hold one label per batch item (2): current length is 1",
    },
  );
  await assert.rejects(
    generate(model, image, new DPMSolverMultistepScheduler(), {
      numInferenceSteps: 5,
      startSigma: 0,
    }),
    {
      name: "RangeError",
      message:
        "Cannot generate as 'startSigma' must be positive: current value is 0",
    },
  );
});
