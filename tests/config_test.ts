// The configuration contract: defaults, diffusers' compatibility remaps, and one row per rule
// for bad values (error type and message fragment).
import assert from "node:assert/strict";
import {
  DEFAULT_CONFIG,
  DPMSolverMultistepInverseScheduler,
  DPMSolverMultistepScheduler,
} from "../mod.ts";
import { resolveConfig } from "../lib/config.ts";
import { parseConfigJson, stringifyConfig } from "../lib/_config_file.ts";

Deno.test("defaults are diffusers v0.37.0's", () => {
  const config = new DPMSolverMultistepInverseScheduler().config;
  assert.deepEqual({ ...config }, { ...DEFAULT_CONFIG });
  assert.equal(config.lambda_min_clipped, -Infinity);
  assert.ok(Object.isFrozen(config));
});

Deno.test("configs written for other schedulers load as diffusers loads them", () => {
  const cases: [Record<string, unknown>, Partial<Record<string, unknown>>][] = [
    [{ algorithm_type: "deis" }, { algorithm_type: "dpmsolver++" }],
    [{ solver_type: "logrho" }, { solver_type: "midpoint" }],
    [{ solver_type: "bh2" }, { solver_type: "midpoint" }],
    [{ variance_type: "fixed_small", clip_sample: true }, {
      variance_type: "fixed_small",
    }],
    [{ variance_type: "fixed_large", _class_name: "DDPMScheduler" }, {
      variance_type: "fixed_large",
    }],
  ];
  for (const [input, expected] of cases) {
    const config = DPMSolverMultistepInverseScheduler.fromConfig(input).config;
    for (const [key, value] of Object.entries(expected)) {
      assert.equal(config[key as keyof typeof config], value);
    }
  }
});

const badConfigs: [
  Record<string, unknown>,
  "TypeError" | "RangeError",
  RegExp,
][] = [
  [
    { solver_ordr: 2 },
    "TypeError",
    /'solver_ordr' is not a config key \(did you mean 'solver_order'\?\)/,
  ],
  [
    { algorithm_type: "dpm" },
    "RangeError",
    /'algorithm_type' must be one of "dpmsolver", "dpmsolver\+\+".*current value is "dpm"/,
  ],
  [
    { algorithm_type: "sde-dpmsolver++" },
    "RangeError",
    /returns NaN when run backwards.*use "dpmsolver\+\+"/,
  ],
  [{ algorithm_type: "sde-dpmsolver" }, "RangeError", /diffusers issue 10748/],
  [
    { solver_type: "rk4" },
    "RangeError",
    /'solver_type' must be one of "midpoint", "heun"/,
  ],
  [
    { prediction_type: "noise" },
    "RangeError",
    /'prediction_type' must be one of/,
  ],
  [
    { beta_schedule: "cosine" },
    "RangeError",
    /'beta_schedule' must be one of "linear", "scaled_linear", "squaredcos_cap_v2"/,
  ],
  [
    { timestep_spacing: "uniform" },
    "RangeError",
    /'timestep_spacing' must be one of/,
  ],
  [
    { variance_type: "fixed" },
    "RangeError",
    /'variance_type' must be one of null, "learned"/,
  ],
  [
    { num_train_timesteps: 1 },
    "RangeError",
    /'num_train_timesteps' must be an integer >= 2: current value is 1/,
  ],
  [
    { num_train_timesteps: 10.5 },
    "RangeError",
    /'num_train_timesteps' must be an integer >= 2/,
  ],
  [
    { num_train_timesteps: "1000" },
    "TypeError",
    /'num_train_timesteps' must be an integer: current value is "1000"/,
  ],
  [
    { beta_start: 0 },
    "RangeError",
    /'beta_start' must be a number > 0 and < 1: current value is 0/,
  ],
  [{ beta_end: 1.5 }, "RangeError", /'beta_end' must be a number > 0 and < 1/],
  [
    { beta_start: 0.02, beta_end: 0.01 },
    "RangeError",
    /'beta_start' must be <= 'beta_end'/,
  ],
  [
    { trained_betas: [0.1, 0.2] },
    "RangeError",
    /'trained_betas' must hold 'num_train_timesteps' \(1000\) values: current length is 2/,
  ],
  [
    { num_train_timesteps: 2, trained_betas: [0.1, 1.2] },
    "RangeError",
    /'trained_betas' must hold finite numbers in \(0, 1\)/,
  ],
  [
    { trained_betas: "0.1" },
    "TypeError",
    /'trained_betas' must be null or an array of numbers/,
  ],
  [
    { solver_order: 4 },
    "RangeError",
    /'solver_order' must be 1, 2 or 3: current value is 4/,
  ],
  [
    { dynamic_thresholding_ratio: 1.5 },
    "RangeError",
    /'dynamic_thresholding_ratio' must be a number >= 0 and <= 1/,
  ],
  [
    { sample_max_value: 0 },
    "RangeError",
    /'sample_max_value' must be a number > 0/,
  ],
  [{ flow_shift: -1 }, "RangeError", /'flow_shift' must be a number > 0/],
  [
    { steps_offset: -1 },
    "RangeError",
    /'steps_offset' must be an integer >= 0/,
  ],
  [
    { thresholding: "yes" },
    "TypeError",
    /'thresholding' must be true or false/,
  ],
  [
    { lambda_min_clipped: null },
    "TypeError",
    /'lambda_min_clipped' must be a number/,
  ],
  [
    { use_karras_sigmas: true, use_beta_sigmas: true },
    "RangeError",
    /at most one sigma family.*use_karras_sigmas and use_beta_sigmas/,
  ],
  [
    { prediction_type: "flow_prediction", algorithm_type: "dpmsolver" },
    "RangeError",
    /"flow_prediction" needs 'algorithm_type' "dpmsolver\+\+"/,
  ],
];

