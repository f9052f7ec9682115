// Memory of the default path (WebAssembly kernels, README's plain loop without `out`): the module's
// memory stops growing after the first steps, whatever the loop's length, and every result lives
// in ordinary JavaScript memory, unchanged by later steps. Deterministic: byte lengths and values,
// no timing and no garbage-collection dependence.
import assert from "node:assert/strict";
import {
  defaultKernels,
  DPMSolverMultistepInverseScheduler,
  DPMSolverMultistepScheduler,
  type Tensor,
} from "../mod.ts";
import { WasmKernels } from "../wasm.ts";
import {
  bitsOf,
  MEMORY_CONFIGS,
  plainLoopMemory,
  wave,
} from "./_memory_loop.ts";

for (const [name, config] of MEMORY_CONFIGS) {
  Deno.test(`default path, ${name}: the module's memory stops growing in a long synchronous loop`, () => {
    assert.ok(
      defaultKernels() instanceof WasmKernels,
      "Deno runs the WebAssembly kernels",
    );
    const loop = plainLoopMemory(config);
    assert.equal(loop.bytes.length, 1000);
    assert.ok(loop.finite);
    // After the first pass, not one byte more.
    assert.equal(
      loop.bytes.at(-1),
      loop.bytes[49],
      `memory grew: ${loop.bytes[49]} → ${loop.bytes.at(-1)}`,
    );
    assert.equal(loop.resident, false, "results live in JS memory");
  });
}

Deno.test("default path: prevSample of step k is unchanged by later steps and stays valid", () => {
  const scheduler = new DPMSolverMultistepScheduler({ solver_order: 3 });
  const shape = [1, 4, 8, 8];
  const outputs = [1, 2, 3, 4].map((k) => wave(shape, k));
  scheduler.setTimesteps(25);
  let x = wave(shape, 7);
  const kept: { sample: Tensor; bits: Uint32Array }[] = [];
  scheduler.timesteps.forEach((t, i) => {
    x = scheduler.step(outputs[i % 4]!, t, x).prevSample;
    kept.push({ sample: x, bits: bitsOf(x) });
  });
  // Another pass on the same scheduler reuses its buffers; the results handed out stay put.
  scheduler.setTimesteps(25);
  scheduler.timesteps.forEach((t, i) => {
    x = scheduler.step(outputs[(i + 1) % 4]!, t, x).prevSample;
  });
  kept.forEach(({ sample, bits }, k) => {
    assert.deepEqual(bitsOf(sample), bits, `prevSample of step ${k} changed`);
  });
  // Distinct results are distinct arrays.
  assert.equal(
    new Set(kept.map(({ sample }) => sample.data.buffer)).size,
    kept.length,
  );
});

Deno.test("default path: inputs in the module's memory are read, never written", () => {
  const kernels = defaultKernels() as WasmKernels;
  const scheduler = new DPMSolverMultistepInverseScheduler({ solver_order: 2 });
  scheduler.setTimesteps(10);
  const shape = [1, 4, 8, 8];
  const sample = kernels.empty(shape);
  kernels.copy(sample, wave(shape, 3));
  const before = bitsOf(sample);
  const result = scheduler.step(wave(shape, 1), scheduler.timesteps[0]!, sample)
    .prevSample;
  assert.deepEqual(bitsOf(sample), before);
  assert.equal(kernels.isResident(result), false);
});
