// Property tests (fast-check, fixed seeds): schedules of random valid configs are ordered and a
// whole inversion stays finite; random invalid configs throw the documented error types;
// toJSON → fromConfig is the identity.
import assert from "node:assert/strict";
import fc from "fast-check";
import { DPMSolverMultistepInverseScheduler, Tensor } from "../mod.ts";
import {
  SIGMA_FAMILIES,
  SIGMA_FAMILY_NAMES,
  type SigmaFamilyKey,
  sigmaFamilyOf,
} from "../lib/_sigma_families.ts";

// The inverse scheduler's families on the VP schedule (flow sigmas run the other way).
const INVERSE_VP_FAMILIES = SIGMA_FAMILY_NAMES.filter((name) =>
  !SIGMA_FAMILIES[name].forwardOnly && !SIGMA_FAMILIES[name].flow
);

const validConfig = fc.record({
  num_train_timesteps: fc.integer({ min: 2, max: 1000 }),
  beta_schedule: fc.constantFrom(
    "linear",
    "scaled_linear",
    "squaredcos_cap_v2",
  ),
  beta_start: fc.double({ min: 1e-5, max: 1e-3, noNaN: true }),
  beta_end: fc.double({ min: 2e-3, max: 0.05, noNaN: true }),
  solver_order: fc.integer({ min: 1, max: 3 }),
  prediction_type: fc.constantFrom("epsilon", "sample", "v_prediction"),
  algorithm_type: fc.constantFrom("dpmsolver", "dpmsolver++"),
  solver_type: fc.constantFrom("midpoint", "heun"),
  lower_order_final: fc.boolean(),
  euler_at_final: fc.boolean(),
  thresholding: fc.boolean(),
  sigmas: fc.constantFrom("default", ...INVERSE_VP_FAMILIES),
  lambda_min_clipped: fc.constantFrom(-Infinity, -5.1),
  timestep_spacing: fc.constantFrom("linspace", "leading", "trailing"),
  steps_offset: fc.integer({ min: 0, max: 1 }),
}).map(({ sigmas, ...config }) => ({
  ...config,
  ...Object.fromEntries(
    INVERSE_VP_FAMILIES.map((
      name,
    ) => [SIGMA_FAMILIES[name].key, sigmas === name]),
  ),
}));

const withSteps = validConfig.chain((config) =>
  fc.tuple(
    fc.constant(config),
    fc.integer({ min: 1, max: Math.min(60, config.num_train_timesteps) }),
  )
);

Deno.test("random valid configs give increasing timesteps and non-decreasing sigmas", () => {
  fc.assert(
    fc.property(withSteps, ([config, steps]) => {
      const scheduler = new DPMSolverMultistepInverseScheduler(config);
      scheduler.setTimesteps(steps);
      const { timesteps, sigmas } = scheduler;
      assert.equal(sigmas.length, timesteps.length + 1);
      // Families whose timesteps are not rounded truncate fractional ones, which may repeat an
      // integer.
      const family = sigmaFamilyOf(
        config as Partial<Record<SigmaFamilyKey, boolean>>,
      );
      const strict = family === null ||
        SIGMA_FAMILIES[family].timesteps === "rounded";
      for (let i = 1; i < timesteps.length; i++) {
        assert.ok(
          strict
            ? timesteps[i]! > timesteps[i - 1]!
            : timesteps[i]! >= timesteps[i - 1]!,
        );
      }
      for (let i = 1; i < sigmas.length; i++) {
        assert.ok(sigmas[i]! >= sigmas[i - 1]!);
      }
    }),
    { seed: 20261126, numRuns: 1500 },
  );
});

Deno.test("a whole inversion of a finite sample stays finite for random valid configs", () => {
  fc.assert(
    fc.property(
      withSteps,
      fc.integer({ min: 0, max: 1000 }),
      ([config, steps], salt) => {
        const scheduler = new DPMSolverMultistepInverseScheduler(config);
        scheduler.setTimesteps(Math.min(steps, 30));
        let x = Tensor.from(
          Array.from({ length: 12 }, (_, i) => Math.sin(i + salt)),
          [2, 3, 2, 1],
        );
        for (const t of scheduler.timesteps) {
          const out = new Tensor(
            x.toFloat32Array().map((v) => 0.7 * Math.tanh(v) + 0.2 * v),
            x.shape,
          );
          x = scheduler.step(out, t, x).prevSample;
        }
        assert.ok(
          x.toFloat32Array().every(Number.isFinite),
          JSON.stringify(config),
        );
      },
    ),
    { seed: 11, numRuns: 300 },
  );
});

Deno.test("toJSON() then fromConfig() is the identity on valid configs", () => {
  fc.assert(
    fc.property(validConfig, (config) => {
      const scheduler = new DPMSolverMultistepInverseScheduler(config);
      const back = DPMSolverMultistepInverseScheduler.fromConfig(
        scheduler.toJSON(),
      );
      assert.deepEqual(back.toJSON(), scheduler.toJSON());
    }),
    { seed: 7, numRuns: 1000 },
  );
});