Deno.test("bad config values throw the documented error naming the key", () => {
  for (const [config, name, message] of badConfigs) {
    assert.throws(() => new DPMSolverMultistepInverseScheduler(config), {
      name,
      message,
    }, JSON.stringify(config));
  }
});

Deno.test("fromConfig() ignores unknown keys but still validates known ones", () => {
  assert.equal(
    DPMSolverMultistepInverseScheduler.fromConfig({ clip_sample: true }).config
      .solver_order,
    2,
  );
  assert.throws(
    () => DPMSolverMultistepInverseScheduler.fromConfig({ solver_order: 0 }),
    RangeError,
  );
});

Deno.test("fromPretrained() errors name the file and the key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => DPMSolverMultistepInverseScheduler.fromPretrained(dir),
      {
        message: new RegExp(
          `Cannot read the scheduler config '${dir}/scheduler_config.json'`,
        ),
      },
    );
    await Deno.writeTextFile(`${dir}/scheduler_config.json`, "{ not json");
    await assert.rejects(
      () => DPMSolverMultistepInverseScheduler.fromPretrained(dir),
      {
        name: "SyntaxError",
        message: /scheduler_config.json' as it is not valid JSON/,
      },
    );
    await Deno.writeTextFile(
      `${dir}/scheduler_config.json`,
      '{"solver_order": "2"}',
    );
    await assert.rejects(
      () => DPMSolverMultistepInverseScheduler.fromPretrained(dir),
      {
        name: "TypeError",
        message:
          /from '.*scheduler_config.json' as 'solver_order' must be an integer/,
      },
    );
    await Deno.mkdir(`${dir}/scheduler`);
    await Deno.writeTextFile(
      `${dir}/scheduler/scheduler_config.json`,
      '{"lambda_min_clipped": -Infinity, "solver_order": 3}',
    );
    const scheduler = await DPMSolverMultistepInverseScheduler.fromPretrained(
      dir,
      { subfolder: "scheduler" },
    );
    assert.equal(scheduler.config.solver_order, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config JSON round trip keeps -Infinity and every key, as diffusers writes it", () => {
  const scheduler = new DPMSolverMultistepInverseScheduler({
    lambda_min_clipped: -Infinity,
    solver_order: 3,
  });
  const text = stringifyConfig(scheduler.toJSON());
  assert.match(text, /"lambda_min_clipped": -Infinity/);
  assert.match(text, /"_class_name": "DPMSolverMultistepInverseScheduler"/);
  assert.match(text, /"_diffusers_version": "0.37.0"/);
  const back = DPMSolverMultistepInverseScheduler.fromConfig(
    parseConfigJson(text),
  );
  assert.deepEqual(back.toJSON(), scheduler.toJSON());
  // Strings containing the word stay strings.
  assert.deepEqual(
    parseConfigJson('{"a": "NaN and -Infinity", "b": NaN}').a,
    "NaN and -Infinity",
  );
});

Deno.test("resolveConfig() rejects non-objects", () => {
  assert.throws(
    () => resolveConfig([] as unknown as Record<string, unknown>),
    TypeError,
  );
});

