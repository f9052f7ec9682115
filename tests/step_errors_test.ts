// The step contract: misuse gets a clear error; non-finite model outputs propagate as in diffusers.
import assert from "node:assert/strict";
import { DPMSolverMultistepInverseScheduler, Tensor } from "../mod.ts";

const sample = () =>
  Tensor.from([0.1, -0.2, 0.3, 0.4, 0.5, -0.6], [1, 3, 2, 1]);

Deno.test("step() and setTimesteps() misuse throw errors that name the problem", () => {
  const scheduler = new DPMSolverMultistepInverseScheduler();
  const x = sample();
  const cases: [() => unknown, string, RegExp][] = [
    [
      () => scheduler.step(x, 0, x),
      "Error",
      /call setTimesteps\(numInferenceSteps\) first/,
    ],
    [
      () => scheduler.setTimesteps(0),
      "RangeError",
      /'numInferenceSteps' must be an integer in \[1, 1000\]: current value is 0/,
    ],
    [() => scheduler.setTimesteps(1001), "RangeError", /current value is 1001/],
    [() => scheduler.setTimesteps(2.5), "RangeError", /current value is 2.5/],
  ];
  for (const [call, name, message] of cases) {
    assert.throws(call, { name, message });
  }

  scheduler.setTimesteps(2);
  const more: [() => unknown, string, RegExp][] = [
    [
      () => scheduler.step(x, 0.5, x),
      "TypeError",
      /'timestep' must be an integer from the schedule: current value is 0.5/,
    ],
    [
      () => scheduler.step(Tensor.zeros([1, 3, 2, 2]), 0, x),
      "TypeError",
      /'modelOutput' must have the sample's shape \[1, 3, 2, 1\]: current value is \[1, 3, 2, 2\]/,
    ],
    [
      () => scheduler.step(Tensor.zeros([1, 6, 2, 1]), 0, x),
      "TypeError",
      /current value is \[1, 6, 2, 1\]/,
    ],
    [
      () =>
        scheduler.step(
          {
            data: new Float64Array(6),
            shape: [1, 3, 2, 1],
          } as unknown as Tensor,
          0,
          x,
        ),
      "TypeError",
      /argument is not a Tensor: current value is Object/,
    ],
    [
      () => scheduler.step(x, 0, x, { out: Tensor.zeros([6]) }),
      "TypeError",
      /'out' must have the sample's shape/,
    ],
  ];
  for (const [call, name, message] of more) {
    assert.throws(call, { name, message });
  }

  for (const t of scheduler.timesteps) scheduler.step(x, t, x);
  assert.throws(() => scheduler.step(x, 0, x), {
    name: "RangeError",
    message:
      /the schedule's 2 steps are done \(step index 2\): call setTimesteps again/,
  });
});

Deno.test("a learned-variance model output (twice the channels) is sliced, not rejected", () => {
  const scheduler = new DPMSolverMultistepInverseScheduler({
    variance_type: "learned_range",
  });
  scheduler.setTimesteps(3);
  const x = sample();
  const withVariance = new Tensor(new Float32Array(12).fill(0.25), [
    1,
    6,
    2,
    1,
  ]);
  const plain = new Tensor(new Float32Array(6).fill(0.25), [1, 3, 2, 1]);
  const a = scheduler.step(withVariance, 0, x).prevSample;
  scheduler.setTimesteps(3);
  const b = scheduler.step(plain, 0, x).prevSample;
  assert.deepEqual(a.toFloat32Array(), b.toFloat32Array());
});

Deno.test("non-finite model outputs propagate element-wise as in diffusers; thresholding spreads NaN over the item", () => {
  const scheduler = new DPMSolverMultistepInverseScheduler();
  scheduler.setTimesteps(4);
  const x = sample();
  const bad = Tensor.from([NaN, Infinity, 0, 0, 0, 0], [1, 3, 2, 1]);
  const out = scheduler.step(bad, 0, x).prevSample.toFloat32Array();
  assert.ok(Number.isNaN(out[0]));
  assert.ok(!Number.isFinite(out[1]!));
  assert.ok(out.slice(2).every(Number.isFinite));

  // torch.quantile of a row holding NaN is NaN, so the whole item becomes NaN.
  const thresholded = new DPMSolverMultistepInverseScheduler({
    thresholding: true,
  });
  thresholded.setTimesteps(4);
  const all = thresholded.step(bad, 0, x).prevSample.toFloat32Array();
  assert.ok(all.every(Number.isNaN));
});

Deno.test("step(..., { out }) writes into the given tensor and allocates no result", () => {
  const scheduler = new DPMSolverMultistepInverseScheduler();
  scheduler.setTimesteps(5);
  const reference = new DPMSolverMultistepInverseScheduler();
  reference.setTimesteps(5);
  let x = sample();
  let y = sample();
  const out = Tensor.zeros(x.shape);
  for (const t of scheduler.timesteps) {
    const eps = new Tensor(x.toFloat32Array().map((v) => 0.5 * v), x.shape);
    const result = scheduler.step(eps, t, x, { out }).prevSample;
    assert.equal(result, out);
    x = out.clone();
    y = reference.step(eps, t, y).prevSample;
    assert.deepEqual(x.toFloat32Array(), y.toFloat32Array());
  }
});
