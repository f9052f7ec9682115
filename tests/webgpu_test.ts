// What is specific to the WebGPU backend (the kernels' values on every backend are in
// tests/kernels_test.ts): every reference case of reference/manifest.json stepped on the device
// against the CPU and diffusers, the work the kernels record (one submit per step, fused
// dispatches, fallbacks when fused operands alias), dispatches split beyond the workgroup limit,
// tensors split into binding windows, large thresholding items, buffer wrapping and sharing,
// device loss, a missing adapter, and kernels the device rejects. Tolerances: GPU vs CPU within
// 1e-6 × max(1, max|x|) (bit-equal on llvmpipe, counted in the summary); GPU vs diffusers as
// tests/multistep_inverse_test.ts (1e-5 per step, 1e-4 for a whole loop).
import assert from "node:assert/strict";
import {
  DPMSolverMultistepInverseScheduler,
  type Kernels,
  type ModelOutputConversion,
  type MultistepCoefficients,
  Tensor,
  type TensorView,
} from "../mod.ts";
import {
  createWebGpuKernels,
  requestWebGpuKernels,
  WebGpuDeviceLostError,
  WebGpuKernelError,
  WebGpuKernels,
  type WebGpuTensor,
  WebGpuUnavailableError,
} from "../webgpu.ts";
import { multistepCoefficients } from "../lib/solver.ts";
import { sigmaToAlphaSigma } from "../lib/noise_schedule.ts";
import { cpuKernels } from "../lib/backend.ts";
import { adapterName, available, ignore, required } from "./_gpu.ts";
import {
  cases,
  float32,
  int32,
  LOOP_TOLERANCE,
  row,
  schedulerFor,
  standinModel,
  STEP_TOLERANCE,
} from "./_reference.ts";
import { assertClose, WorstError } from "./_parity.ts";
import { convertThenUpdate } from "../lib/_convert.ts";
import { coefficients, conversions, values } from "./_kernel_fixtures.ts";
import { abs, dotBound, oracle } from "./_kernel_cases.ts";

const GPU_TOLERANCE = 1e-6;

Deno.test({
  name: "WebGPU adapter exists under CI=true",
  ignore: !required,
  fn() {
    assert.ok(
      available,
      "CI=true but navigator.gpu has no adapter: install mesa-vulkan-drivers",
    );
  },
});

// One device for the whole file (pipelines compile once); the last test destroys it.
const gpu = ignore ? null : await requestWebGpuKernels();

function gpuTest(name: string, fn: (gpu: WebGpuKernels) => Promise<void>) {
  Deno.test({
    name,
    ignore,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      assert.ok(gpu, `no WebGPU device on adapter ${adapterName}`);
      gpu.device.pushErrorScope("validation");
      await fn(gpu);
      const error = await gpu.device.popErrorScope();
      assert.equal(error, null, error?.message);
    },
  });
}

// For the parity summary: GPU results compared with the CPU's, and the worst errors.
let comparedToCpu = 0;
let bitEqualToCpu = 0;
const worstVsCpu = new WorstError();
const worstStep = new WorstError();
const worstLoop = new WorstError();

function checkCpu(gpuResult: Tensor, cpuResult: Tensor, where: string) {
  const vsCpu = `${where} (GPU vs CPU)`;
  const error = assertClose(gpuResult, cpuResult, GPU_TOLERANCE, vsCpu);
  worstVsCpu.note(error, where);
  comparedToCpu++;
  if (error === 0) bitEqualToCpu++;
}