Deno.test("every public entry point refuses null, undefined and non-object configs", () => {
  const bad = [null, undefined, 3, "epsilon", [1, 2], true];
  for (const value of bad) {
    for (
      const fromConfig of [
        DPMSolverMultistepInverseScheduler.fromConfig,
        DPMSolverMultistepScheduler.fromConfig,
      ]
    ) {
      assert.throws(
        () => fromConfig(value as never),
        (e: Error) =>
          e instanceof TypeError &&
          /'config' must be an object of diffusers config keys/.test(e.message),
      );
      assert.throws(
        () =>
          fromConfig({}, value === undefined ? null as never : value as never),
        (e: Error) =>
          e instanceof TypeError &&
          /'overrides' must be an object/.test(e.message),
      );
    }
    if (value === undefined) continue; // `new Scheduler()`: diffusers' defaults
    for (
      const Scheduler of [
        DPMSolverMultistepInverseScheduler,
        DPMSolverMultistepScheduler,
      ]
    ) {
      assert.throws(
        () => new Scheduler(value as never),
        (e: Error) =>
          e instanceof TypeError &&
          /config as it must be an object/.test(e.message),
      );
    }
  }
});

Deno.test("fromPretrained refuses a scheduler_config.json that holds no object", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const text of ["null", "[1, 2]", "3"]) {
      await Deno.writeTextFile(`${dir}/scheduler_config.json`, text);
      for (
        const Scheduler of [
          DPMSolverMultistepInverseScheduler,
          DPMSolverMultistepScheduler,
        ]
      ) {
        await assert.rejects(
          () => Scheduler.fromPretrained(dir),
          (e: Error) =>
            e instanceof TypeError && /must hold a JSON object/.test(e.message),
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a lambda_min_clipped that clips every timestep is refused, naming lambda_t at timestep 0", () => {
  // lambda_t(0) = log(alpha_0 / sigma_0) = ½·ln((1 − β_0) / β_0) = ½·ln(9999) ≈ 4.6051 for the
  // default betas (β_0 = 1e-4).
  const bound = 0.5 * Math.log(9999);
  for (
    const Scheduler of [
      DPMSolverMultistepInverseScheduler,
      DPMSolverMultistepScheduler,
    ]
  ) {
    assert.throws(
      () => new Scheduler({ lambda_min_clipped: 10 }),
      (e: Error) =>
        e instanceof RangeError &&
        /'lambda_min_clipped' must be at most lambda_t at timestep 0 \(4\.605\d*\), or it clips every timestep: current value is 10$/
          .test(e.message),
    );
    // Just below the bound one timestep (t = 0) is left: accepted, and the schedule is finite.
    const scheduler = new Scheduler({ lambda_min_clipped: bound - 0.01 });
    scheduler.setTimesteps(10);
    assert.ok(scheduler.timesteps.every((t) => t === 0));
    assert.ok(scheduler.sigmas.every(Number.isFinite));
  }
});

Deno.test("betas whose alphas_cumprod underflows to 0 (an infinite sigma) are refused, naming the key", () => {
  // f32(1 − 0.999)^k: k = 15 gives ≈ 1.0e-45, which rounds to the smallest float32 subnormal
  // (1.4e-45); k = 16 gives ≈ 1.0e-48, below half of it, so alphas_cumprod[15] is 0.
  const step = Math.fround(1 - 0.999);
  assert.ok(Math.fround(step ** 15) > 0 && Math.fround(step ** 16) === 0);
  assert.throws(
    () =>
      new DPMSolverMultistepScheduler({
        num_train_timesteps: 20,
        trained_betas: new Array(20).fill(0.999),
      }),
    (e: Error) =>
      e instanceof RangeError &&
      /'alphas_cumprod' must stay above 0 \(float32\) over the 20 training timesteps, and 'trained_betas' makes it underflow to 0 from timestep 15 \(an infinite sigma\)/
        .test(e.message),
  );
  // A linear schedule up to beta_end = 0.999 (the fuzzing case): the float64 product of
  // 1 − β_t falls below 2^-150 (half the smallest subnormal) at the timestep the error names.
  let product = 1;
  let first = -1;
  for (let t = 0; t < 1000 && first < 0; t++) {
    product *= Math.fround(1 - (1e-4 + (t / 999) * (0.999 - 1e-4)));
    if (Math.fround(product) === 0) first = t;
  }
  for (
    const Scheduler of [
      DPMSolverMultistepInverseScheduler,
      DPMSolverMultistepScheduler,
    ]
  ) {
    assert.throws(
      () => new Scheduler({ beta_end: 0.999 }),
      (e: Error) =>
        e instanceof RangeError &&
        e.message.includes(
          `'beta_end' makes it underflow to 0 from timestep ${first} (an infinite sigma): current value is 0.999`,
        ),
    );
  }
});
