// The backend conformance suite: every kernel case of tests/_kernel_cases.ts (written once, with
// expected values from mathematics or from the TypeScript CPU kernels) run on every backend
// available here, the tfjs way: one test body, every backend. WebGPU is ignored without an
// adapter, except under CI=true (tests/_gpu.ts); tests/browser/ runs the same cases on Chromium's
// WebGPU.
//
// Adding a backend: one line in `backends` below (see CONTRIBUTING.md).
import { WasmKernels } from "../lib/backends/wasm.ts";
import { requestWebGpuKernels } from "../lib/backends/webgpu.ts";
import { ignore as noGpu } from "./_gpu.ts";
import {
  type Backend,
  cases,
  deviceBackend,
  hostBackend,
  oracle,
} from "./_kernel_cases.ts";

const gpu = noGpu ? null : await requestWebGpuKernels();

// deno-lint-ignore no-explicit-any
const backends: Backend<any>[] = [
  hostBackend("cpu", oracle),
  hostBackend("wasm resident", new WasmKernels()),
  hostBackend("wasm staged", new WasmKernels({ resident: false })),
  deviceBackend("webgpu", gpu, noGpu),
];

for (const backend of backends) {
  for (const c of cases) {
    Deno.test({
      name: `${c.name} [${backend.name}]`,
      ignore: backend.ignore,
      sanitizeResources: false,
      sanitizeOps: false,
      async fn() {
        if (backend.kernels === null) {
          throw new Error(`${backend.name} is not available here`);
        }
        await c.run(backend, backend.kernels);
      },
    });
  }
}

Deno.test({
  name: "conformance suite: release the WebGPU device",
  ignore: noGpu,
  sanitizeResources: false,
  sanitizeOps: false,
  fn() {
    gpu?.destroy();
    gpu?.device.destroy();
  },
});
