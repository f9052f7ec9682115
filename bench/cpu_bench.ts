// CPU step benchmark on the three shapes of issue 9. Implementations:
//   default    README's plain loop `x = scheduler.step(eps, t, x).prevSample` with the default
//              kernels: inputs in ordinary JS memory (copied in), no `out` (a new result per step,
//              copied out). This is what bench:compare judges.
//   ts         the same loop with `scheduler.kernels = cpuKernels` (the TypeScript fallback).
//   plain-out  the default kernels, inputs in JS memory, `{ out }` into two JS buffers in turn:
//              the plain loop without the allocation of a new result per step.
//   resident   WasmKernels with every tensor in the module's memory and `{ out }`: no copies.
//   resident-2pass  the same without the fused kernels (conversion and update as two passes).
//   floor      one SIMD streaming pass over the arrays a fused step must touch (resident).
//   floor+copies  the floor plus what the plain loop must add around it: the sample and the model
//              output copied into the module's memory, a new Float32Array for the result and the
//              copy out.
//   js-loop    the floor's loop in plain JavaScript over Float32Arrays. Protocol, shared with reference/bench_diffusers.py: a 50-step inversion
// with 4 model outputs in rotation, timed per inversion; the median over repeats after warm-up,
// divided by 50; within a case the implementations' repeats are interleaved round-robin, so
// that the load of a shared machine weighs on all alike. GB/s is the floor's bytes (what a
// fused step must read and write) per time.
//
//   deno task bench:cpu [--json] [--repeats N] [--case NAME]
import {
  DPMSolverMultistepInverseScheduler,
  type Kernels,
  type SchedulerConfig,
  Tensor,
} from "../mod.ts";
import { WasmKernels } from "../wasm.ts";
import { cpuKernels } from "../lib/backend.ts";
import { parseArgs } from "node:util";

/** One benchmark case, as in reference/bench_diffusers.py. */
export interface BenchCase {
  name: string;
  shape: number[];
  config: Partial<SchedulerConfig>;
}

export const STEPS = 50;
export const CASES: BenchCase[] = [
  {
    name: "1x4x64x64_order2",
    shape: [1, 4, 64, 64],
    config: { solver_order: 2, algorithm_type: "dpmsolver++" },
  },
  {
    name: "4x4x128x128_order3",
    shape: [4, 4, 128, 128],
    config: { solver_order: 3, algorithm_type: "dpmsolver++" },
  },
  {
    name: "4x3x256x256_thresholding",
    shape: [4, 3, 256, 256],
    config: {
      solver_order: 2,
      algorithm_type: "dpmsolver++",
      thresholding: true,
    },
  },
];

/** One line of output (the same fields as reference/bench_diffusers.py prints). */
export interface BenchResult {
  case: string;
  impl: string;
  ms_per_step: number;
  gb_per_s: number;
  bytes_per_step: number;
  repeats: number;
}

// Deterministic standard-normal-ish float32 values (Box–Muller over an LCG).
function gaussian(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 1) / 2 ** 32;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = Math.sqrt(-2 * Math.log(uniform())) *
      Math.cos(2 * Math.PI * uniform());
  }
  return out;
}

