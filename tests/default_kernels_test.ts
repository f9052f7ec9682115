// Kernel choice without process-wide state: the default for CPU tensors is the WebAssembly SIMD
// backend where the runtime has it, a scheduler can choose its own kernels, the choices of two
// schedulers are independent, and every choice gives the same bits.
import assert from "node:assert/strict";
import {
  cpuKernels,
  defaultKernels,
  DPMSolverMultistepInverseScheduler,
  type Kernels,
  Tensor,
} from "../mod.ts";
import { kernelsFor } from "../lib/backend.ts";
import { WasmKernels } from "../wasm.ts";

function wave(shape: number[], k: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor(
    Float32Array.from({ length: n }, (_, i) => 2 * Math.sin(0.71 * i * k + k)),
    shape,
  );
}

function loop(scheduler: DPMSolverMultistepInverseScheduler): Float32Array {
  const shape = [2, 3, 8, 8];
  const outputs = [1, 2, 3].map((k) => wave(shape, k));
  scheduler.setTimesteps(20);
  let x = wave(shape, 9);
  scheduler.timesteps.forEach((t, i) => {
    x = scheduler.step(outputs[i % 3]!, t, x).prevSample;
  });
  return x.toFloat32Array();
}

Deno.test("the default kernels are the shared WebAssembly SIMD kernels in Deno", () => {
  assert.equal(WasmKernels.supported(), true);
  const kernels = defaultKernels();
  assert.ok(kernels instanceof WasmKernels);
  assert.equal(kernels, defaultKernels());
  const scheduler = new DPMSolverMultistepInverseScheduler();
  assert.equal(scheduler.kernels, kernels);
  assert.equal(kernelsFor("step", Tensor.zeros([2])), kernels);
});

Deno.test("kernels are chosen per scheduler, and every choice gives the same bits", () => {
  for (
    const config of [
      { solver_order: 3 },
      { solver_order: 2, thresholding: true },
      {
        algorithm_type: "dpmsolver" as const,
        prediction_type: "sample" as const,
      },
    ]
  ) {
    const byDefault = new DPMSolverMultistepInverseScheduler(config);
    const typeScript = new DPMSolverMultistepInverseScheduler(config);
    typeScript.kernels = cpuKernels;
    const own = new DPMSolverMultistepInverseScheduler(config);
    own.kernels = new WasmKernels({ resident: false });
    // Choosing for one scheduler leaves the others alone.
    assert.equal(byDefault.kernels, defaultKernels());
    assert.equal(typeScript.kernels, cpuKernels);
    const expected = new Uint32Array(loop(typeScript).buffer);
    assert.deepEqual(new Uint32Array(loop(byDefault).buffer), expected);
    assert.deepEqual(new Uint32Array(loop(own).buffer), expected);
  }
});

Deno.test("a scheduler's kernels must be kernels for CPU tensors", () => {
  const scheduler = new DPMSolverMultistepInverseScheduler();
  for (const bad of [null, 3, {}, { name: "x", owns: () => false }]) {
    assert.throws(
      () => {
        scheduler.kernels = bad as unknown as Kernels<Tensor>;
      },
      (e: unknown) =>
        e instanceof TypeError && /Cannot set 'kernels'/.test(e.message),
    );
  }
  assert.equal(scheduler.kernels, defaultKernels());
});

Deno.test("mixing a CPU tensor with a device tensor is a TypeError whatever the CPU kernels", () => {
  // A minimal device backend: its tensors name their kernels, as WebGPU's do.
  class DeviceTensor {
    constructor(
      readonly shape: readonly number[],
      readonly kernels: Kernels<DeviceTensor>,
    ) {}
    slice(): DeviceTensor {
      return this;
    }
  }
  const device = {
    name: "device",
    owns: (v: unknown): v is DeviceTensor => v instanceof DeviceTensor,
  } as unknown as Kernels<DeviceTensor>;
  for (const kernels of [defaultKernels(), cpuKernels]) {
    const scheduler = new DPMSolverMultistepInverseScheduler();
    scheduler.kernels = kernels;
    scheduler.setTimesteps(10);
    const shape = [1, 2, 2, 2];
    assert.throws(
      () =>
        scheduler.step(
          new DeviceTensor(shape, device) as unknown as Tensor,
          scheduler.timesteps[0]!,
          Tensor.zeros(shape),
        ),
      (e: unknown) =>
        e instanceof TypeError && /different backends/.test(e.message) &&
        e.message.includes("'device'"),
    );
  }
});