for (const c of cases) {
  if (c.kind === "add_noise") {
    gpuTest(
      `${c.name}: addNoise on WebGPU matches CPU and diffusers`,
      async (gpu) => {
        const scheduler = await schedulerFor(c);
        const original = await float32(c, "original.npy");
        const noise = await float32(c, "noise.npy");
        const timesteps = await int32(c, "noise_timesteps.npy");
        const [x, n] = [gpu.upload(original), gpu.upload(noise)];
        const noisy = scheduler.addNoise(x, n, timesteps);
        const result = await noisy.read();
        checkCpu(
          result,
          scheduler.addNoise(original, noise, timesteps),
          c.name,
        );
        const expected = await float32(c, "noisy.npy");
        assertClose(result, expected, STEP_TOLERANCE, `${c.name} addNoise`);
        for (const t of [x, n, noisy]) t.release();
      },
    );
    continue;
  }

  gpuTest(`${c.name}: WebGPU steps match CPU and diffusers`, async (gpu) => {
    const onGpu = await schedulerFor(c);
    const onCpu = await schedulerFor(c);
    const samples = await float32(c, "samples.npy");
    const modelOutputs = await float32(c, "model_outputs.npy");
    // Reads are started at once and awaited together: each wait costs a device poll.
    const pending: Promise<Tensor>[] = [];
    const cpuResults: Tensor[] = [];
    for (let i = 0; i < c.steps; i++) {
      const t = onGpu.timesteps[Math.min(i, onGpu.timesteps.length - 1)]!;
      const sample = row(samples, i);
      const modelOutput = row(modelOutputs, i);
      const [x, m] = [gpu.upload(sample), gpu.upload(modelOutput)];
      const out = onGpu.step(m, t, x).prevSample;
      pending.push(out.read()); // the copy is recorded now, so the buffers may go back
      for (const tensor of [x, m, out]) tensor.release();
      cpuResults.push(onCpu.step(modelOutput, t, sample).prevSample);
    }
    (await Promise.all(pending)).forEach((result, i) => {
      const where = `${c.name} step ${i}`;
      checkCpu(result, cpuResults[i]!, where);
      const expected = row(samples, i + 1);
      assertClose(result, expected, STEP_TOLERANCE, where, worstStep);
    });

    // A whole inversion with the stand-in model (evaluated on the CPU: a test-only readback).
    const loopGpu = await schedulerFor(c);
    const loopCpu = await schedulerFor(c);
    let sample = gpu.upload(row(samples, 0).clone());
    let cpuSample = row(samples, 0).clone();
    for (const t of loopGpu.timesteps) {
      const host = await sample.read();
      const output = gpu.upload(standinModel(host, t, c.learned_variance));
      const next = loopGpu.step(output, t, sample).prevSample;
      output.release();
      sample.release();
      sample = next;
      cpuSample = loopCpu.step(
        standinModel(cpuSample, t, c.learned_variance),
        t,
        cpuSample,
      ).prevSample;
    }
    const result = await sample.read();
    sample.release();
    checkCpu(result, cpuSample, `${c.name} loop`);
    const expected = row(samples, c.steps);
    assertClose(result, expected, LOOP_TOLERANCE, c.name, worstLoop);
  });
}

async function same(gpuTensor: WebGpuTensor, cpuTensor: Tensor, what: string) {
  checkCpu(await gpuTensor.read(), cpuTensor, what);
}

// The CPU backend's multistep update into a new tensor (`history` cut to the order): the
// reference the device is held to.
function multistepOnCpu(
  sample: Tensor,
  history: Tensor[],
  c: MultistepCoefficients,
  noise: Tensor | null,
): Tensor {
  const out = Tensor.zeros(sample.shape);
  cpuKernels.multistep(out, sample, history.slice(0, c.order), c, noise);
  return out;
}

gpuTest(
  "dispatches split along y beyond maxComputeWorkgroupsPerDimension",
  async (gpu) => {
    const small = new WebGpuKernels(gpu.device, {
      maxWorkgroupsPerDimension: 4,
    });
    const shape = [2, 5, 401]; // 4010 elements: 16 workgroups, as 4 × 4
    const x = values(shape, 21);
    const m = values(shape, 22);
    const [gx, gm] = [small.upload(x), small.upload(m)];
    const out = small.empty(shape);
    const points = [2, 1.5].map((s) => sigmaToAlphaSigma(s, false));
    const c = multistepCoefficients(1, "dpmsolver++", "midpoint", points)!;
    const expected = multistepOnCpu(x, [m], c, null);
    small.multistep(out, gx, [gm], c, null);
    await same(out, expected, "split multistep");
    cpuKernels.threshold(x, 0.95, 2);
    small.threshold(gx, 0.95, 2);
    await same(gx, x, "split threshold");
    small.destroy();
  },
);

gpuTest(
  "step() keeps GPU tensors on the device and allocates nothing in steady state",
  async (gpu) => {
    const scheduler = new DPMSolverMultistepInverseScheduler({
      solver_order: 3,
      thresholding: true,
      algorithm_type: "dpmsolver++",
    });
    scheduler.setTimesteps(20);
    const shape = [2, 4, 8, 8];
    const modelOutput = gpu.upload(values(shape, 5, 1));
    let sample = gpu.upload(values(shape, 6, 1));
    let spare = gpu.empty(shape);
    let before = gpu.stats;
    scheduler.timesteps.forEach((t, i) => {
      if (i === 4) before = gpu.stats; // after the history window and the pipelines are warm
      const out = scheduler.step(modelOutput, t, sample, { out: spare })
        .prevSample;
      assert.ok(gpu.owns(out));
      spare = sample;
      sample = out;
    });
    const after = gpu.stats;
    assert.equal(after.buffersCreated, before.buffersCreated);
    assert.equal(after.pipelines, before.pipelines);
    assert.ok(after.submits > before.submits);
    assert.ok((await sample.read()).toFloat32Array().every(Number.isFinite));
    for (const t of [modelOutput, sample, spare]) t.release();
  },
);

