// What is specific to the WebAssembly SIMD kernels (every backend's kernel values, resident and
// staged, are in tests/kernels_test.ts): resident allocation and memory growth, operands outside
// the module's memory, coefficients that are not float32, the selection's paths for large items
// and special values, steady-state allocation, then whole schedulers on every case of
// reference/manifest.json, bit for bit against the TypeScript kernels and counted vs diffusers.
import assert from "node:assert/strict";
import {
  DPMSolverMultistepInverseScheduler,
  type ModelOutputConversion,
  type MultistepCoefficients,
  Tensor,
} from "../mod.ts";
import { WasmKernels } from "../wasm.ts";
import { multistepCoefficients } from "../lib/solver.ts";
import { sigmaToAlphaSigma } from "../lib/noise_schedule.ts";
import { cpuKernels } from "../lib/backend.ts";
import { TorchGenerator } from "../lib/random.ts";
import { values } from "./_kernel_fixtures.ts";
import { convertThenUpdate } from "../lib/_convert.ts";
import {
  bitEqual,
  cases,
  float32,
  forwardCases,
  forwardSchedulerFor,
  forwardTrajectory,
  int32,
  row,
  schedulerFor,
  standinModel,
} from "./_reference.ts";

// Counts the fused steps, to show that the reference cases below take that path.
let fusedCalls = 0;
class CountingWasmKernels extends WasmKernels {
  override convertAndUpdate(
    ...args: Parameters<WasmKernels["convertAndUpdate"]>
  ): void {
    fusedCalls++;
    super.convertAndUpdate(...args);
  }
  override thresholdAndUpdate(
    ...args: Parameters<WasmKernels["thresholdAndUpdate"]>
  ): void {
    fusedCalls++;
    super.thresholdAndUpdate(...args);
  }
}

const resident = new CountingWasmKernels();
const staged = new WasmKernels({ resident: false });

// `t` copied into `kernels`' memory (when it allocates there).
function placed(kernels: WasmKernels, t: Tensor): Tensor {
  const out = kernels.empty(t.shape);
  kernels.copy(out, t);
  return out;
}

function assertBitEqual(actual: Tensor, expected: Tensor, what: string): void {
  assert.ok(bitEqual(actual, expected), `${what}: results differ`);
}

Deno.test("WasmKernels allocates resident tensors where the runtime supports it", () => {
  assert.ok(resident.resident);
  assert.ok(resident.isResident(resident.empty([3, 5])));
  assert.equal(staged.isResident(staged.empty([3, 5])), false);
  assert.equal(resident.isResident(Tensor.zeros([4])), false);
  assert.equal(resident.empty([0, 3]).size, 0);
});

Deno.test("axpbyDiv() with coefficients that are not float32 falls back to the same numbers", () => {
  const x = values([9], 3);
  const y = values([9], 4);
  const expected = Tensor.zeros([9]);
  cpuKernels.axpbyDiv(expected, 0.1, x, 0.2, y, 0.3);
  const out = resident.empty([9]);
  resident.axpbyDiv(out, 0.1, x, 0.2, y, 0.3);
  assertBitEqual(out, expected, "f64 coefficients");
});

function coefficientsFor(
  order: 1 | 2 | 3,
  noise: boolean,
): MultistepCoefficients {
  const points = [2.5, 1.7, 1.1, 0.6].map((s) => sigmaToAlphaSigma(s, false));
  const c = multistepCoefficients(order, "dpmsolver++", "heun", points)!;
  return noise ? { ...c, e: Math.fround(0.37) } : c;
}

const conversions: ModelOutputConversion[] = [
  { form: "sample-first", a: 1, b: Math.fround(-0.83), d: Math.fround(0.57) },
  { form: "sample-first", a: Math.fround(0.57), b: Math.fround(-0.83), d: 1 },
  { form: "model-first", a: Math.fround(0.57), b: Math.fround(0.83), d: 1 },
  { form: "copy", a: 1, b: 0, d: 1 },
];

