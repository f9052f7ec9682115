// README's plain loop over many passes, watching the default kernels' WebAssembly memory: shared by
// tests/memory_test.ts (Deno) and tests/browser/memory_page.ts (a Chromium page's main thread).
import {
  defaultKernels,
  DPMSolverMultistepInverseScheduler,
  type SchedulerConfig,
  Tensor,
} from "../mod.ts";
import { WasmKernels } from "../wasm.ts";

/** A deterministic tensor of `shape` (a sine wave of frequency `k`). */
export function wave(shape: number[], k: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor(
    Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i * k + k)),
    shape,
  );
}

/** The bit patterns of a CPU tensor's values. */
export function bitsOf(t: Tensor): Uint32Array {
  return new Uint32Array(t.toFloat32Array().buffer);
}

/** The configurations whose plain loop must keep the module's memory flat. */
export const MEMORY_CONFIGS: [string, Partial<SchedulerConfig>][] = [
  ["order 2", { solver_order: 2 }],
  ["order 3", { solver_order: 3 }],
  ["thresholding", { solver_order: 2, thresholding: true }],
  ["dpmsolver, v-prediction", {
    algorithm_type: "dpmsolver",
    prediction_type: "v_prediction",
  }],
];

/** What {@link plainLoopMemory} saw. */
export interface PlainLoopMemory {
  /** The default kernels' name when the loop started. */
  kernels: string;
  /** The WebAssembly memory's byte length after each of the 1,000 steps (empty off WebAssembly). */
  bytes: number[];
  /** Whether every value of the last sample is finite. */
  finite: boolean;
  /** Whether the last result lives in the module's memory (it must not). */
  resident: boolean;
}

/** 1,000 steps of README's loop (20 passes of 50) at 2×4×16×16 on the default kernels. */
export function plainLoopMemory(
  config: Partial<SchedulerConfig>,
): PlainLoopMemory {
  const kernels = defaultKernels();
  const wasm = kernels instanceof WasmKernels ? kernels : null;
  const scheduler = new DPMSolverMultistepInverseScheduler(config);
  const shape = [2, 4, 16, 16];
  const outputs = [1, 2, 3, 4].map((k) => wave(shape, k));
  let x = wave(shape, 5);
  const bytes: number[] = [];
  for (let pass = 0; pass < 20; pass++) {
    scheduler.setTimesteps(50);
    scheduler.timesteps.forEach((t, i) => {
      x = scheduler.step(outputs[i % 4]!, t, x).prevSample;
      if (wasm) bytes.push(wasm.memoryBytes);
    });
  }
  return {
    kernels: kernels.name,
    bytes,
    finite: x.toFloat32Array().every(Number.isFinite),
    resident: wasm?.isResident(x) ?? false,
  };
}