gpuTest(
  "mixing CPU and GPU tensors, or two devices' tensors, is a TypeError",
  async (gpu) => {
    const scheduler = new DPMSolverMultistepInverseScheduler();
    scheduler.setTimesteps(10);
    const cpu = Tensor.zeros([1, 1, 2, 2]);
    const onGpu = gpu.upload(cpu);
    const t = scheduler.timesteps[0]!;
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => scheduler.step(cpu as any, t, onGpu),
      (e: Error) =>
        e instanceof TypeError && /different backends/.test(e.message),
    );
    const other = new WebGpuKernels(gpu.device);
    const foreign = other.upload(cpu);
    assert.throws(() => scheduler.step(foreign, t, onGpu), TypeError);
    assert.throws(() => gpu.copy(onGpu, foreign), TypeError);
    other.destroy();
    onGpu.release();
    assert.throws(() => gpu.copy(gpu.empty([1, 1, 2, 2]), onGpu), /released/);
    await Promise.resolve();
  },
);

gpuTest(
  "wrap() views an existing GPUBuffer with strides and offset",
  async (gpu) => {
    const data = Float32Array.from({ length: 40 }, (_, i) => i - 20);
    const buffer = gpu.device.createBuffer({
      size: data.byteLength,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC |
        GPUBufferUsage.COPY_DST,
    });
    gpu.device.queue.writeBuffer(buffer, 0, data);
    const view = gpu.wrap(buffer, [3, 4], { strides: [10, 2], offset: 5 });
    const expected = new Tensor(data, [3, 4], [10, 2], 5);
    await same(view, expected.clone(), "wrap read");
    const out = gpu.empty([3, 4]);
    gpu.axpbyDiv(out, 2, view, 1, view, 1);
    const twice = Tensor.zeros([3, 4]);
    cpuKernels.axpbyDiv(twice, 2, expected, 1, expected, 1);
    await same(out, twice, "wrap axpbyDiv");
    assert.throws(
      () => gpu.wrap(buffer, [3, 4], { strides: [10, 2], offset: 20 }),
      RangeError,
    );
    const uniform = gpu.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.UNIFORM,
    });
    assert.throws(() => gpu.wrap(uniform, [4]), TypeError);
    view.release(); // forgets, does not destroy: the buffer is still usable
    gpu.device.queue.writeBuffer(buffer, 0, data);
    out.release();
    buffer.destroy();
    uniform.destroy();
  },
);

gpuTest(
  "requestWebGpuKernels({ device }) shares the device and leaves it alive",
  async (gpu) => {
    const shared = await requestWebGpuKernels({ device: gpu.device });
    assert.ok(shared);
    assert.equal(shared.device, gpu.device);
    const x = shared.upload(Tensor.from([1, 2, 3]));
    assert.deepEqual(Array.from((await x.read()).toFloat32Array()), [1, 2, 3]);
    shared.destroy();
    const y = gpu.upload(Tensor.from([4]));
    assert.deepEqual(Array.from((await y.read()).toFloat32Array()), [4]);
    y.release();
  },
);

// Work a kernel call records: [submits, dispatches].
function recorded(gpu: WebGpuKernels, run: () => void): [number, number] {
  const before = gpu.stats;
  run();
  const after = gpu.stats;
  return [
    after.submits - before.submits,
    after.dispatches - before.dispatches,
  ];
}

/** The tensors a multistep update writes and reads; `history` holds the earlier model outputs. */
interface UpdateOperands<T> {
  out: T;
  sample: T;
  history: readonly T[];
  noise: T | null;
}

/** A convertAndUpdate call's tensors: `modelOutput` is converted into `converted` first. */
interface ConvertOperands<T> extends UpdateOperands<T> {
  converted: T;
  modelOutput: T;
}

// convertAndUpdate as lib/kernels.ts specifies it, with the separate kernels: the conversion,
// then the update reading it.
function separately<T extends TensorView<T>>(
  kernels: Kernels<T>,
  conversion: ModelOutputConversion,
  v: ConvertOperands<T>,
  c: MultistepCoefficients,
) {
  const { out, converted, sample, modelOutput, history, noise } = v;
  convertThenUpdate(
    kernels,
    out,
    converted,
    sample,
    modelOutput,
    conversion,
    history,
    c,
    noise,
  );
}

