// diffusers' own tests for the forward scheduler (tests/schedulers/test_scheduler_dpm_multi.py at
// v0.37.0), ported with its dummy model, deterministic sample and noise, torch.manual_seed(0) as
// TorchGenerator(0), and its expected values.
import assert from "node:assert/strict";
import {
  type DPMSolverMultistepConfig,
  DPMSolverMultistepInverseScheduler,
  DPMSolverMultistepScheduler,
  type Tensor,
  TorchGenerator,
} from "../mod.ts";
import {
  dummyModel,
  dummyNoiseDeter,
  dummySampleDeter,
  meanAbs,
  TEST_CONFIG,
} from "./_diffusers_fixtures.ts";

function testConfig(
  overrides: Partial<DPMSolverMultistepConfig> = {},
): Partial<DPMSolverMultistepConfig> {
  return {
    ...TEST_CONFIG,
    euler_at_final: false,
    final_sigmas_type: "sigma_min",
    ...overrides,
  };
}

function loop(
  scheduler: DPMSolverMultistepScheduler,
  sample = dummySampleDeter(),
): Tensor {
  const generator = new TorchGenerator(0);
  for (const t of scheduler.timesteps) {
    sample = scheduler.step(dummyModel(sample, t), t, sample, { generator })
      .prevSample;
  }
  return sample;
}

function fullLoop(
  config: Partial<DPMSolverMultistepConfig> = {},
  scheduler = new DPMSolverMultistepScheduler(testConfig(config)),
): Tensor {
  scheduler.setTimesteps(10);
  return loop(scheduler);
}

function assertMean(x: Tensor, expected: number): void {
  const mean = meanAbs(x);
  assert.ok(Math.abs(mean - expected) < 1e-3, `${mean} vs ${expected}`);
}

Deno.test("full loop without noise matches diffusers' mean |x| 0.3301", () => {
  assertMean(fullLoop(), 0.3301);
});

Deno.test("full loop from add_noise at timesteps[5] matches diffusers' 318.4111 and 0.4146", () => {
  const scheduler = new DPMSolverMultistepScheduler(testConfig());
  scheduler.setTimesteps(10);
  const timesteps = scheduler.timesteps.slice(5);
  let sample = scheduler.addNoise(
    dummySampleDeter(),
    dummyNoiseDeter(),
    new Array(4).fill(timesteps[0]),
  );
  for (const t of timesteps) {
    sample = scheduler.step(dummyModel(sample, t), t, sample).prevSample;
  }
  const sum = sample.toFloat32Array().reduce((s, v) => s + Math.abs(v), 0);
  assert.ok(Math.abs(sum - 318.4111) < 1e-2, `${sum}`);
  assertMean(sample, 0.4146);
});

Deno.test("full loop with thresholding matches diffusers' 1.1364", () => {
  assertMean(
    fullLoop({
      thresholding: true,
      dynamic_thresholding_ratio: 0.87,
      sample_max_value: 0.5,
    }),
    1.1364,
  );
});

Deno.test("full loop with v-prediction matches diffusers' 0.2251", () => {
  assertMean(fullLoop({ prediction_type: "v_prediction" }), 0.2251);
});

Deno.test("full loop with Karras sigmas and v-prediction matches diffusers' 0.2096", () => {
  assertMean(
    fullLoop({ prediction_type: "v_prediction", use_karras_sigmas: true }),
    0.2096,
  );
});

Deno.test("full loop with Lu lambdas and v-prediction matches diffusers' 0.1554", () => {
  assertMean(
    fullLoop({ prediction_type: "v_prediction", use_lu_lambdas: true }),
    0.1554,
  );
});

Deno.test("switching through the inverse scheduler's config keeps the result (test_switch)", () => {
  const scheduler = new DPMSolverMultistepScheduler(testConfig());
  assertMean(fullLoop({}, scheduler), 0.3301);
  const inverse = DPMSolverMultistepInverseScheduler.fromConfig(
    scheduler.toJSON(),
  );
  const back = DPMSolverMultistepScheduler.fromConfig(inverse.toJSON(), {
    final_sigmas_type: "sigma_min",
  });
  assertMean(fullLoop({}, back), 0.3301);
});

Deno.test("every algorithm, solver type, order and prediction type gives a finite full loop", () => {
  for (
    const algorithm_type of [
      "dpmsolver",
      "dpmsolver++",
      "sde-dpmsolver",
      "sde-dpmsolver++",
    ] as const
  ) {
    for (const solver_type of ["midpoint", "heun"] as const) {
      for (const solver_order of [1, 2, 3]) {
        for (const prediction_type of ["epsilon", "sample"] as const) {
          const config = {
            algorithm_type,
            solver_type,
            solver_order,
            prediction_type,
          };
          if (algorithm_type === "sde-dpmsolver" && solver_order === 3) {
            assert.throws(() => fullLoop(config), RangeError);
            continue;
          }
          const sample = fullLoop(config).toFloat32Array();
          assert.ok(sample.every(Number.isFinite), JSON.stringify(config));
        }
      }
    }
  }
});

