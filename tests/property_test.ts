// Property tests (fast-check, fixed seeds): schedules of random valid configs are ordered and a
// whole inversion stays finite; random invalid configs throw the documented error types;
// toJSON → fromConfig is the identity; the .npy reader agrees with an independent reader
// (numpy-parser) on valid files and, on mutated ones, decodes a consistent array or throws.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.11.0";
import { fromArrayBuffer } from "npm:numpy-parser@1.2.3";
import { DPMSolverMultistepInverseScheduler, Tensor } from "../mod.ts";
import { decodeNpy, encodeNpy } from "../npy.ts";
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

/** Runs the whole schedule on `x` with an element-wise stand-in model; every value stays finite. */
function assertInvertsFinite(
  scheduler: DPMSolverMultistepInverseScheduler,
  x: Tensor,
  model: (v: number) => number,
  config: unknown,
): void {
  for (const t of scheduler.timesteps) {
    const out = new Tensor(x.toFloat32Array().map(model), x.shape);
    x = scheduler.step(out, t, x).prevSample;
  }
  assert.ok(x.toFloat32Array().every(Number.isFinite), JSON.stringify(config));
}

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
        assertInvertsFinite(
          scheduler,
          Tensor.from(
            Array.from({ length: 12 }, (_, i) => Math.sin(i + salt)),
            [2, 3, 2, 1],
          ),
          (v) => 0.7 * Math.tanh(v) + 0.2 * v,
          config,
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

// .npy files: random float32 and int32 arrays of rank 0 to 4.
const npyFile = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }).chain((shape) =>
    fc.float32Array({
      minLength: shape.reduce((a, b) => a * b, 1),
      maxLength: shape.reduce((a, b) => a * b, 1),
    }).map((data) => encodeNpy(new Tensor(data, shape)))
  ),
  fc.int32Array({ maxLength: 12 }).map((data) => encodeNpy(data)),
);

Deno.test("decodeNpy() and numpy-parser read the same shape and values from encodeNpy()'s files", () => {
  fc.assert(
    fc.property(npyFile, (bytes) => {
      const ours = decodeNpy(bytes);
      const theirs = fromArrayBuffer(bytes.slice().buffer) as {
        data: Float32Array | Int32Array;
        shape: number[];
      };
      // numpy-parser 1.2.3 reports a 1-D shape (n,) as [n, 1].
      const theirShape = ours.shape.length === 1
        ? theirs.shape.slice(0, 1)
        : theirs.shape;
      if (ours.shape.length === 1) assert.deepEqual(theirs.shape.slice(1), [1]);
      assert.deepEqual(ours.shape, theirShape);
      assert.equal(ours.data.constructor, theirs.data.constructor);
      // Bitwise, so that NaN payloads and -0 count.
      const bytesOf = (a: Float32Array | Int32Array) =>
        new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      assert.deepEqual(bytesOf(ours.data), bytesOf(theirs.data));
    }),
    { seed: 11, numRuns: 300 },
  );
});

/** One way to damage a valid file. */
const mutation = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("shape" as const),
    text: fc.oneof(
      fc.constantFrom(
        "-1, 3",
        "3, 'a'",
        "2,, 3",
        "1e9,",
        "3",
        "",
        ",",
        "1000000000,",
        "4294967296, 4294967296",
        "0,",
        "2, 2",
        "1, 1, 1",
      ),
      fc.string({ maxLength: 12 }),
    ),
  }),
  fc.record({
    kind: fc.constant("descr" as const),
    text: fc.constantFrom("<f8", "<i8", ">f4", "|u1", "<f4", "<i4", "f4", ""),
  }),
);

function mutate(
  bytes: Uint8Array,
  m: {
    kind: "flip" | "truncate" | "shape" | "descr";
    at?: number;
    bit?: number;
    text?: string;
  },
): Uint8Array {
  const out = bytes.slice();
  switch (m.kind) {
    case "flip":
      out[m.at! % out.length]! ^= 1 << m.bit!;
      return out;
    case "truncate":
      return out.subarray(0, m.at! % out.length);
    case "shape":
    case "descr": {
      // Rewrite the header text, keeping its length when it fits (else the file just changes size).
      const length = out[8]! | (out[9]! << 8);
      const header = new TextDecoder().decode(out.subarray(10, 10 + length));
      const edited = m.kind === "shape"
        ? header.replace(/'shape': \([^)]*\)/, `'shape': (${m.text})`)
        : header.replace(/'descr': '[^']*'/, `'descr': '${m.text}'`);
      const text = new TextEncoder().encode(
        edited.trimEnd().padEnd(length - 1) + "\n",
      );
      const result = new Uint8Array(out.length - length + text.length);
      result.set(out.subarray(0, 10));
      new DataView(result.buffer).setUint16(8, text.length, true);
      result.set(text, 10);
      result.set(out.subarray(10 + length), 10 + text.length);
      return result;
    }
  }
}

Deno.test("decodeNpy() on mutated files decodes a consistent array or throws a TypeError naming the file", () => {
  let decoded = 0;
  let refused = 0;
  fc.assert(
    fc.property(npyFile, mutation, (bytes, m) => {
      const damaged = mutate(bytes, m);
      let array;
      try {
        array = decodeNpy(damaged, "fuzz.npy");
      } catch (error) {
        assert.ok(error instanceof TypeError, String(error));
        assert.match(error.message, /^Cannot read 'fuzz\.npy' as /);
        refused++;
        return;
      }
      decoded++;
      assert.ok(array.dtype === "<f4" || array.dtype === "<i4");
      for (const n of array.shape) {
        assert.ok(Number.isSafeInteger(n) && n >= 0, `dimension ${n}`);
      }
      assert.equal(
        array.data.length,
        array.shape.reduce((a, b) => a * b, 1),
      );
      assert.equal(
        array.data instanceof Float32Array,
        array.dtype === "<f4",
      );
    }),
    { seed: 7, numRuns: 3000 },
  );
  // Both outcomes occur (a bit flip in the data decodes; most header damage is refused).
  assert.ok(
    decoded > 100 && refused > 100,
    `${decoded} decoded, ${refused} refused`,
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
        assertInvertsFinite(
          scheduler,
          Tensor.from([0.3, -0.7, 1.1, 0.05], [1, 1, 2, 2]),
          (v) => 0.5 * Math.tanh(v),
          config,
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