// thresholdAndUpdate as lib/kernels.ts specifies it, with the separate kernels: x0 thresholded
// in place, then the update reading it. (x0 is apart from the operands: each call thresholds its
// own copy.)
function thresholdThenUpdate<T extends TensorView<T>>(
  kernels: Kernels<T>,
  v: UpdateOperands<T>,
  x0: T,
  ratio: number,
  maxValue: number,
  c: MultistepCoefficients,
) {
  kernels.threshold(x0, ratio, maxValue);
  const history = [x0, ...v.history].slice(0, c.order);
  kernels.multistep(v.out, v.sample, history, c, v.noise);
}

// The fused kernels; each returns the work it recorded: [submits, dispatches].
function fusedConvertAndUpdate(
  kernels: WebGpuKernels,
  conversion: ModelOutputConversion,
  v: ConvertOperands<WebGpuTensor>,
  c: MultistepCoefficients,
): [number, number] {
  return recorded(kernels, () =>
    kernels.convertAndUpdate(
      v.out,
      v.converted,
      v.sample,
      v.modelOutput,
      conversion,
      v.history,
      c,
      v.noise,
    ));
}

function fusedThresholdAndUpdate(
  kernels: WebGpuKernels,
  v: UpdateOperands<WebGpuTensor>,
  x0: WebGpuTensor,
  ratio: number,
  maxValue: number,
  c: MultistepCoefficients,
): [number, number] {
  return recorded(kernels, () =>
    kernels.thresholdAndUpdate(
      v.out,
      x0,
      v.sample,
      ratio,
      maxValue,
      v.history,
      c,
      v.noise,
    ));
}

// The fused kernels' values are held to the CPU by tests/kernels_test.ts; here, the work they
// record on the device, and where they fall back to the separate kernels.
gpuTest(
  "convertAndUpdate() is one submit and one dispatch; thresholdAndUpdate() one submit of 9; aliased operands fall back",
  async (gpu) => {
    const shape = [2, 3, 5, 7];
    const dims = [1, 3, 2, 0];
    const bases = [1, 2, 3, 4, 5].map((seed) =>
      values([7, 2, 5, 3], 40 + seed)
    );
    const onGpu = bases.map((t) => gpu.upload(t));
    const [gx, gm, g1, g2, gn] = onGpu.map((t) => t.permute(dims));
    const fused = {
      out: gpu.empty(shape),
      converted: gpu.empty(shape),
      sample: gx!,
      modelOutput: gm!,
      history: [g1!, g2!],
      noise: gn!,
    };
    for (const order of [1, 2, 3] as const) {
      for (const algorithm of ["dpmsolver++", "sde-dpmsolver++"] as const) {
        const c = coefficients(order, algorithm);
        const what = `order ${order} ${algorithm}`;
        for (const conversion of conversions) {
          const work = fusedConvertAndUpdate(gpu, conversion, fused, c);
          assert.deepEqual(work, [1, 1], `${what} ${conversion.form}`);
        }
        const x0Buffer = gpu.upload(bases[0]!);
        const x0 = x0Buffer.permute(dims);
        let work = fusedThresholdAndUpdate(gpu, fused, x0, 0.9, 1.5, c);
        assert.deepEqual(work, [1, 9], `${what}: thresholdAndUpdate`);
        // x0 sharing memory with the sample: threshold() then multistep().
        const onView = { ...fused, sample: x0 };
        work = fusedThresholdAndUpdate(gpu, onView, x0, 0.9, 1.5, c);
        assert.equal(work[0], 2, `${what}: aliased x0 falls back`);
        x0Buffer.release();
      }
    }
    // One buffer of 4 items [sample, model output, m1, spare]: out and converted placed in it.
    const c = coefficients(2, "dpmsolver++");
    const host = gpu.upload(values([4, 2, 4, 6], 60));
    const item = (i: number) => host.slice(0, i, i + 1);
    const spareOfPair = host.slice(0, 2, 4).slice(0, 1, 2);
    const layouts: [string, WebGpuTensor, WebGpuTensor, number][] = [
      ["out aliases sample", item(0), item(3), 1],
      ["converted in the same buffer, disjoint", item(1), item(3), 1],
      ["converted aliases the model output", item(3), item(1), 2],
      ["converted overlaps out", item(3), spareOfPair, 2],
      ["converted aliases the history", item(3), item(2), 2],
    ];
    for (const [name, out, converted, dispatches] of layouts) {
      const operands = {
        out,
        converted,
        sample: item(0),
        modelOutput: item(1),
        history: [item(2)],
        noise: null,
      };
      const work = fusedConvertAndUpdate(gpu, conversions[1]!, operands, c);
      assert.equal(work[1], dispatches, `${name}: dispatches`);
    }
    for (const t of [...onGpu, host, fused.out, fused.converted]) t.release();
    await Promise.resolve();
  },
);

