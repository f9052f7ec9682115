// Parity of DPMSolverMultistepScheduler with diffusers v0.37.0 on every forward case of
// reference/manifest.json (reference/forward/<case>/, produced by reference/generate.py). Tolerances
// as for the inverse: timesteps exact; sigmas 1e-6 relative; each step fed diffusers' own inputs
// (and, for SDE cases, its recorded noise) within 1e-5 × max(1, max|reference|); the whole loop on
// our own samples, with SDE noise from TorchGenerator(seed), within 1e-4 of that scale.
import assert from "node:assert/strict";
import type { Tensor } from "../mod.ts";
import { TorchGenerator } from "../lib/random.ts";
import { readNpy, readNpyTensor } from "../lib/npy.ts";
import {
  bitEqual,
  forwardCases,
  forwardFile,
  forwardSchedulerFor,
  forwardTrajectory,
  LOOP_TOLERANCE,
  maxAbs,
  maxAbsDiff,
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

for (const c of forwardCases) {
  Deno.test(`forward ${c.name}: timesteps and sigmas match diffusers`, async () => {
    const scheduler = await forwardSchedulerFor(c);
    assert.deepEqual(Array.from(scheduler.timesteps), c.timesteps);
    assert.equal(scheduler.sigmas.length, c.sigmas.length);
    c.sigmas.forEach((expected, i) => {
      const error = expected === 0
        ? Math.abs(scheduler.sigmas[i]!)
        : Math.abs(scheduler.sigmas[i]! - expected) / Math.abs(expected);
      if (error > worst.sigma.error) worst.sigma = { error, case: c.name };
      assert.ok(
        error <= SIGMA_TOLERANCE,
        `sigma ${i}: ${scheduler.sigmas[i]} vs ${expected}`,
      );
    });
  });

  if (c.kind === "add_noise") {
    Deno.test(`forward ${c.name}: addNoise matches diffusers`, async () => {
      const scheduler = await forwardSchedulerFor(c);
      const load = (f: string) => readNpyTensor(forwardFile(c, f));
      const timesteps =
        (await readNpy(forwardFile(c, "noise_timesteps.npy"))).data;
      const noisy = scheduler.addNoise(
        await load("original.npy"),
        await load("noise.npy"),
        timesteps,
      );
      const expected = await load("noisy.npy");
      assert.ok(
        maxAbsDiff(noisy, expected) <=
          STEP_TOLERANCE * Math.max(1, maxAbs(expected)),
      );
    });
    continue;
  }

  Deno.test(`forward ${c.name}: each step matches diffusers on diffusers' inputs`, async () => {
    const scheduler = await forwardSchedulerFor(c);
    const { samples, modelOutputs, noises } = await forwardTrajectory(c);
    assert.equal(samples.length, c.steps + 1);
    for (let i = 0; i < c.steps; i++) {
      const t = scheduler.timesteps[i]!;
      const options = noises ? { varianceNoise: noises[i]! } : {};
      const out =
        scheduler.step(modelOutputs[i]!, t, samples[i]!, options).prevSample;
      const expected = samples[i + 1]!;
      const error = maxAbsDiff(out, expected) / Math.max(1, maxAbs(expected));
      totalSteps++;
      if (bitEqual(out, expected)) exactSteps++;
      if (!(error <= worst.step.error)) {
        worst.step = { error, case: `${c.name} step ${i}` };
      }
      assert.ok(error <= STEP_TOLERANCE, `step ${i}: relative error ${error}`);
    }
  });

  Deno.test(`forward ${c.name}: a whole sampling loop with the stand-in model matches diffusers`, async () => {
    const scheduler = await forwardSchedulerFor(c);
    const { samples } = await forwardTrajectory(c);
    let sample: Tensor = samples[0]!.clone();
    const generator = c.seed === null ? undefined : new TorchGenerator(c.seed);
    for (const t of scheduler.timesteps) {
      const output = standinModel(sample, t, c.learned_variance);
      sample = scheduler.step(
        output,
        t,
        sample,
        generator ? { generator } : {},
      ).prevSample;
    }
    const expected = samples[c.steps]!;
    const error = maxAbsDiff(sample, expected) / Math.max(1, maxAbs(expected));
    if (!(error <= worst.loop.error)) worst.loop = { error, case: c.name };
    assert.ok(error <= LOOP_TOLERANCE, `relative error ${error}`);
  });
}

Deno.test("forward reference parity summary", () => {
  console.log(
    `forward reference cases: ${forwardCases.length}; steps bit-exact: ${exactSteps}/${totalSteps}; worst step error ${
      worst.step.error.toExponential(2)
    } (${worst.step.case}); worst loop error ${
      worst.loop.error.toExponential(2)
    } (${worst.loop.case}); worst sigma error ${
      worst.sigma.error.toExponential(2)
    } (${worst.sigma.case})`,
  );
  assert.ok(totalSteps > 0);
});