Deno.test("resident kernels take plain Tensors (copied in) and out = sample, bit for bit", () => {
  // Every backend's values are in tests/kernels_test.ts (resident and staged); here, resident
  // kernels given operands outside their memory, or writing over the sample.
  const n = 1003;
  const conversion: ModelOutputConversion = {
    form: "sample-first",
    a: Math.fround(0.57),
    b: Math.fround(-0.83),
    d: 1,
  };
  for (const order of [1, 2, 3] as const) {
    for (const withNoise of [false, true]) {
      const c = coefficientsFor(order, withNoise);
      const sample = values([n], 10 * n + order, 2);
      const modelOutput = values([n], 20 * n + order, 2);
      const history = [1, 2].map((k) => values([n], 100 * n + k, 2));
      const noise = withNoise ? values([n], 7 * n) : null;
      const expected = Tensor.zeros([n]);
      const expectedConverted = Tensor.zeros([n]);
      convertThenUpdate(
        cpuKernels,
        expected,
        expectedConverted,
        sample,
        modelOutput,
        conversion,
        history,
        c,
        noise,
      );
      for (const mode of ["copy-in", "out = sample"]) {
        const place = (t: Tensor) =>
          mode === "copy-in" ? t.clone() : placed(resident, t);
        const x = place(sample);
        const out = mode === "out = sample" ? x : Tensor.zeros([n]);
        const converted = mode === "copy-in"
          ? Tensor.zeros([n])
          : resident.empty([n]);
        resident.convertAndUpdate(
          out,
          converted,
          x,
          place(modelOutput),
          conversion,
          history.map(place),
          c,
          noise === null ? null : place(noise),
        );
        const what = `order ${order} noise ${withNoise} ${mode}`;
        assertBitEqual(out, expected, what);
        assertBitEqual(converted, expectedConverted, what);
      }
    }
  }
});

Deno.test("convertAndUpdate() takes the separate kernels where one pass would differ", () => {
  const n = 37;
  const c = coefficientsFor(2, false);
  const conversion = conversions[0]!;
  const sample = values([n], 1);
  const modelOutput = values([n], 2);
  const m1 = values([n], 3);
  // `converted` is the sample itself: the update must read the converted values.
  const expected = Tensor.zeros([n]);
  const expectedSample = sample.clone();
  convertThenUpdate(
    cpuKernels,
    expected,
    expectedSample,
    expectedSample,
    modelOutput,
    conversion,
    [
      m1,
    ],
    c,
    null,
  );
  for (const kernels of [resident, staged]) {
    const x = placed(kernels, sample);
    const out = kernels.empty([n]);
    kernels.convertAndUpdate(out, x, x, modelOutput, conversion, [m1], c, null);
    assertBitEqual(out, expected, `converted = sample (${kernels.resident})`);
    assertBitEqual(
      x,
      expectedSample,
      `converted = sample (${kernels.resident})`,
    );
  }
  // Coefficients that are not float32 values: the TypeScript kernels' numbers.
  const wide = { ...c, a: 0.1, c: 0.3 };
  const wideConversion = { ...conversion, b: 0.2 };
  const expectedWide = Tensor.zeros([n]);
  const expectedConverted = Tensor.zeros([n]);
  convertThenUpdate(
    cpuKernels,
    expectedWide,
    expectedConverted,
    sample,
    modelOutput,
    wideConversion,
    [m1],
    wide,
    null,
  );
  const out = resident.empty([n]);
  const converted = resident.empty([n]);
  resident.convertAndUpdate(
    out,
    converted,
    placed(resident, sample),
    placed(resident, modelOutput),
    wideConversion,
    [placed(resident, m1)],
    wide,
    null,
  );
  assertBitEqual(out, expectedWide, "f64 coefficients");
  assertBitEqual(converted, expectedConverted, "f64 coefficients");
  assert.throws(
    () =>
      resident.convertAndUpdate(
        out,
        converted,
        sample,
        modelOutput,
        conversion,
        [],
        c,
        null,
      ),
    /needs 1 entry in .history./,
  );
});