gpuTest(
  "threshold() on items of more than 1024 workgroups, and read() of a strided view",
  async (gpu) => {
    // 300001 floats per item: each histogram workgroup loops over several blocks of the item.
    for (const shape of [[2, 300_001], [4, 3, 64, 64]]) {
      for (const ratio of [0, 0.87, 0.9999, 1]) {
        const x = values(shape, 200 + ratio * 10, 4);
        const g = gpu.upload(x);
        cpuKernels.threshold(x, ratio, 1.5);
        gpu.threshold(g, ratio, 1.5);
        await same(g, x, `threshold ${shape} ${ratio}`);
        g.release();
      }
    }
    const doubled = values([2, 6, 4, 4], 11);
    const gd = gpu.upload(doubled);
    await same(gd.slice(1, 1, 4), doubled.slice(1, 1, 4).clone(), "read view");
    gd.release();
  },
);

// Bit equality with the CPU backend (and counted in the parity summary).
async function bitsOfCpu(
  gpuTensor: WebGpuTensor,
  cpuTensor: Tensor,
  what: string,
) {
  const result = await gpuTensor.read();
  assert.deepEqual(
    new Uint32Array(result.toFloat32Array().buffer),
    new Uint32Array(cpuTensor.contiguous().toFloat32Array().buffer),
    `${what}: GPU and CPU bits differ`,
  );
  checkCpu(result, cpuTensor, what);
}

gpuTest(
  "tensors beyond maxStorageBufferBindingSize split into binding windows, bit-identical to the CPU",
  async (gpu) => {
    // 4 KiB bindings: a [2, 4, 16, 20] tensor (10 KiB) takes 3 windows; its channel slice of a
    // [2, 8, 16, 20] tensor (the learned-variance split) has rows of 5 KiB, so the split goes
    // one dimension deeper. 8 KiB bindings let the thresholding's batch items (5 KiB) fit.
    const small = new WebGpuKernels(gpu.device, {
      maxStorageBufferBindingSize: 4096,
    });
    const medium = new WebGpuKernels(gpu.device, {
      maxStorageBufferBindingSize: 8192,
    });
    const shape = [2, 4, 16, 20];
    const bases = [1, 2, 3, 4, 5].map((seed) => values(shape, 90 + seed));
    const doubled = values([2, 8, 16, 20], 96);
    for (const kernels of [small, medium]) {
      const onGpu = bases.map((t) => kernels.upload(t));
      const gd = kernels.upload(doubled);
      const slice = doubled.slice(1, 4, 8);
      const gs = gd.slice(1, 4, 8);
      const [x, m1, m2, noise, extra] = bases;
      const [gx, g1, g2, gn] = onGpu;
      const limit = kernels === small ? "4 KiB" : "8 KiB";
      const out = kernels.empty(shape);
      const converted = kernels.empty(shape);
      // copy: strided to contiguous, contiguous into the strided slice.
      let work = recorded(kernels, () => kernels.copy(out, gs));
      assert.equal(work[0], 1, "one submit");
      assert.ok(work[1] > 1, `copy split into ${work[1]} dispatches`);
      await bitsOfCpu(out, slice, `${limit} copy (strided source)`);
      const target = doubled.clone();
      const gt = kernels.upload(target);
      cpuKernels.copy(target.slice(1, 4, 8), x!);
      kernels.copy(gt.slice(1, 4, 8), gx!);
      await bitsOfCpu(gt, target, `${limit} copy (strided target)`);
      gt.release();
      // axpbyDiv with and without y, the slice as an operand.
      for (const withY of [false, true]) {
        const expected = Tensor.zeros(shape);
        const [a, b, d] = [0.83, -0.41, 0.77].map(Math.fround);
        cpuKernels.axpbyDiv(expected, a!, slice, b!, withY ? x! : null, d!);
        kernels.axpbyDiv(out, a!, gs, b!, withY ? gx! : null, d!);
        await bitsOfCpu(out, expected, `${limit} axpbyDiv y=${withY}`);
      }
      // The operands of convertAndUpdate, the slice as its model output, and of thresholdAndUpdate
      // (which takes x0 apart).
      const cpu = {
        out: Tensor.zeros(shape),
        converted: Tensor.zeros(shape),
        sample: x!,
        modelOutput: slice,
        history: [m1!, m2!],
        noise: noise!,
      };
      const fused = {
        out,
        converted,
        sample: gx!,
        modelOutput: gs,
        history: [g1!, g2!],
        noise: gn!,
      };
      for (const order of [1, 2, 3] as const) {
        for (const algorithm of ["dpmsolver++", "sde-dpmsolver++"] as const) {
          const c = coefficients(order, algorithm);
          const what = `${limit} order ${order} ${algorithm}`;
          // multistep with the slice as the newest model output.
          const expected = multistepOnCpu(x!, [slice, m1!, m2!], c, noise!);
          kernels.multistep(out, gx!, [gs, g1!, g2!], c, gn!);
          await bitsOfCpu(out, expected, `${what} multistep`);
          // convertAndUpdate: one submit, several dispatches.
          for (const conversion of conversions) {
            separately(cpuKernels, conversion, cpu, c);
            work = fusedConvertAndUpdate(kernels, conversion, fused, c);
            assert.equal(work[0], 1, "one submit");
            assert.ok(work[1] > 1, `convertAndUpdate split: ${work[1]}`);
            const where = `${what} convertAndUpdate ${conversion.form}`;
            await bitsOfCpu(out, cpu.out, where);
            await bitsOfCpu(converted, cpu.converted, `${where} (converted)`);
          }
        }
      }
      // Steady state: the split creates no buffers and no pipelines on a second call.
      const c = coefficients(3, "sde-dpmsolver++");
      kernels.multistep(out, gx!, [gs, g1!, g2!], c, gn!);
      const before = kernels.stats;
      kernels.multistep(out, gx!, [gs, g1!, g2!], c, gn!);
      const after = kernels.stats;
      assert.equal(after.buffersCreated, before.buffersCreated);
      assert.equal(after.pipelines, before.pipelines);
      if (kernels === small) {
        // One batch item (5 KiB) exceeds the binding: the radix select cannot split it.
        assert.throws(
          () => kernels.threshold(gx!, 0.9, 1.5),
          (error: Error) =>
            error instanceof RangeError &&
            /one batch item spans \d+ bytes: the device binds at most 4096 \(maxStorageBufferBindingSize\)/
              .test(error.message),
        );
      } else {
        // threshold on the strided slice and a contiguous tensor, thresholdAndUpdate: every
        // pass windowed by whole batch items.
        const ex = slice.clone();
        cpuKernels.threshold(ex, 0.9, 1.5);
        const gsCopy = kernels.upload(doubled);
        const gsView = gsCopy.slice(1, 4, 8);
        work = recorded(kernels, () => kernels.threshold(gsView, 0.9, 1.5));
        assert.equal(work[0], 1, "one submit");
        assert.ok(work[1] > 9, `threshold split: ${work[1]}`);
        await bitsOfCpu(gsView, ex, "8 KiB threshold (strided)");
        gsCopy.release();
        for (const order of [1, 2, 3] as const) {
          const c = coefficients(order, "sde-dpmsolver++", "heun");
          const x0 = extra!.clone();
          thresholdThenUpdate(cpuKernels, cpu, x0, 0.95, 2, c);
          const gx0 = kernels.upload(extra!);
          work = fusedThresholdAndUpdate(kernels, fused, gx0, 0.95, 2, c);
          assert.equal(work[0], 1, "one submit");
          assert.ok(work[1] > 9, `thresholdAndUpdate split: ${work[1]}`);
          const what = `8 KiB thresholdAndUpdate order ${order}`;
          await bitsOfCpu(out, cpu.out, what);
          await bitsOfCpu(gx0, x0, `${what} (x0)`);
          gx0.release();
        }
      }
      for (const t of [...onGpu, gd, out, converted]) t.release();
    }
    small.destroy();
    medium.destroy();
  },
);

