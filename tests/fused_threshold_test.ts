// WasmKernels.convertThresholdAndUpdate (the conversion computed on the fly while the quantile is
// found, then converted again, clamped and divided inside the update) against the TypeScript
// kernels run separately (axpbyDiv, threshold, multistep), bit for bit, on items large enough
// for the sampled quantile (≥ 8,192 elements): orders 1–3, with and without noise, upper and
// middle quantiles, divisors whose quotients overflow or round many inputs alike, a NaN, data
// where the sampled bracket misses, and whole scheduler loops.
import assert from "node:assert/strict";
import {
  cpuKernels,
  DPMSolverMultistepInverseScheduler,
  DPMSolverMultistepScheduler,
  type MultistepCoefficients,
  Tensor,
} from "../mod.ts";
import { multistepCoefficients } from "../lib/solver.ts";
import { sigmaToAlphaSigma } from "../lib/noise_schedule.ts";
import { WasmKernels } from "../wasm.ts";

const wasm = new WasmKernels();
const SHAPE = [2, 3, 128, 96]; // 36,864 elements per item

function random(shape: number[], seed: number, scale = 3): Tensor {
  let s = seed >>> 0 || 1;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return new Tensor(data, shape);
}

function bits(t: Tensor): Uint32Array {
  return new Uint32Array(t.toFloat32Array().buffer);
}

// The first element whose bits differ, if any (a failing deepEqual of whole arrays would
// print a diff of every element).
function assertSameBits(actual: Tensor, expected: Tensor, label: string) {
  const a = bits(actual);
  const e = bits(expected);
  const i = a.findIndex((v, j) => v !== e[j]);
  assert.equal(
    i,
    -1,
    `${label}: element ${i} is ${actual.data[i]}, expected ${expected.data[i]}`,
  );
}

function coefficients(order: 1 | 2 | 3, sde: boolean): MultistepCoefficients {
  const points = [0.9, 0.7, 0.5, 0.35].map((s) =>
    sigmaToAlphaSigma(Math.fround(s), false)
  );
  const lambdas = points.map((p) => Math.log(p.alphaT) - Math.log(p.sigmaT));
  return multistepCoefficients(
    order,
    sde ? "sde-dpmsolver++" : "dpmsolver++",
    "midpoint",
    points.slice(0, order + 1),
    lambdas.slice(0, order + 1),
  )!;
}

function check(
  sample: Tensor,
  modelOutput: Tensor,
  order: 1 | 2 | 3,
  sde: boolean,
  ratio: number,
  maxValue: number,
  label: string,
  conversion = {
    form: "sample-first" as const,
    a: 1,
    b: Math.fround(-0.6),
    d: Math.fround(0.8),
  },
) {
  const c = coefficients(order, sde);
  const history = [random(SHAPE, 21, 2), random(SHAPE, 22, 2)].slice(
    0,
    order - 1,
  );
  const noise = sde ? random(SHAPE, 23, 1) : null;
  // The TypeScript kernels, separately.
  const x0 = Tensor.zeros(SHAPE);
  cpuKernels.axpbyDiv(
    x0,
    conversion.a,
    sample,
    conversion.b,
    modelOutput,
    conversion.d,
  );
  cpuKernels.threshold(x0, ratio, maxValue);
  const expected = Tensor.zeros(SHAPE);
  cpuKernels.multistep(
    expected,
    sample,
    [x0, ...history].slice(0, order),
    c,
    noise,
  );
  // The fused kernel: resident history and converted buffer, inputs in JS memory (as a step).
  const converted = wasm.empty(SHAPE);
  const residentHistory = history.map((h) => {
    const r = wasm.empty(SHAPE);
    wasm.copy(r, h);
    return r;
  });
  const out = Tensor.zeros(SHAPE);
  wasm.convertThresholdAndUpdate(
    out,
    converted,
    sample,
    modelOutput,
    conversion,
    ratio,
    maxValue,
    residentHistory,
    c,
    noise,
  );
  assertSameBits(converted, x0, `${label}: thresholded x0`);
  assertSameBits(out, expected, `${label}: update`);
}

