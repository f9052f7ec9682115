// What a scheduler step costs besides its arithmetic: 50-step inversions of a 16-element sample
// (1×4×2×2, order 2, dpmsolver++) with the WebAssembly and the TypeScript kernels, all tensors
// resident and `out` given, as in bench/cpu_bench.ts. Prints µs per step (median of 21 timings of
// 2000 inversions each, after a warm-up).
//
//   deno task bench:overhead
import {
  DPMSolverMultistepInverseScheduler,
  type Kernels,
  type Tensor,
} from "../mod.ts";
import { WasmKernels } from "../wasm.ts";
import { cpuKernels } from "../lib/backend.ts";
import { median } from "./cpu_bench.ts";

const SHAPE = [1, 4, 2, 2];
const STEPS = 50;
const INVERSIONS = 2000;

function microsecondsPerStep(kernels: Kernels<Tensor>): number {
  {
    const scheduler = new DPMSolverMultistepInverseScheduler({
      solver_order: 2,
      algorithm_type: "dpmsolver++",
    });
    scheduler.kernels = kernels;
    const make = (value: number) => {
      const t = kernels.empty(SHAPE);
      t.data.fill(value);
      return t;
    };
    const start = make(0.5);
    const outputs = [0.1, 0.2, 0.3, 0.4].map(make);
    const buffers = [make(0), make(0)];
    const inversion = () => {
      scheduler.setTimesteps(STEPS);
      let sample = start;
      const timesteps = scheduler.timesteps;
      for (let i = 0; i < timesteps.length; i++) {
        sample = scheduler.step(outputs[i % 4]!, timesteps[i]!, sample, {
          out: buffers[i % 2]!,
        }).prevSample;
      }
    };
    const times: number[] = [];
    for (let repeat = -3; repeat < 21; repeat++) {
      const t0 = performance.now();
      for (let i = 0; i < INVERSIONS; i++) inversion();
      if (repeat >= 0) times.push(performance.now() - t0);
    }
    return (median(times) / (INVERSIONS * STEPS)) * 1000;
  }
}

if (import.meta.main) {
  for (
    const [name, kernels] of [
      ["wasm", new WasmKernels()],
      ["ts", cpuKernels],
    ] as const
  ) {
    console.log(
      `${name.padEnd(5)} ${microsecondsPerStep(kernels).toFixed(3)} µs/step`,
    );
  }
}