gpuTest(
  "maxAbs and dot over tensors split into binding windows and capped workgroups: one submit, pooled scratch",
  async (gpu) => {
    // 4 KiB bindings: 70000 floats take 69 windows of up to 4 workgroups, so the finishing pass
    // of dot strides over 276 partials; the channel slice of [2, 8, 16, 20] splits a dimension
    // deeper. One workgroup per dimension makes every thread stride over its window.
    const variants = [
      new WebGpuKernels(gpu.device, { maxStorageBufferBindingSize: 4096 }),
      new WebGpuKernels(gpu.device, { maxWorkgroupsPerDimension: 1 }),
    ];
    const long = values([70000], 130, 2);
    long.data[69999] = -3; // the maximum, in the last window
    const other = values([70000], 131, 2);
    const doubled = values([2, 8, 16, 20], 132);
    const slice = doubled.slice(1, 4, 8);
    const sliceOther = values([2, 4, 16, 20], 133);
    for (const kernels of variants) {
      const gl = kernels.upload(long);
      const go = kernels.upload(other);
      const gs = kernels.upload(doubled).slice(1, 4, 8);
      const gso = kernels.upload(sliceOther);
      for (
        const [what, x, y, gx, gy] of [
          ["70000 floats", long, other, gl, go],
          ["a channel slice", slice, sliceOther, gs, gso],
        ] as const
      ) {
        assert.equal(await kernels.maxAbs(gx), oracle.maxAbs(x), what);
        const n = x.size;
        const error = Math.abs(
          (await kernels.dot(gx, gy)) - oracle.dot(x, y),
        );
        const bound = dotBound(n, oracle.dot(abs(x), abs(y)));
        assert.ok(error <= bound, `${what}: dot off by ${error} > ${bound}`);
      }
      assert.equal(await kernels.maxAbs(gl), 3);
      // One submit per reduction (the readback's copy is a second); the scratch buffers come
      // back to the pool, so a repeat creates none.
      let pending: Promise<number> | null = null;
      const work = recorded(kernels, () => (pending = kernels.dot(gl, go)));
      assert.equal(work[0], 2, "the reduction and the readback's copy");
      await pending;
      const before = kernels.stats;
      await kernels.dot(gl, go);
      await kernels.maxAbs(gl);
      assert.equal(kernels.stats.buffersCreated, before.buffersCreated);
      // A NaN in the last window.
      const withNaN = long.clone();
      withNaN.data[69998] = NaN;
      const gn = kernels.upload(withNaN);
      assert.ok(Number.isNaN(await kernels.maxAbs(gn)));
      assert.ok(Number.isNaN(await kernels.dot(gn, go)));
      kernels.destroy();
    }
  },
);