Deno.test("setTimesteps(num_train_timesteps) keeps one timestep per step (test_duplicated_timesteps)", () => {
  const scheduler = new DPMSolverMultistepScheduler(testConfig());
  scheduler.setTimesteps(1000);
  assert.equal(scheduler.timesteps.length, scheduler.numInferenceSteps);
});

Deno.test("custom timesteps give the same loop as the computed ones (test_custom_timesteps)", () => {
  for (const algorithm_type of ["dpmsolver++", "sde-dpmsolver++"] as const) {
    for (
      const prediction_type of ["epsilon", "sample", "v_prediction"] as const
    ) {
      for (const final_sigmas_type of ["sigma_min", "zero"] as const) {
        const config = testConfig({
          algorithm_type,
          prediction_type,
          final_sigmas_type,
        });
        const computed = new DPMSolverMultistepScheduler(config);
        computed.setTimesteps(10);
        const custom = new DPMSolverMultistepScheduler(config);
        custom.setTimesteps(null, { timesteps: computed.timesteps });
        const a = loop(computed).toFloat32Array();
        const b = loop(custom).toFloat32Array();
        const diff = a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0);
        assert.ok(diff < 1e-5, `${algorithm_type} ${prediction_type}`);
      }
    }
  }
});

Deno.test("a saved and reloaded scheduler steps identically, for every config diffusers checks", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const overrides of [
        { num_train_timesteps: 25 },
        { num_train_timesteps: 999 },
        { lower_order_final: true },
        { euler_at_final: true },
        { lambda_min_clipped: -5.1 },
        { variance_type: "learned_range" as const },
        { rescale_betas_zero_snr: true },
        { use_beta_sigmas: true },
        { use_exponential_sigmas: true },
        { thresholding: true, sample_max_value: 2.0, solver_order: 3 },
      ]
    ) {
      const scheduler = new DPMSolverMultistepScheduler(testConfig(overrides));
      await scheduler.saveConfig(dir);
      const reloaded = await DPMSolverMultistepScheduler.fromPretrained(dir);
      assert.deepEqual(reloaded.config, scheduler.config);
      scheduler.setTimesteps(25);
      reloaded.setTimesteps(25);
      const a = loop(scheduler).toFloat32Array();
      const b = loop(reloaded).toFloat32Array();
      assert.deepEqual(a, b);
      assert.ok(a.every(Number.isFinite), JSON.stringify(overrides));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every inference step count diffusers checks gives a finite loop", () => {
  for (const steps of [1, 2, 3, 5, 10, 50, 100, 999, 1000]) {
    for (const solver_order of [2, 3]) {
      const scheduler = new DPMSolverMultistepScheduler(
        testConfig({ solver_order }),
      );
      scheduler.setTimesteps(steps);
      const sample = loop(scheduler).toFloat32Array();
      assert.ok(sample.every(Number.isFinite), `${steps} steps`);
    }
  }
});

// Not in diffusers' suite: its full loop with the SDE variants and torch.manual_seed(0), measured
// here with diffusers 0.37.0 / torch 1.13 (reference/generate.py's versions).
Deno.test("SDE full loops with TorchGenerator(0) match diffusers with torch.manual_seed(0)", () => {
  assertMean(fullLoop({ algorithm_type: "sde-dpmsolver++" }), 0.684828);
  const sde = meanAbs(fullLoop({ algorithm_type: "sde-dpmsolver" }));
  assert.ok(Math.abs(sde - 6.530537) < 1e-4 * 6.53, `${sde}`);
});

Deno.test("setTimesteps() refuses mu without dynamic shifting and both or neither inputs", () => {
  const scheduler = new DPMSolverMultistepScheduler();
  assert.throws(
    () => scheduler.setTimesteps(10, { mu: 0.5 }),
    /use_dynamic_shifting/,
  );
  assert.throws(
    () => scheduler.setTimesteps(10, { timesteps: [999, 500] }),
    /exactly one/,
  );
  assert.throws(() => scheduler.setTimesteps(), /exactly one/);
  const karras = new DPMSolverMultistepScheduler({ use_karras_sigmas: true });
  assert.throws(
    () => karras.setTimesteps(null, { timesteps: [999, 500] }),
    /use_karras_sigmas/,
  );
  assert.throws(
    () => new DPMSolverMultistepScheduler({ algorithm_type: "dpmsolver" }),
    /sigma_min/,
  );
});

Deno.test("setBeginIndex() makes the first step start there and addNoise use it", () => {
  const scheduler = new DPMSolverMultistepScheduler(testConfig());
  scheduler.setTimesteps(10);
  scheduler.setBeginIndex(4);
  const noisy = scheduler.addNoise(dummySampleDeter(), dummyNoiseDeter(), [
    0,
    0,
    0,
    0,
  ]);
  const t = scheduler.timesteps[4]!;
  const reference = new DPMSolverMultistepScheduler(testConfig());
  reference.setTimesteps(10);
  const expected = reference.addNoise(dummySampleDeter(), dummyNoiseDeter(), [
    t,
    t,
    t,
    t,
  ]);
  assert.deepEqual(noisy.toFloat32Array(), expected.toFloat32Array());
  scheduler.step(dummyModel(noisy, 0), 0, noisy);
  assert.equal(scheduler.stepIndex, 5);
});
