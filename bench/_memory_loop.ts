// README's plain loop `x = scheduler.step(eps, t, x).prevSample` as bench/memory.ts runs it, in
// Deno and (bundled by bench/memory.ts --browser) in a Chromium page: model outputs in ordinary
// JS memory, no `out`, one synchronous loop that never yields to the event loop, 50-step passes.
import {
  cpuKernels,
  defaultKernels,
  DPMSolverMultistepInverseScheduler,
  Tensor,
} from "../mod.ts";
import { WasmKernels } from "../wasm.ts";

/** The loops of issue 15: 10,000 steps at 1×4×64×64 (order 2), 3,000 at 4×4×128×128 (order 3). */
export const CASES = [
  { name: "1x4x64x64_order2", shape: [1, 4, 64, 64], order: 2, steps: 10_000 },
  {
    name: "4x4x128x128_order3",
    shape: [4, 4, 128, 128],
    order: 3,
    steps: 3_000,
  },
] as const;

/** `wasm`: the default kernels (which must be the WebAssembly ones); `ts`: `cpuKernels`. */
export const BACKENDS = ["wasm", "ts"] as const;

/** What one loop reports besides the RSS its host measures. */
export interface LoopReport {
  backend: string;
  steps: number;
  /** Bytes of the scheduler's WebAssembly memory at the end (0 on the TypeScript kernels). */
  wasmBytes: number;
  msPerStep: number;
  /** Element count of a sample. */
  elements: number;
}

/**
 * Runs case `name` on `backend`, calling `afterPass(steps)` after every 50-step pass with the
 * steps done so far (the host reads its memory measure there: the loop itself never yields).
 */
export function runLoop(
  name: string,
  backend: string,
  afterPass: (steps: number) => void,
): LoopReport {
  const c = CASES.find((c) => c.name === name);
  if (!c || !(BACKENDS as readonly string[]).includes(backend)) {
    throw new RangeError(
      `'case' must be one of ${
        CASES.map((c) => c.name).join(", ")
      } and 'backend' one of ${
        BACKENDS.join(", ")
      }: current values are ${name}, ${backend}`,
    );
  }
  if (backend === "wasm" && defaultKernels().name !== "wasm") {
    throw new Error("the default kernels are not the WebAssembly ones here");
  }
  const n = (c.shape as readonly number[]).reduce((a, b) => a * b, 1);
  const scheduler = new DPMSolverMultistepInverseScheduler({
    solver_order: c.order,
  });
  if (backend === "ts") scheduler.kernels = cpuKernels;
  const wave = (k: number) =>
    new Tensor(
      Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i * k + k)),
      [...c.shape],
    );
  const outputs = [1, 2, 3, 4].map(wave);
  let x = wave(5);
  let k = 0;
  const start = performance.now();
  while (k < c.steps) {
    scheduler.setTimesteps(50);
    const timesteps = scheduler.timesteps;
    for (let i = 0; i < timesteps.length && k < c.steps; i++, k++) {
      x = scheduler.step(outputs[i % 4]!, timesteps[i]!, x).prevSample;
    }
    afterPass(k);
  }
  const msPerStep = (performance.now() - start) / c.steps;
  if (!Number.isFinite(x.data[0]!)) throw new Error("the loop diverged");
  const kernels = scheduler.kernels;
  return {
    backend: kernels.name,
    steps: c.steps,
    wasmBytes: kernels instanceof WasmKernels ? kernels.memoryBytes : 0,
    msPerStep,
    elements: n,
  };
}