gpuTest(
  "a scheduler step is one dispatch (convertAndUpdate), or 2 submits with thresholding",
  async (gpu) => {
    const shape = [1, 4, 8, 8];
    for (const thresholding of [false, true]) {
      const scheduler = new DPMSolverMultistepInverseScheduler({
        solver_order: 3,
        thresholding,
      });
      scheduler.setTimesteps(10);
      const eps = gpu.upload(values(shape, 80, 1));
      let sample = gpu.upload(values(shape, 81, 1));
      for (const [i, t] of scheduler.timesteps.entries()) {
        const work = recorded(gpu, () => {
          const next = scheduler.step(eps, t, sample).prevSample;
          sample.release();
          sample = next;
        });
        if (i > 0) {
          // With thresholding: the conversion, then the select and the fused apply + update.
          assert.deepEqual(work, thresholding ? [2, 10] : [1, 1], `step ${i}`);
        }
      }
      eps.release();
      sample.release();
    }
    await Promise.resolve();
  },
);

Deno.test({
  name:
    "a lost WebGPU device: WebGpuDeviceLostError on the next call and readback, CPU tensors untouched",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const own = await createWebGpuKernels(); // owns its device
    const shape = [1, 4, 8, 8];
    const cpuSample = values(shape, 90, 1);
    const cpuEps = values(shape, 91, 1);
    const snapshot = [cpuSample.clone(), cpuEps.clone()];
    const onGpu = new DPMSolverMultistepInverseScheduler();
    const onCpu = new DPMSolverMultistepInverseScheduler();
    onGpu.setTimesteps(10);
    onCpu.setTimesteps(10);
    const [t0, t1, t2] = onGpu.timesteps;
    const eps = own.upload(cpuEps);
    const x = onGpu.step(eps, t0!, own.upload(cpuSample)).prevSample;
    const cpuX = onCpu.step(cpuEps, t0!, cpuSample).prevSample;
    checkCpu(await x.read(), cpuX, "before the loss");
    const y = onGpu.step(eps, t1!, x).prevSample; // submitted, not read yet
    own.device.destroy();
    const isLost = (e: Error) =>
      e instanceof WebGpuDeviceLostError && e.reason === "destroyed" &&
      /WebGPU device was lost \(reason: destroyed/.test(e.message);
    await assert.rejects(() => y.read(), isLost);
    assert.throws(() => onGpu.step(eps, t2!, y), isLost);
    assert.throws(() => own.upload(cpuSample), isLost);
    assert.throws(() => own.empty(shape), isLost);
    // The CPU side: inputs unchanged, and the CPU scheduler goes on.
    assert.deepEqual(cpuSample.toFloat32Array(), snapshot[0]!.toFloat32Array());
    assert.deepEqual(cpuEps.toFloat32Array(), snapshot[1]!.toFloat32Array());
    const cpuY = onCpu.step(cpuEps, t1!, cpuX).prevSample;
    assert.ok(cpuY.toFloat32Array().every(Number.isFinite));
    own.destroy(); // harmless after the loss

    // Destroyed kernels (on a shared device that stays alive) refuse work.
    const host = (await requestWebGpuKernels())!;
    const shared = new WebGpuKernels(host.device);
    const z = shared.upload(cpuSample);
    shared.destroy();
    await assert.rejects(() => z.read(), /WebGPU kernels were destroyed/);
    assert.throws(() => shared.upload(cpuSample), /were destroyed/);
    host.destroy();
  },
});

