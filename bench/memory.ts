// Memory of README's plain loop `x = scheduler.step(eps, t, x).prevSample` (model outputs in
// ordinary JS memory, no `out`, one synchronous loop that never yields to the event loop), per
// backend: 10,000 steps at 1×4×64×64 (order 2) and 3,000 at 4×4×128×128 (order 3), 50-step
// passes. Each (backend, case) runs in its own process; it prints RSS a third of the way through
// and at the end, the growth over the last two thirds, and the bound of issue 15 (max(4 sample
// sizes, 64 MB)).
//
//   deno task bench:memory [--case NAME] [--backend wasm|ts]
import { parseArgs } from "node:util";
import {
  cpuKernels,
  defaultKernels,
  DPMSolverMultistepInverseScheduler,
  Tensor,
} from "../mod.ts";
import { WasmKernels } from "../wasm.ts";

const CASES = [
  { name: "1x4x64x64_order2", shape: [1, 4, 64, 64], order: 2, steps: 10_000 },
  {
    name: "4x4x128x128_order3",
    shape: [4, 4, 128, 128],
    order: 3,
    steps: 3_000,
  },
] as const;
const BACKENDS = ["wasm", "ts"] as const;

interface MemoryResult {
  case: string;
  backend: string;
  steps: number;
  rss_third_mb: number;
  rss_end_mb: number;
  growth_mb: number;
  bound_mb: number;
  wasm_memory_mb: number;
  ms_per_step: number;
}

function run(
  c: (typeof CASES)[number],
  backend: (typeof BACKENDS)[number],
): MemoryResult {
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
  let third = 0;
  let k = 0;
  const start = performance.now();
  while (k < c.steps) {
    scheduler.setTimesteps(50);
    const timesteps = scheduler.timesteps;
    for (let i = 0; i < timesteps.length && k < c.steps; i++, k++) {
      x = scheduler.step(outputs[i % 4]!, timesteps[i]!, x).prevSample;
      if (k + 1 === Math.round(c.steps / 3)) third = Deno.memoryUsage().rss;
    }
  }
  const ms = (performance.now() - start) / c.steps;
  const end = Deno.memoryUsage().rss;
  if (!Number.isFinite(x.data[0]!)) throw new Error("the loop diverged");
  const mb = (b: number) => Math.round(b / 1e5) / 10;
  const kernels = scheduler.kernels;
  return {
    case: c.name,
    backend: kernels.name,
    steps: c.steps,
    rss_third_mb: mb(third),
    rss_end_mb: mb(end),
    growth_mb: mb(end - third),
    bound_mb: mb(Math.max(4 * 4 * n, 64e6)),
    wasm_memory_mb: kernels instanceof WasmKernels
      ? mb(kernels.memoryBytes)
      : 0,
    ms_per_step: Math.round(ms * 1e4) / 1e4,
  };
}

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    case: { type: "string" },
    backend: { type: "string" },
    child: { type: "boolean", default: false },
  },
});
const cases = CASES.filter((c) => !args.case || c.name === args.case);
const backends = BACKENDS.filter((b) => !args.backend || b === args.backend);
if (cases.length === 0 || backends.length === 0) {
  throw new RangeError(
    `'--case' must be one of ${
      CASES.map((c) => c.name).join(", ")
    } and '--backend' one of ${
      BACKENDS.join(", ")
    }: current values are ${args.case}, ${args.backend}`,
  );
}

if (args.child) {
  if (backends[0] === "wasm" && defaultKernels().name !== "wasm") {
    throw new Error("the default kernels are not the WebAssembly ones here");
  }
  console.log(JSON.stringify(run(cases[0]!, backends[0]!)));
} else {
  console.log(
    "case                  backend  steps  RSS@1/3 MB  RSS@end MB  growth MB  bound MB  wasm MB  ms/step",
  );
  for (const c of cases) {
    for (const backend of backends) {
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-env",
          new URL(import.meta.url).pathname,
          "--child",
          "--case",
          c.name,
          "--backend",
          backend,
        ],
        stderr: "inherit",
      }).output();
      if (!output.success) throw new Error(`${c.name} ${backend} failed`);
      const r = JSON.parse(
        new TextDecoder().decode(output.stdout),
      ) as MemoryResult;
      const ok = r.growth_mb <= r.bound_mb ? "plateau" : "GROWS";
      console.log(
        `${r.case.padEnd(22)}${r.backend.padEnd(9)}${
          String(r.steps).padStart(5)
        }${r.rss_third_mb.toFixed(1).padStart(12)}${
          r.rss_end_mb.toFixed(1).padStart(12)
        }${r.growth_mb.toFixed(1).padStart(11)}${
          r.bound_mb.toFixed(1).padStart(10)
        }${r.wasm_memory_mb.toFixed(1).padStart(9)}${
          r.ms_per_step.toFixed(3).padStart(9)
        }  ${ok}`,
      );
    }
  }
}
