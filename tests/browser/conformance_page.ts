// The kernel cases of tests/_kernel_cases.ts in the page: on the TypeScript kernels, on WASM
// (resident and staged) and on WebGPU (Dawn), each held to the CPU oracle bit for bit (`dot` to
// float32's summation bound), exactly as tests/kernels_test.ts runs them in Deno. The harness calls `globalThis.runConformance()`.
import { WasmKernels } from "../../lib/backends/wasm.ts";
import {
  requestWebGpuKernels,
  type WebGpuKernels,
} from "../../lib/backends/webgpu.ts";
import {
  type Backend,
  cases,
  deviceBackend,
  hostBackend,
  oracle,
} from "../_kernel_cases.ts";

/** One kernel case on one backend. */
export interface ConformanceResult {
  backend: string;
  name: string;
  /** The failure's message, or `null` when the case passed. */
  error: string | null;
  ms: number;
}

let gpu: Promise<WebGpuKernels | null> | null = null;

/** Every kernel case on every backend the page has. */
async function runConformance(): Promise<ConformanceResult[]> {
  gpu ??= requestWebGpuKernels();
  const kernels = await gpu;
  // deno-lint-ignore no-explicit-any
  const backends: Backend<any>[] = [
    hostBackend("cpu", oracle),
    hostBackend("wasm resident", new WasmKernels()),
    hostBackend("wasm staged", new WasmKernels({ resident: false })),
    deviceBackend("webgpu", kernels, false),
  ];
  const results: ConformanceResult[] = [];
  for (const backend of backends) {
    for (const c of cases) {
      const start = performance.now();
      let error: string | null = null;
      try {
        if (backend.kernels === null) {
          throw new Error(`${backend.name} is not available in this page`);
        }
        await c.run(backend, backend.kernels);
      } catch (e) {
        error = (e as Error).message;
      }
      results.push({
        backend: backend.name,
        name: c.name,
        error,
        ms: performance.now() - start,
      });
    }
  }
  return results;
}

Object.assign(globalThis, { runConformance });
