// diffusers' own tests for this scheduler (tests/schedulers/test_scheduler_dpm_multi_inverse.py at
// v0.37.0), ported with its dummy model, its deterministic sample and its expected values.
import assert from "node:assert/strict";
import { f32 } from "../lib/_f32.ts";
import {
  DPMSolverMultistepInverseScheduler,
  type SchedulerConfig,
  Tensor,
} from "../mod.ts";
import {
  dummyModel,
  dummySampleDeter,
  meanAbs,
  TEST_CONFIG,
} from "./_diffusers_fixtures.ts";

function testConfig(
  overrides: Partial<SchedulerConfig> = {},
): Partial<SchedulerConfig> {
  return { ...TEST_CONFIG, ...overrides };
}

function fullLoop(scheduler: DPMSolverMultistepInverseScheduler): Tensor {
  scheduler.setTimesteps(10);
  let sample = dummySampleDeter();
  for (const t of scheduler.timesteps) {
    sample = scheduler.step(dummyModel(sample, t), t, sample).prevSample;
  }
  return sample;
}

Deno.test("full loop matches diffusers' expected mean |x| 0.7047", () => {
  const mean = meanAbs(
    fullLoop(new DPMSolverMultistepInverseScheduler(testConfig())),
  );
  assert.ok(Math.abs(mean - 0.7047) < 1e-3, `${mean}`);
});

Deno.test("full loop with thresholding matches diffusers' 19.8933", () => {
  const scheduler = new DPMSolverMultistepInverseScheduler(
    testConfig({
      thresholding: true,
      dynamic_thresholding_ratio: 0.87,
      sample_max_value: 0.5,
    }),
  );
  const mean = meanAbs(fullLoop(scheduler));
  assert.ok(Math.abs(mean - 19.8933) < 1e-3, `${mean}`);
});

Deno.test("full loop with v-prediction matches diffusers' 1.5194", () => {
  const scheduler = new DPMSolverMultistepInverseScheduler(
    testConfig({ prediction_type: "v_prediction" }),
  );
  const mean = meanAbs(fullLoop(scheduler));
  assert.ok(Math.abs(mean - 1.5194) < 1e-3, `${mean}`);
});

Deno.test("full loop with Karras sigmas and v-prediction matches diffusers' 1.7833", () => {
  const scheduler = new DPMSolverMultistepInverseScheduler(
    testConfig({ prediction_type: "v_prediction", use_karras_sigmas: true }),
  );
  const mean = meanAbs(fullLoop(scheduler));
  assert.ok(Math.abs(mean - 1.7833) < 2e-3, `${mean}`);
});

Deno.test("switching through a DPMSolverMultistepScheduler config keeps the result", () => {
  const scheduler = new DPMSolverMultistepInverseScheduler(testConfig());
  // What diffusers' forward scheduler writes for the same settings: extra keys are ignored.
  const forwardConfig = {
    ...scheduler.toJSON(),
    _class_name: "DPMSolverMultistepScheduler",
    use_lu_lambdas: false,
    final_sigmas_type: "zero",
    rescale_betas_zero_snr: false,
    variance_type: null,
    use_dynamic_shifting: false,
    time_shift_type: "exponential",
  };
  const switched = DPMSolverMultistepInverseScheduler.fromConfig(forwardConfig);
  const mean = meanAbs(fullLoop(switched));
  assert.ok(Math.abs(mean - 0.7047) < 1e-3, `${mean}`);
});

Deno.test("setTimesteps(num_train_timesteps) gives unique timesteps", () => {
  for (
    const overrides of [{}, { use_karras_sigmas: true }, {
      timestep_spacing: "trailing" as const,
    }]
  ) {
    const scheduler = new DPMSolverMultistepInverseScheduler(
      testConfig(overrides),
    );
    scheduler.setTimesteps(scheduler.config.num_train_timesteps);
    assert.equal(
      new Set(scheduler.timesteps).size,
      scheduler.numInferenceSteps,
    );
    assert.equal(scheduler.sigmas.length, scheduler.timesteps.length + 1);
  }
});