/** The median of `values`. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

// Median ms per run of each runner `[name, run, repeats]`, after warm-up runs. The repeats are
// interleaved round-robin, so that a change in the machine's load (a shared machine) affects
// every implementation alike instead of whichever ran at the time.
function timeInterleaved(
  runners: readonly [string, () => void, number][],
): [string, number][] {
  for (const [, run, repeats] of runners) {
    for (let i = 0; i < (repeats > 3 ? 3 : 1); i++) run();
  }
  const times = runners.map((): number[] => []);
  const rounds = Math.max(...runners.map(([, , repeats]) => repeats));
  for (let round = 0; round < rounds; round++) {
    runners.forEach(([, run, repeats], i) => {
      // A runner with fewer repeats runs in evenly spread rounds.
      if (Math.floor((round * repeats) / rounds) === times[i]!.length) {
        const start = performance.now();
        run();
        times[i]!.push(performance.now() - start);
      }
    });
  }
  return runners.map(([name], i) => [name, median(times[i]!)]);
}

// Bytes a fused step reads and writes: sample, model output and order − 1 earlier outputs in,
// the converted output and the result out.
function floorBytes(c: BenchCase): number {
  const n = c.shape.reduce((a, b) => a * b, 1);
  return n * 4 * ((c.config.solver_order ?? 2) + 3);
}

// A 50-step inversion on `kernels` (the default kernels when undefined); with `empty`, each
// step writes into one of two buffers it allocates (`{ out }`), else the plain loop.
function inversion(
  c: BenchCase,
  kernels: Kernels<Tensor> | undefined,
  place: (t: Tensor) => Tensor,
  empty?: (shape: number[]) => Tensor,
): () => void {
  const n = c.shape.reduce((a, b) => a * b, 1);
  const scheduler = new DPMSolverMultistepInverseScheduler(c.config);
  if (kernels) scheduler.kernels = kernels;
  const start = place(new Tensor(gaussian(n, 1), c.shape));
  const outputs = [2, 3, 4, 5].map((seed) =>
    place(new Tensor(gaussian(n, seed), c.shape))
  );
  const buffers = empty ? [empty(c.shape), empty(c.shape)] : null;
  return () => {
    scheduler.setTimesteps(STEPS);
    let x = start;
    const timesteps = scheduler.timesteps;
    if (buffers) {
      for (let i = 0; i < timesteps.length; i++) {
        x = scheduler.step(outputs[i % 4]!, timesteps[i]!, x, {
          out: buffers[i % 2]!,
        }).prevSample;
      }
    } else {
      // README's loop, as written.
      for (let i = 0; i < timesteps.length; i++) {
        x = scheduler.step(outputs[i % 4]!, timesteps[i]!, x).prevSample;
      }
    }
    if (!Number.isFinite(x.data[x.offset]!)) {
      throw new Error(`${c.name}: the inversion diverged`);
    }
  };
}

/** Runs every case (or those named) and returns one result per case and implementation. */
export function runBenchmarks(
  options: { repeats?: number; only?: string[] } = {},
): BenchResult[] {
  const results: BenchResult[] = [];
  const wasm = new WasmKernels();
  // The same kernels without the optional fused methods: the scheduler takes separate passes.
  const twoPass = new WasmKernels();
  Object.defineProperties(twoPass, {
    convertAndUpdate: { value: undefined },
    thresholdAndUpdate: { value: undefined },
  });
  for (const c of CASES) {
    if (options.only?.length && !options.only.includes(c.name)) continue;
    const n = c.shape.reduce((a, b) => a * b, 1);
    const bytes = floorBytes(c);
    // Fewer repeats for the slow cases keep a run short; a warm-up lets the JIT settle.
    const repeats = options.repeats ?? (n > 1e6 ? 7 : n > 1e5 ? 11 : 31);
    const record = (impl: string, msPerRun: number, steps = STEPS) => {
      const ms = msPerRun / steps;
      const result = {
        case: c.name,
        impl,
        ms_per_step: ms,
        gb_per_s: bytes / (ms * 1e6),
        bytes_per_step: bytes,
        repeats,
      };
      results.push(result);
      return result;
    };

    const history = (c.config.solver_order ?? 2) - 1;
    const resident = Array.from({ length: 6 }, (_, i) => {
      const t = wasm.empty(c.shape);
      t.data.set(gaussian(n, 10 + i));
      return t;
    });
    const [out, conv, x, mo, h1, h2] = resident as [
      Tensor,
      Tensor,
      Tensor,
      Tensor,
      Tensor,
      Tensor,
    ];
    const hs = history >= 2 ? [h1, h2] : [h1];
    const plain = resident.map((t) => t.clone().data) as Float32Array[];
    const residentIn = (k: WasmKernels) => (t: Tensor) => {
      const r = k.empty(t.shape);
      k.copy(r, t);
      return r;
    };
    // What the plain loop adds to the floor: two copies in, a new result, one copy out.
    const [plainX, plainM] = [plain[2]!, plain[3]!];
    const floorWithCopies = () => {
      x.data.set(plainX);
      mo.data.set(plainM);
      wasm.streamFloor(out, conv, x, mo, hs);
      const result = new Float32Array(n);
      result.set(out.data);
      return result;
    };
    const same = (t: Tensor) => t;
    const jsBuffers = (shape: number[]) => Tensor.zeros(shape);
    // The TypeScript kernels are slow: a quarter of the repeats.
    const runners: [string, () => void, number][] = [
      ["floor", () => {
        for (let s = 0; s < STEPS; s++) wasm.streamFloor(out, conv, x, mo, hs);
      }, repeats],
      ["floor+copies", () => {
        for (let s = 0; s < STEPS; s++) floorWithCopies();
      }, repeats],
      ["js-loop", () => {
        for (let s = 0; s < STEPS; s++) jsLoop(plain, history);
      }, repeats],
      ["default", inversion(c, undefined, same), repeats],
      ["plain-out", inversion(c, undefined, same, jsBuffers), repeats],
      [
        "ts",
        inversion(c, cpuKernels, same),
        Math.max(3, repeats >> 2),
      ],
      [
        "resident",
        inversion(
          c,
          wasm,
          residentIn(wasm),
          (shape) => wasm.empty(shape),
        ),
        repeats,
      ],
      [
        "resident-2pass",
        inversion(
          c,
          twoPass,
          residentIn(twoPass),
          (shape) => twoPass.empty(shape),
        ),
        repeats,
      ],
    ];
    for (const [name, msPerRun] of timeInterleaved(runners)) {
      record(name, msPerRun);
    }
  }
  return results;
}