Deno.test("thresholdAndUpdate() equals the TypeScript threshold then update, bit for bit", () => {
  const shapes = [[3, 2, 7, 9], [2, 1003], [5, 1], [1, 70001], [2, 3, 64, 64]];
  for (const kernels of [resident, staged]) {
    for (const shape of shapes) {
      const n = shape.reduce((a, b) => a * b, 1);
      for (const order of [1, 2, 3] as const) {
        for (const withNoise of [false, true]) {
          for (const [ratio, max] of [[0.995, 1], [0.87, 2.5], [0.5, 1e30]]) {
            const c = coefficientsFor(order, withNoise);
            const x0 = values(shape, n + order, 4);
            if (n > 100) x0.data[n >> 1] = ratio === 0.5 ? NaN : -1e6;
            const sample = values(shape, 3 * n + order, 2);
            const history = [1, 2].map((k) => values(shape, 100 * n + k, 2));
            const noise = withNoise ? values(shape, 7 * n) : null;
            const expectedX0 = x0.clone();
            cpuKernels.threshold(expectedX0, ratio!, max!);
            const expected = Tensor.zeros(shape);
            cpuKernels.multistep(
              expected,
              sample,
              [expectedX0, ...history].slice(0, order),
              c,
              noise,
            );
            const what =
              `${kernels.resident} ${shape} order ${order} noise ${withNoise} ratio ${ratio}`;
            for (const mode of ["resident", "copy-in", "out = sample"]) {
              const place = (t: Tensor) =>
                mode === "copy-in" ? t.clone() : placed(kernels, t);
              const x = place(sample);
              const out = mode === "out = sample"
                ? x
                : place(Tensor.zeros(shape));
              const converted = place(x0);
              kernels.thresholdAndUpdate(
                out,
                converted,
                x,
                ratio!,
                max!,
                history.map(place),
                c,
                noise === null ? null : place(noise),
              );
              const same = (a: Tensor, e: Tensor) => {
                const av = a.toFloat32Array();
                const ev = e.toFloat32Array();
                // NaN payloads may differ between engines; every other value must be identical.
                return av.every((v, i) =>
                  Object.is(v, ev[i]) ||
                  (Number.isNaN(v) && Number.isNaN(ev[i]))
                );
              };
              assert.ok(same(out, expected), `${what} ${mode}: update`);
              assert.ok(same(converted, expectedX0), `${what} ${mode}: x0`);
            }
          }
        }
      }
    }
  }
  // x0 aliasing the sample: the separate kernels.
  const x = placed(resident, values([2, 50], 9, 3));
  const expectedX = x.clone();
  cpuKernels.threshold(expectedX, 0.9, 1.5);
  const expected = Tensor.zeros([2, 50]);
  const c = coefficientsFor(1, false);
  cpuKernels.multistep(expected, expectedX, [expectedX], c, null);
  const out = resident.empty([2, 50]);
  resident.thresholdAndUpdate(out, x, x, 0.9, 1.5, [], c, null);
  assertBitEqual(out, expected, "x0 = sample");
  assertBitEqual(x, expectedX, "x0 = sample");
});

Deno.test("threshold() finds torch's quantile by selection, bit for bit", () => {
  const inputs: [string, Tensor][] = [
    ["random", values([3, 2, 7, 9], 11)],
    ["tail sizes", values([2, 1003], 12, 40)],
    ["single element items", values([5, 1], 13)],
    // Items of 2^15 elements and more take the sampled bracket, or fall back when it misses.
    ["large random", values([2, 3, 128, 128], 14, 5)],
    [
      "large ascending",
      new Tensor(Float32Array.from({ length: 70000 }, (_, i) => i / 7), [
        1,
        70000,
      ]),
    ],
    [
      "large periodic",
      new Tensor(
        Float32Array.from(
          { length: 2 * 40000 },
          (_, i) => Math.sin(i * 0.37) * 3,
        ),
        [2, 40000],
      ),
    ],
    [
      "large ties",
      new Tensor(Float32Array.from({ length: 65536 }, (_, i) => (i % 5) - 2), [
        1,
        65536,
      ]),
    ],
    [
      "large NaN",
      new Tensor(
        Float32Array.from(
          { length: 65536 },
          (_, i) => (i === 999 ? NaN : Math.cos(i)),
        ),
        [1, 65536],
      ),
    ],
    ["0-d", Tensor.from([2.5], [])],
    [
      "ties",
      new Tensor(
        Float32Array.from({ length: 4 * 301 }, (_, i) => (i % 7) - 3),
        [4, 301],
      ),
    ],
    ["constant", new Tensor(new Float32Array(130).fill(-2), [2, 65])],
    [
      "zeros and signs",
      new Tensor(Float32Array.from({ length: 64 }, (_, i) => (i % 3 - 1) * 0), [
        2,
        32,
      ]),
    ],
    [
      "NaN",
      new Tensor(
        Float32Array.from({ length: 20 }, (_, i) => (i === 5 ? NaN : i - 10)),
        [2, 10],
      ),
    ],
    [
      "Infinity",
      new Tensor(
        Float32Array.from(
          { length: 20 },
          (_, i) => (i === 5 ? -Infinity : i - 10),
        ),
        [2, 10],
      ),
    ],
    [
      "wide range",
      new Tensor(
        Float32Array.from(
          { length: 999 },
          (_, i) => (i - 500) * 10 ** ((i % 11) - 5),
        ),
        [1, 999],
      ),
    ],
  ];
  for (const [name, x] of inputs) {
    for (
      const [ratio, max] of [[0.995, 1], [0.87, 0.5], [0.5, 3], [0, 2], [
        1,
        100,
      ], [0.3, 1e30]]
    ) {
      const expected = x.clone();
      cpuKernels.threshold(expected, ratio!, max!);
      for (const kernels of [resident, staged]) {
        const inMemory = placed(kernels, x);
        kernels.threshold(inMemory, ratio!, max!);
        const outside = x.clone();
        kernels.threshold(outside, ratio!, max!);
        for (const actual of [inMemory, outside]) {
          const a = actual.toFloat32Array();
          const e = expected.toFloat32Array();
          // NaN payloads may differ between engines; every other value must be identical.
          assert.ok(
            a.every((v, i) =>
              Object.is(v, e[i]) || (Number.isNaN(v) && Number.isNaN(e[i]))
            ),
            `${name} ratio ${ratio} max ${max}`,
          );
        }
      }
    }
  }
});

