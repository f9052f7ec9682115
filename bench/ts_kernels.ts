// The TypeScript kernels (the fallback) against plain JavaScript loops over the same contiguous
// arrays: a whole step of the plain loop (`x = scheduler.step(eps, t, x).prevSample` with
// `scheduler.kernels = cpuKernels`, a new result per step) against the floor's loop in plain
// JavaScript (bench/cpu_bench.ts's js-loop: one pass reading the sample, the model output and the
// history, writing the converted output and the result), and the fused kernel call alone
// (`cpuKernels.convertAndUpdate` into a reused `out`). Prints the minimum and median µs per step
// over interleaved timings, and the ratios.
//
//   deno task bench:ts [--rounds N]
import { parseArgs } from "node:util";
import {
  cpuKernels,
  DPMSolverMultistepInverseScheduler,
  Tensor,
} from "../mod.ts";
import { multistepCoefficients } from "../lib/solver.ts";
import { sigmaToAlphaSigma } from "../lib/noise_schedule.ts";
import { CASES, jsLoop, median } from "./cpu_bench.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: { rounds: { type: "string", default: "15" } },
});
const rounds = Number(args.rounds);

function gaussianish(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(0.37 * i * seed + seed);
  return out;
}

// The same step in plain JavaScript with float32 rounding after each operation (what the result
// must equal bit for bit): the conversion and the order-2/3 update, inline.
const fr = Math.fround;
function jsF32Loop(arrays: Float32Array[], order: number): void {
  const [out, conv, x, mo, h1, h2] = arrays as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  const [a, b, cc, d, k0, k1, q, k2, ca, cb, cd] = [
    0.9,
    0.1,
    0.3,
    0.2,
    0.5,
    0.6,
    0.25,
    0.125,
    1,
    -0.4,
    0.9,
  ].map(fr) as number[];
  const n = out.length;
  if (order >= 3) {
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      const m0 = fr(fr(fr(ca! * v) + fr(cb! * mo[i]!)) / cd!);
      const m1 = h1[i]!;
      const d10 = fr(k0! * fr(m0 - m1));
      const d11 = fr(k1! * fr(m1 - h2[i]!));
      const diff = fr(d10 - d11);
      conv[i] = m0;
      out[i] =
        fr(fr(fr(a! * v) + fr(b! * m0)) + fr(cc! * fr(d10 + fr(q! * diff)))) +
        fr(d! * fr(k2! * diff));
    }
  } else {
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      const m0 = fr(fr(fr(ca! * v) + fr(cb! * mo[i]!)) / cd!);
      conv[i] = m0;
      out[i] = fr(fr(a! * v) + fr(b! * m0)) +
        fr(cc! * fr(k0! * fr(m0 - h1[i]!)));
    }
  }
}

console.log(
  `${"case".padEnd(26)}${
    [
      "js-loop",
      "js-f32",
      "ts kernel",
      "ts step",
      "kernel/js-f32",
      "kernel/js",
      "step/js",
    ].map((h) => h.padStart(22)).join("")
  }   (µs: min / median of ${rounds} rounds of 50 steps)`,
);
for (const c of CASES) {
  const n = c.shape.reduce((a, b) => a * b, 1);
  const order = (c.config.solver_order ?? 2) as 2 | 3;
  const arrays = Array.from({ length: 6 }, (_, i) => gaussianish(n, i + 1));
  const t = arrays.map((a) => new Tensor(a, c.shape));
  const points = [0.5, 0.4, 0.3, 0.2].map((s) =>
    sigmaToAlphaSigma(Math.fround(s), false)
  );
  const lambdas = points.map((p) => Math.log(p.alphaT) - Math.log(p.sigmaT));
  const coefficients = multistepCoefficients(
    order,
    "dpmsolver++",
    "midpoint",
    points.slice(0, order + 1),
    lambdas.slice(0, order + 1),
  )!;
  const conversion = {
    form: "sample-first" as const,
    a: 1,
    b: Math.fround(-0.4),
    d: Math.fround(0.9),
  };
  const scheduler = new DPMSolverMultistepInverseScheduler(c.config);
  scheduler.kernels = cpuKernels;
  const outputs = [2, 3, 4, 5].map((k) =>
    new Tensor(gaussianish(n, k), c.shape)
  );
  const start = new Tensor(gaussianish(n, 1), c.shape);
  const runners: [string, () => void][] = [
    ["js", () => {
      for (let s = 0; s < 50; s++) jsLoop(arrays, order - 1);
    }],
    ["js-f32", () => {
      for (let s = 0; s < 50; s++) jsF32Loop(arrays, order);
    }],
    ["kernel", () => {
      for (let s = 0; s < 50; s++) {
        if (c.config.thresholding) {
          cpuKernels.thresholdAndUpdate!(
            t[0]!,
            t[1]!,
            t[2]!,
            0.995,
            1,
            t.slice(4, 4 + order - 1),
            coefficients,
            null,
          );
        } else {
          cpuKernels.convertAndUpdate!(
            t[0]!,
            t[1]!,
            t[2]!,
            t[3]!,
            conversion,
            t.slice(4, 4 + order - 1),
            coefficients,
            null,
          );
        }
      }
    }],
    ["step", () => {
      scheduler.setTimesteps(50);
      let x = start;
      const ts = scheduler.timesteps;
      for (let i = 0; i < ts.length; i++) {
        x = scheduler.step(outputs[i % 4]!, ts[i]!, x).prevSample;
      }
    }],
  ];
  const times = runners.map((): number[] => []);
  for (let r = -2; r < rounds; r++) {
    runners.forEach(([, run], i) => {
      const t0 = performance.now();
      run();
      if (r >= 0) times[i]!.push(((performance.now() - t0) / 50) * 1000);
    });
  }
  const [js, jsF32, kernel, step] = times.map((ts) => ({
    min: Math.min(...ts),
    med: median(ts),
  }));
  const fmt = (v: { min: number; med: number }) =>
    `${v.min.toFixed(1)} / ${v.med.toFixed(1)}`;
  const ratio = (x: typeof js, y: typeof js) =>
    `${(x!.min / y!.min).toFixed(2)} / ${(x!.med / y!.med).toFixed(2)}`;
  console.log(
    `${c.name.padEnd(26)}${
      [
        fmt(js!),
        fmt(jsF32!),
        fmt(kernel!),
        fmt(step!),
        ratio(kernel, jsF32),
        ratio(kernel, js),
        ratio(step, js),
      ].map((s) => s.padStart(22)).join("")
    }`,
  );
}