/** The floor's loop in plain JavaScript over Float32Arrays. */
export function jsLoop(arrays: Float32Array[], history: number): void {
  const [out, conv, x, mo, h1, h2] = arrays as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  const n = out.length;
  if (history >= 2) {
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      const m0 = v + -0.1 * mo[i]!;
      conv[i] = m0;
      out[i] = 0.9 * v + 0.3 * (m0 + (h1[i]! - h2[i]!));
    }
  } else {
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      const m0 = v + -0.1 * mo[i]!;
      conv[i] = m0;
      out[i] = 0.9 * v + 0.3 * (m0 - h1[i]!);
    }
  }
}

if (import.meta.main) {
  const { values: args } = parseArgs({
    args: Deno.args,
    options: {
      json: { type: "boolean", default: false },
      repeats: { type: "string" },
      case: { type: "string", multiple: true },
    },
  });
  const repeats = args.repeats === undefined ? undefined : Number(args.repeats);
  if (repeats !== undefined && !(Number.isInteger(repeats) && repeats >= 1)) {
    throw new RangeError(
      `'--repeats' must be a positive integer: current value is ${args.repeats}`,
    );
  }
  const unknown = (args.case ?? []).filter((name) =>
    !CASES.some((c) => c.name === name)
  );
  if (unknown.length > 0) {
    throw new RangeError(
      `'--case' must name one of ${
        CASES.map((c) => c.name).join(", ")
      }: current value is ${unknown.join(", ")}`,
    );
  }
  const results = runBenchmarks({
    ...(repeats === undefined ? {} : { repeats }),
    only: args.case ?? [],
  });
  const json = args.json;
  if (json) {
    for (const r of results) console.log(JSON.stringify(r));
  } else {
    console.log("case                        impl           ms/step      GB/s");
    for (const r of results) {
      console.log(
        `${r.case.padEnd(28)}${r.impl.padEnd(13)}${
          r.ms_per_step.toFixed(4).padStart(9)
        }${r.gb_per_s.toFixed(1).padStart(10)}`,
      );
    }
  }
}