Deno.test("resident tensors stay valid when the memory grows", () => {
  const kernels = new WasmKernels();
  const kept = placed(kernels, values([1000], 21));
  const copy = kept.clone();
  const before = kernels.memoryBytes;
  const big = Array.from({ length: 6 }, () => kernels.empty([1 << 20]));
  assert.ok(kernels.memoryBytes > before);
  assertBitEqual(kept, copy, "after growth");
  const out = kernels.empty([1000]);
  kernels.axpbyDiv(out, 2, kept, 1, kept, 1);
  const expected = Tensor.zeros([1000]);
  cpuKernels.axpbyDiv(expected, 2, copy, 1, copy, 1);
  assertBitEqual(out, expected, "kernel after growth");
  assert.equal(big.length, 6);
  // The copy-in mode re-derives its views after a growth that detaches the buffer.
  const x = values([1 << 21], 22);
  const expectedBig = Tensor.zeros(x.shape);
  cpuKernels.axpbyDiv(expectedBig, 2, x, 1, x, 1);
  const small = Tensor.zeros([4]);
  staged.axpbyDiv(small, 2, values([4], 1), 1, values([4], 2), 1);
  const outBig = Tensor.zeros(x.shape);
  staged.axpbyDiv(outBig, 2, x, 1, x, 1);
  assertBitEqual(outBig, expectedBig, "copy-in mode after growth");
});

Deno.test("steady-state steps with out allocate nothing", () => {
  let allocations = 0;
  class Counting extends WasmKernels {
    override empty(shape: readonly number[]): Tensor {
      allocations++;
      return super.empty(shape);
    }
  }
  const kernels = new Counting();
  {
    const scheduler = new DPMSolverMultistepInverseScheduler({
      solver_order: 3,
      thresholding: true,
    });
    scheduler.kernels = kernels;
    scheduler.setTimesteps(20);
    const shape = [2, 4, 8, 8];
    let sample = placed(kernels, values(shape, 5, 1));
    let spare = kernels.empty(shape);
    const outputs = [1, 2, 3, 4].map((k) =>
      placed(kernels, values(shape, k, 1))
    );
    const counts: number[] = [];
    const memory: number[] = [];
    scheduler.timesteps.forEach((t, i) => {
      const out = scheduler.step(outputs[i % 4]!, t, sample, { out: spare });
      [sample, spare] = [out.prevSample, sample];
      counts.push(allocations);
      memory.push(kernels.memoryBytes);
    });
    // History buffers are allocated while the window fills, then recycled.
    assert.equal(counts.at(-1), counts[3]);
    assert.equal(memory.at(-1), memory[3]);
  }
});

// ------------------------------------------------------------------------- reference cases

// Runs `body` with `scheduler` on `kernels` (null: the TypeScript kernels).
function withKernels<R>(
  kernels: WasmKernels | null,
  scheduler: { kernels: unknown },
  body: () => R,
): R {
  scheduler.kernels = kernels ?? cpuKernels;
  return body();
}

let exactVsDiffusers = 0;
let exactVsTypeScript = 0;
let totalSteps = 0;
let fusedSteps = 0;

