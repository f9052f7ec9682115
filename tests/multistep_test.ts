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
  forwardCases,
  forwardFile,
  forwardSchedulerFor,
  forwardTrajectory,
  standinModel,
} from "./_reference.ts";
import { SchedulerParity } from "./_parity.ts";

const parity = new SchedulerParity();

for (const c of forwardCases) {
  Deno.test(`forward ${c.name}: timesteps and sigmas match diffusers`, async () => {
    const scheduler = await forwardSchedulerFor(c);
    assert.deepEqual(Array.from(scheduler.timesteps), c.timesteps);
    parity.checkSigmas(scheduler.sigmas, c.sigmas, c.name);
  });

  if (c.mu !== null || c.custom_timesteps === null) {
    // setTimesteps reuses the last schedule it built: a repeat after the public arrays were
    // overwritten, or after a schedule of another count or `mu`, must give diffusers' values.
    Deno.test(`forward ${c.name}: a repeated setTimesteps gives diffusers' schedule`, async () => {
      const scheduler = await forwardSchedulerFor(c);
      const n = c.num_inference_steps!;
      const setCase = () =>
        scheduler.setTimesteps(n, c.mu === null ? {} : { mu: c.mu });
      scheduler.timesteps.fill(-1);
      scheduler.sigmas.fill(-1);
      setCase();
      scheduler.setTimesteps(
        n === 1 ? 2 : n - 1,
        c.mu === null ? {} : { mu: c.mu + 0.25 },
      );
      if (c.mu !== null) scheduler.setTimesteps(n, { mu: c.mu + 0.25 });
      setCase();
      assert.deepEqual(Array.from(scheduler.timesteps), c.timesteps);
      parity.checkSigmas(scheduler.sigmas, c.sigmas, c.name);
    });
  }

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
      parity.checkAddNoise(noisy, await load("noisy.npy"), c.name);
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
      parity.checkStep(out, samples[i + 1]!, `${c.name} step ${i}`);
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
    parity.checkLoop(sample, samples[c.steps]!, c.name);
  });
}

Deno.test("forward reference parity summary", () => {
  console.log(
    `forward reference cases: ${forwardCases.length}; ${parity.summary()}`,
  );
  assert.ok(parity.steps > 0);
});