// `{ key, value }` records, `value` drawn from values the constructor must refuse for `key`.
function invalid(key: string, value: fc.Arbitrary<unknown>) {
  return fc.record({ key: fc.constant(key), value });
}

const invalidValue = fc.oneof(
  invalid(
    "solver_order",
    fc.oneof(fc.integer({ min: 4, max: 99 }), fc.integer({ min: -9, max: 0 })),
  ),
  invalid(
    "num_train_timesteps",
    fc.oneof(
      fc.integer({ max: 1 }),
      fc.double({ min: 2.01, max: 9.99, noInteger: true }),
    ),
  ),
  invalid(
    "beta_end",
    fc.oneof(fc.double({ min: 1, max: 10 }), fc.double({ min: -1, max: 0 })),
  ),
  invalid(
    "algorithm_type",
    fc.string().filter((s) =>
      !["dpmsolver", "dpmsolver++", "deis"].includes(s)
    ),
  ),
  invalid(
    "dynamic_thresholding_ratio",
    fc.double({ min: 1.0001, max: 5, noNaN: true }),
  ),
  invalid("thresholding", fc.oneof(fc.integer(), fc.string())),
  // An unknown key (not private, not a config field).
  fc.record({
    key: fc.string({ minLength: 1 }).filter((k) =>
      !k.startsWith("_") &&
      !(k in new DPMSolverMultistepInverseScheduler().config)
    ),
    value: fc.anything(),
  }),
);

Deno.test("random invalid configs throw TypeError or RangeError", () => {
  fc.assert(
    fc.property(invalidValue, ({ key, value }) => {
      try {
        new DPMSolverMultistepInverseScheduler({ [key]: value });
      } catch (error) {
        assert.ok(
          error instanceof TypeError || error instanceof RangeError,
          String(error),
        );
        assert.match(
          (error as Error).message,
          /^Cannot configure the (inverse )?scheduler/,
        );
        return;
      }
      assert.fail(`accepted ${key}: ${String(value)}`);
    }),
    { seed: 3, numRuns: 2000 },
  );
});

Deno.test("configs near the degenerate edges are refused naming the key, or invert to finite values", () => {
  // Wider than `validConfig`: betas up to 0.999 (alphas_cumprod may underflow to 0) and
  // lambda_min_clipped up to 10 (it may clip every timestep). Each config is either refused at
  // construction with a RangeError naming the key that broke its bound, or runs finite.
  const edgeConfig = fc.record({
    num_train_timesteps: fc.integer({ min: 2, max: 1000 }),
    beta_schedule: fc.constantFrom(
      "linear",
      "scaled_linear",
      "squaredcos_cap_v2",
    ),
    beta_start: fc.double({ min: 1e-5, max: 1e-3, noNaN: true }),
    beta_end: fc.double({ min: 2e-3, max: 0.999, noNaN: true }),
    solver_order: fc.integer({ min: 1, max: 3 }),
    algorithm_type: fc.constantFrom("dpmsolver", "dpmsolver++"),
    lambda_min_clipped: fc.double({ min: -10, max: 10, noNaN: true }),
    timestep_spacing: fc.constantFrom("linspace", "leading", "trailing"),
  });
  const refused = { alphas_cumprod: 0, lambda_min_clipped: 0 };
  fc.assert(
    fc.property(
      edgeConfig,
      fc.integer({ min: 1, max: 30 }),
      (config, steps) => {
        let scheduler: DPMSolverMultistepInverseScheduler;
        try {
          scheduler = new DPMSolverMultistepInverseScheduler(config);
        } catch (error) {
          assert.ok(error instanceof RangeError, String(error));
          const key =
            /^Cannot configure the scheduler as '(alphas_cumprod|lambda_min_clipped)' must .*: current value is /
              .exec(error.message)?.[1] as keyof typeof refused | undefined;
          assert.ok(key !== undefined, error.message);
          refused[key]++;
          return;
        }
        scheduler.setTimesteps(Math.min(steps, config.num_train_timesteps));
        assert.ok(
          scheduler.sigmas.every(Number.isFinite),
          JSON.stringify(config),
        );
        let x = Tensor.from([0.3, -0.7, 1.1, 0.05], [1, 1, 2, 2]);
        for (const t of scheduler.timesteps) {
          const out = new Tensor(
            x.toFloat32Array().map((v) => 0.5 * Math.tanh(v)),
            x.shape,
          );
          x = scheduler.step(out, t, x).prevSample;
        }
        assert.ok(
          x.toFloat32Array().every(Number.isFinite),
          JSON.stringify(config),
        );
      },
    ),
    { seed: 13, numRuns: 1000 },
  );
  // The edges are reached: some configs of each kind are refused.
  assert.ok(
    refused.alphas_cumprod > 0 && refused.lambda_min_clipped > 0,
    JSON.stringify(refused),
  );
});