Deno.test("no adapter: requestWebGpuKernels() is null, createWebGpuKernels() says why", async () => {
  const gpuObject = (navigator as { gpu?: GPU }).gpu;
  if (gpuObject === undefined) {
    assert.equal(await requestWebGpuKernels(), null);
    await assert.rejects(
      () => createWebGpuKernels(),
      /navigator\.gpu is missing/,
    );
    return;
  }
  Object.defineProperty(gpuObject, "requestAdapter", {
    value: () => Promise.resolve(null),
    configurable: true,
  });
  try {
    assert.equal(await requestWebGpuKernels(), null);
    await assert.rejects(
      () => createWebGpuKernels(),
      (e: Error) =>
        e instanceof WebGpuUnavailableError &&
        /no adapter or device is available: requestAdapter\(\) returned null/
          .test(e.message),
    );
  } finally {
    delete (gpuObject as { requestAdapter?: unknown }).requestAdapter;
  }
});

gpuTest(
  "read() of a wrapped buffer its owner destroyed is an error, not stale data",
  async (gpu) => {
    const buffer = gpu.device.createBuffer({
      size: 64,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    const view = gpu.wrap(buffer, [16]);
    buffer.destroy();
    await assert.rejects(() => view.read(), /rejected the copy/);
  },
);

// A device whose createShaderModule rewrites the code of the pipelines keyed `key`: the kernels
// build, check and run them through their ordinary path.
function breakingShaders(
  device: GPUDevice,
  key: string,
  rewrite: (code: string) => string,
): GPUDevice {
  return new Proxy(device, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property === "createShaderModule") {
        return (descriptor: GPUShaderModuleDescriptor) =>
          target.createShaderModule(
            descriptor.label === key
              ? { ...descriptor, code: rewrite(descriptor.code) }
              : descriptor,
          );
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

gpuTest(
  "a shader that does not compile, or a pipeline the device rejects, throws WebGpuKernelError naming the kernel",
  async (gpu) => {
    const cases: [string, (code: string) => string, RegExp][] = [
      [
        "compilation",
        (code) => code.replace("t0[at(0u, i)] = t1", "t0[at(0u, i)] = t9"),
        /its shader did not compile/,
      ],
      [
        "validation",
        (code) => code.replace("fn main(", "fn renamed("),
        /validation error/,
      ],
    ];
    for (const [kind, rewrite, message] of cases) {
      const kernels = new WebGpuKernels(
        breakingShaders(gpu.device, "copy_flat_wr", rewrite),
      );
      const x = kernels.upload(Tensor.from([1, 2, 3, 4]));
      const out = kernels.empty([4]);
      kernels.copy(out, x); // WebGPU reports the error asynchronously
      const named = (e: Error) =>
        e instanceof WebGpuKernelError && e.kernel === "copy_flat_wr" &&
        e.kind === kind &&
        /^Cannot read a WebGPU tensor back as the WebGPU kernel 'copy_flat_wr' failed/
          .test(e.message) &&
        message.test(e.message);
      await assert.rejects(() => out.read(), named);
      // From then on, every call refuses work.
      assert.throws(
        () => kernels.copy(out, x),
        (e: Error) =>
          e instanceof WebGpuKernelError &&
          /^Cannot run copy as/.test(e.message),
      );
      await assert.rejects(() => x.read(), WebGpuKernelError);
      kernels.destroy();
    }
  },
);

gpuTest(
  "a submit the device rejects throws WebGpuKernelError naming the kernel at readback",
  async (gpu) => {
    const kernels = new WebGpuKernels(gpu.device);
    const buffer = gpu.device.createBuffer({
      size: 64,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    const view = kernels.wrap(buffer, [16]);
    const out = kernels.empty([16]);
    kernels.copy(out, view); // warm: the pipeline exists, the submit is valid
    await out.read();
    buffer.destroy();
    kernels.axpbyDiv(out, 2, view, 1, null, 1);
    await assert.rejects(
      () => out.read(),
      (e: Error) =>
        e instanceof WebGpuKernelError && e.kernel === "axpbydiv_1" &&
        e.kind === "validation" &&
        /the WebGPU kernel 'axpbydiv_1' failed \(the device reported a validation error/
          .test(e.message),
    );
    kernels.destroy();
  },
);

Deno.test({
  name: "WebGPU parity summary",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  fn() {
    console.log(
      `WebGPU on ${adapterName}: ${bitEqualToCpu}/${comparedToCpu} results bit-equal to the CPU; worst GPU vs CPU ${worstVsCpu}; worst step vs diffusers ${worstStep}; worst loop vs diffusers ${worstLoop}`,
    );
    gpu?.destroy();
    gpu?.device.destroy();
    assert.ok(comparedToCpu > 0);
  },
});