for (const c of cases) {
  if (c.kind === "add_noise") {
    Deno.test(`${c.name}: addNoise with WasmKernels equals the TypeScript kernels`, async () => {
      const [original, noise, timesteps] = [
        await float32(c, "original.npy"),
        await float32(c, "noise.npy"),
        await int32(c, "noise_timesteps.npy"),
      ];
      const reference = await schedulerFor(c);
      const expected = withKernels(
        null,
        reference,
        () =>
          reference.addNoise(
            original,
            noise,
            timesteps,
          ),
      );
      const scheduler = await schedulerFor(c);
      const actual = withKernels(
        resident,
        scheduler,
        () => scheduler.addNoise(placed(resident, original), noise, timesteps),
      );
      assertBitEqual(actual, expected, c.name);
    });
    continue;
  }

  Deno.test(`${c.name}: every step with WasmKernels equals the TypeScript kernels`, async () => {
    const samples = await float32(c, "samples.npy");
    const modelOutputs = await float32(c, "model_outputs.npy");
    const cpu = await schedulerFor(c);
    const wasm = await schedulerFor(c);
    const copyIn = await schedulerFor(c);
    for (let i = 0; i < c.steps; i++) {
      const t = cpu.timesteps[Math.min(i, cpu.timesteps.length - 1)]!;
      const sample = row(samples, i);
      const modelOutput = row(modelOutputs, i);
      const expected = withKernels(
        null,
        cpu,
        () => cpu.step(modelOutput, t, sample).prevSample,
      );
      // Inputs in the module's memory, and inputs copied in per call.
      const calls = fusedCalls;
      const actual = withKernels(resident, wasm, () =>
        wasm.step(
          placed(resident, modelOutput),
          t,
          placed(resident, sample),
        ).prevSample);
      if (fusedCalls > calls) fusedSteps++;
      const viaCopy = withKernels(
        staged,
        copyIn,
        () => copyIn.step(modelOutput, t, sample).prevSample,
      );
      assertBitEqual(actual, expected, `step ${i}`);
      assertBitEqual(viaCopy, expected, `step ${i} (copy-in)`);
      totalSteps++;
      exactVsTypeScript++;
      if (bitEqual(actual, row(samples, i + 1))) exactVsDiffusers++;
    }
  });

  Deno.test(`${c.name}: a whole inversion with WasmKernels equals the TypeScript kernels`, async () => {
    const samples = await float32(c, "samples.npy");
    const loop = async (kernels: WasmKernels | null) => {
      const scheduler = await schedulerFor(c);
      return withKernels(kernels, scheduler, () => {
        let sample = row(samples, 0).clone();
        for (const t of scheduler.timesteps) {
          sample = scheduler.step(
            standinModel(sample, t, c.learned_variance),
            t,
            sample,
          ).prevSample;
        }
        return sample;
      });
    };
    assertBitEqual(await loop(resident), await loop(null), c.name);
  });
}

// Forward cases (DPMSolverMultistepScheduler), SDE types included: the fused step adds the noise.

for (const c of forwardCases) {
  if (c.kind !== "steps") continue;
  Deno.test(`forward ${c.name}: every step and a whole loop with WasmKernels equal the TypeScript kernels`, async () => {
    const { samples, modelOutputs, noises } = await forwardTrajectory(c);
    const cpu = await forwardSchedulerFor(c);
    const wasm = await forwardSchedulerFor(c);
    for (let i = 0; i < c.steps; i++) {
      const t = cpu.timesteps[i]!;
      const noise = noises?.[i];
      const expected = withKernels(
        null,
        cpu,
        () =>
          cpu.step(
            modelOutputs[i]!,
            t,
            samples[i]!,
            noise ? { varianceNoise: noise } : {},
          ).prevSample,
      );
      const calls = fusedCalls;
      const actual = withKernels(resident, wasm, () =>
        wasm.step(
          placed(resident, modelOutputs[i]!),
          t,
          placed(resident, samples[i]!),
          noise ? { varianceNoise: placed(resident, noise) } : {},
        ).prevSample);
      if (fusedCalls > calls) fusedSteps++;
      assertBitEqual(actual, expected, `step ${i}`);
      totalSteps++;
      exactVsTypeScript++;
      if (bitEqual(actual, samples[i + 1]!)) exactVsDiffusers++;
    }
    const loop = async (kernels: WasmKernels | null) => {
      const scheduler = await forwardSchedulerFor(c);
      const generator = c.seed === null
        ? undefined
        : new TorchGenerator(c.seed);
      return withKernels(kernels, scheduler, () => {
        let sample = samples[0]!.clone();
        for (const t of scheduler.timesteps) {
          sample = scheduler.step(
            standinModel(sample, t, c.learned_variance),
            t,
            sample,
            generator ? { generator } : {},
          ).prevSample;
        }
        return sample;
      });
    };
    assertBitEqual(await loop(resident), await loop(null), `${c.name} loop`);
  });
}

Deno.test("WasmKernels reference summary", () => {
  console.log(
    `WasmKernels: ${exactVsTypeScript}/${totalSteps} reference steps (inverse and forward) equal the TypeScript kernels bit for bit, ${fusedSteps} of them fused (convertAndUpdate or thresholdAndUpdate); ${exactVsDiffusers}/${totalSteps} equal diffusers bit for bit`,
  );
  assert.equal(exactVsTypeScript, totalSteps);
  assert.ok(fusedSteps > 0);
});