Deno.test("convertThresholdAndUpdate equals the separate TypeScript kernels, bit for bit", () => {
  for (const order of [1, 2, 3] as const) {
    for (const sde of [false, true]) {
      for (const [ratio, maxValue] of [[0.995, 1.5], [0.9, 2], [0.5, 1.2]]) {
        check(
          random(SHAPE, 1),
          random(SHAPE, 2),
          order,
          sde,
          ratio!,
          maxValue!,
          `order ${order}${sde ? " sde" : ""} ratio ${ratio}`,
        );
      }
    }
  }
});

Deno.test("convertThresholdAndUpdate: quotients that overflow or underflow, and negative or infinite divisors", () => {
  // The first pass orders |a·sample + b·modelOutput| and divides only the quantile by |d|: exact
  // because float32 division rounds monotonically, also where quotients overflow to infinity
  // (d = 1e-38: elements above the quantile do) or fall to subnormals, where many inputs share
  // one quotient (d = 3e37). An infinite divisor takes the separate kernels.
  for (
    const [d, ratio, maxValue] of [
      [1e-38, 0.5, 3e38],
      [1e-38, 0.9, 3e38],
      [3e37, 0.995, 1.5],
      [-0.8, 0.995, 1.5],
      [-0.8, 0.5, 2],
      [Infinity, 0.995, 1.5],
    ]
  ) {
    check(
      random(SHAPE, 11),
      random(SHAPE, 12),
      2,
      false,
      ratio!,
      maxValue!,
      `d ${d} ratio ${ratio}`,
      {
        form: "sample-first" as const,
        a: Math.fround(0.3),
        b: Math.fround(-0.95),
        d: Math.fround(d!),
      },
    );
  }
});

Deno.test("convertThresholdAndUpdate: a NaN in an item, and data where the sampled bracket misses", () => {
  const withNaN = random(SHAPE, 3);
  withNaN.data[5] = NaN;
  check(withNaN, random(SHAPE, 4), 2, false, 0.995, 1.5, "NaN");
  // Large values only where the strided sample of 2^10 (wasm/kernels.ts) never looks: the
  // bracket misses the quantile.
  const skewed = random(SHAPE, 5, 0.5);
  const perItem = SHAPE.slice(1).reduce((a, b) => a * b, 1);
  const stride = Math.floor(perItem / 1024);
  for (let i = 0; i < skewed.size; i++) {
    if (i % stride !== 0 && i % 7 === 1) skewed.data[i] = 50 + (i % 13);
  }
  check(skewed, random(SHAPE, 6, 0.5), 3, false, 0.9, 40, "bracket missed");
});

Deno.test("thresholded scheduler loops on large samples: default kernels equal the TypeScript kernels", () => {
  for (
    const make of [
      () =>
        new DPMSolverMultistepInverseScheduler({
          solver_order: 2,
          thresholding: true,
        }),
      () =>
        new DPMSolverMultistepScheduler({
          solver_order: 3,
          thresholding: true,
          prediction_type: "v_prediction",
        }),
    ]
  ) {
    const run = (kernels: typeof cpuKernels | null) => {
      const scheduler = make();
      if (kernels) scheduler.kernels = kernels;
      scheduler.setTimesteps(12);
      const outputs = [7, 8, 9].map((k) => random(SHAPE, k, 2));
      let x = random(SHAPE, 10, 2);
      const trail: Uint32Array[] = [];
      scheduler.timesteps.forEach((t, i) => {
        x = scheduler.step(outputs[i % 3]!, t, x).prevSample;
        trail.push(bits(x));
      });
      return trail;
    };
    const expected = run(cpuKernels);
    const actual = run(null);
    actual.forEach((b, i) => assert.deepEqual(b, expected[i], `step ${i}`));
  }
});
