// Parity with diffusers v0.37.0 on every case of reference/manifest.json (produced by
// reference/generate.py). Tolerances: timesteps exact; sigmas 1e-6 relative; each step fed
// diffusers' own inputs within 1e-5 × max(1, max|reference|); the whole loop on our own samples
// within 1e-4 of that scale.
import assert from "node:assert/strict";
import {
  cases,
  float32,
  int32,
  row,
  schedulerFor,
  standinModel,
} from "./_reference.ts";
import { SchedulerParity } from "./_parity.ts";

const parity = new SchedulerParity();

for (const c of cases) {
  Deno.test(`${c.name}: timesteps and sigmas match diffusers`, async () => {
    const scheduler = await schedulerFor(c);
    const timesteps = Array.from(await int32(c, "timesteps.npy"));
    const sigmas = (await float32(c, "sigmas.npy")).toFloat32Array();
    assert.deepEqual(Array.from(scheduler.timesteps), timesteps);
    parity.checkSigmas(scheduler.sigmas, sigmas, c.name);
    // setTimesteps reuses the schedule it built last: overwriting the public arrays, or a
    // schedule of another count in between, must not show in a repeat.
    scheduler.timesteps.fill(-1);
    scheduler.sigmas.fill(-1);
    scheduler.setTimesteps(c.num_inference_steps);
    scheduler.setTimesteps(c.num_inference_steps === 1 ? 2 : 1);
    scheduler.setTimesteps(c.num_inference_steps);
    assert.deepEqual(Array.from(scheduler.timesteps), timesteps);
    parity.checkSigmas(scheduler.sigmas, sigmas, c.name);
  });

  if (c.kind === "add_noise") {
    Deno.test(`${c.name}: addNoise matches diffusers`, async () => {
      const scheduler = await schedulerFor(c);
      const noisy = scheduler.addNoise(
        await float32(c, "original.npy"),
        await float32(c, "noise.npy"),
        await int32(c, "noise_timesteps.npy"),
      );
      parity.checkAddNoise(noisy, await float32(c, "noisy.npy"), c.name);
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
      parity.checkStep(out, row(samples, i + 1), `${c.name} step ${i}`);
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
    parity.checkLoop(sample, row(samples, c.steps), c.name);
  });
}

Deno.test("reference parity summary", () => {
  console.log(`reference cases: ${cases.length}; ${parity.summary()}`);
  assert.ok(parity.steps > 0);
});
