// Parity with diffusers v0.37.0 on every case of reference/manifest.json (produced by
// reference/generate.py). Tolerances: timesteps exact; sigmas 1e-6 relative; each step fed
// diffusers' own inputs within 1e-5 × max(1, max|reference|); the whole loop on our own samples
// within 1e-4 of that scale.
import assert from "node:assert/strict";
import {
  bitEqual,
  cases,
  float32,
  int32,
  LOOP_TOLERANCE,
  maxAbs,
  maxAbsDiff,
  row,
  schedulerFor,
  SIGMA_TOLERANCE,
  standinModel,
  STEP_TOLERANCE,
} from "./_reference.ts";

const worst = {
  step: { error: 0, case: "" },
  loop: { error: 0, case: "" },
  sigma: { error: 0, case: "" },
};
let exactSteps = 0;
let totalSteps = 0;

for (const c of cases) {
  Deno.test(`${c.name}: timesteps and sigmas match diffusers`, async () => {
    const scheduler = await schedulerFor(c);
    assert.deepEqual(
      Array.from(scheduler.timesteps),
      Array.from(await int32(c, "timesteps.npy")),
    );
    const sigmas = (await float32(c, "sigmas.npy")).toFloat32Array();
    assert.equal(scheduler.sigmas.length, sigmas.length);
    sigmas.forEach((expected, i) => {
      const error = Math.abs(scheduler.sigmas[i]! - expected) /
        Math.abs(expected);
      if (error > worst.sigma.error) worst.sigma = { error, case: c.name };
      assert.ok(
        error <= SIGMA_TOLERANCE,
        `sigma ${i}: ${scheduler.sigmas[i]} vs ${expected}`,
      );
    });
  });

  if (c.kind === "add_noise") {
    Deno.test(`${c.name}: addNoise matches diffusers`, async () => {
      const scheduler = await schedulerFor(c);
      const noisy = scheduler.addNoise(
        await float32(c, "original.npy"),
        await float32(c, "noise.npy"),
        await int32(c, "noise_timesteps.npy"),
      );
      const expected = await float32(c, "noisy.npy");
      assert.ok(
        maxAbsDiff(noisy, expected) <=
          STEP_TOLERANCE * Math.max(1, maxAbs(expected)),
      );
    });
    continue;
  }

  Deno.test(`${c.name}: each step matches diffusers on diffusers' inputs`, async () => {
    const scheduler = await schedulerFor(c);
    const samples = await float32(c, "samples.npy");
    const modelOutputs = await float32(c, "model_outputs.npy");
    assert.equal(samples.shape[0], c.steps + 1);
    for (let i = 0; i < c.steps; i++) {
      const t = scheduler
        .timesteps[Math.min(i, scheduler.timesteps.length - 1)]!;
      const out =
        scheduler.step(row(modelOutputs, i), t, row(samples, i)).prevSample;
      const expected = row(samples, i + 1);
      const error = maxAbsDiff(out, expected) / Math.max(1, maxAbs(expected));
      totalSteps++;
      if (bitEqual(out, expected)) exactSteps++;
      if (error > worst.step.error) {
        worst.step = { error, case: `${c.name} step ${i}` };
      }
      assert.ok(error <= STEP_TOLERANCE, `step ${i}: relative error ${error}`);
    }
  });

  Deno.test(`${c.name}: a whole inversion with the stand-in model matches diffusers`, async () => {
    const scheduler = await schedulerFor(c);
    const samples = await float32(c, "samples.npy");
    let sample = row(samples, 0).clone();
    // A plain loop over `timesteps`, as users write it.
    for (const t of scheduler.timesteps) {
      sample =
        scheduler.step(standinModel(sample, t, c.learned_variance), t, sample)
          .prevSample;
    }
    const expected = row(samples, c.steps);
    const error = maxAbsDiff(sample, expected) / Math.max(1, maxAbs(expected));
    if (error > worst.loop.error) worst.loop = { error, case: c.name };
    assert.ok(error <= LOOP_TOLERANCE, `relative error ${error}`);
  });
}

Deno.test("reference parity summary", () => {
  console.log(
    `reference cases: ${cases.length}; steps bit-exact: ${exactSteps}/${totalSteps}; worst step error ${
      worst.step.error.toExponential(2)
    } (${worst.step.case}); worst loop error ${
      worst.loop.error.toExponential(2)
    } (${worst.loop.case}); worst sigma error ${
      worst.sigma.error.toExponential(2)
    } (${worst.sigma.case})`,
  );
  assert.ok(totalSteps > 0);
});