// diffusers' check_over_configs: a scheduler saved and reloaded steps identically, from dummy
// past residuals, for every configuration the suite sweeps.
const sweep: Partial<SchedulerConfig>[] = [
  ...[25, 50, 100, 999, 1000].map((n) => ({ num_train_timesteps: n })),
  ...[1, 2, 3].flatMap((solver_order) =>
    (["midpoint", "heun"] as const).flatMap((solver_type) =>
      [0.5, 1.0, 2.0].flatMap((sample_max_value) =>
        (["epsilon", "sample"] as const).map((prediction_type) => ({
          thresholding: true,
          prediction_type,
          sample_max_value,
          solver_order,
          solver_type,
        }))
      )
    )
  ),
  { prediction_type: "v_prediction" },
  { lower_order_final: true },
  { lambda_min_clipped: -5.1 },
  { variance_type: "learned_range" },
  { timestep_spacing: "trailing" },
  { timestep_spacing: "leading" },
  { use_beta_sigmas: true },
  { use_exponential_sigmas: true },
];

Deno.test("a saved and reloaded scheduler steps identically (diffusers' check_over_configs)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const overrides of sweep) {
      const scheduler = new DPMSolverMultistepInverseScheduler(
        testConfig(overrides),
      );
      await scheduler.saveConfig(dir);
      const reloaded = await DPMSolverMultistepInverseScheduler.fromPretrained(
        dir,
      );
      assert.deepEqual(reloaded.toJSON(), scheduler.toJSON());
      const sample = dummySampleDeter().clone();
      const residual = new Tensor(
        sample.toFloat32Array().map((x) => f32(0.1 * x)),
        sample.shape,
      );
      const past = [0.2, 0.15, 0.1].map((c) =>
        new Tensor(
          residual.toFloat32Array().map((x) => f32(x + c)),
          sample.shape,
        )
      );
      let a = sample;
      let b = sample;
      for (const s of [scheduler, reloaded]) {
        s.setTimesteps(25);
        s.modelOutputs = past.slice(0, s.config.solver_order);
      }
      for (let i = 0; i <= scheduler.config.solver_order; i++) {
        const t = scheduler.timesteps[i]!;
        a = scheduler.step(residual, t, a).prevSample;
        b = reloaded.step(residual, t, b).prevSample;
        assert.deepEqual(a.toFloat32Array(), b.toFloat32Array());
        assert.ok(a.toFloat32Array().every(Number.isFinite));
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every algorithm, solver type, order and prediction type gives a finite full loop", () => {
  for (const algorithm_type of ["dpmsolver", "dpmsolver++"] as const) {
    for (const solver_type of ["midpoint", "heun"] as const) {
      for (const solver_order of [1, 2, 3]) {
        for (const prediction_type of ["epsilon", "sample"] as const) {
          const scheduler = new DPMSolverMultistepInverseScheduler(
            testConfig({
              algorithm_type,
              solver_type,
              solver_order,
              prediction_type,
            }),
          );
          assert.ok(
            fullLoop(scheduler).toFloat32Array().every((v) => !Number.isNaN(v)),
          );
        }
      }
    }
  }
});

Deno.test("every inference step count from 1 to 1000 steps once from timestep 0", () => {
  for (const n of [1, 2, 3, 5, 10, 50, 100, 999, 1000]) {
    const scheduler = new DPMSolverMultistepInverseScheduler(testConfig());
    scheduler.setTimesteps(n);
    const sample = dummySampleDeter();
    const out = scheduler.step(dummyModel(sample, 0), 0, sample).prevSample;
    assert.deepEqual(out.shape, sample.shape);
    assert.ok(out.toFloat32Array().every(Number.isFinite));
  }
});
