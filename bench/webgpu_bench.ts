// GPU step time and effective bandwidth of DPMSolverMultistepInverseScheduler.step() on WebGPU
// tensors. Run with `deno task bench:webgpu` (`deno task bench` runs it after the CPU
// benchmark). Each iteration records STEPS steps and then waits for the queue once, so the
// time per step is the iteration time / STEPS (the wait adds one device poll, about 10 ms in
// Deno, spread over the steps). Effective bandwidth = the bytes a step must move /
// the time per step: an order-2 step reads the sample, the model output and the previous
// converted output and writes the new converted output and the result (5 floats per element);
// thresholding needs the whole x0 before scaling it, so one more read and write (7 floats).
// On a software adapter (llvmpipe) the numbers only show that the path runs.
import { DPMSolverMultistepInverseScheduler, Tensor } from "../mod.ts";
import { requestWebGpuKernels, type WebGpuTensor } from "../webgpu.ts";
import { adapterName, ignore } from "../tests/_gpu.ts";

const STEPS = 10;
const gpu = ignore ? null : await requestWebGpuKernels();
const software = adapterName.includes("llvmpipe") ||
  adapterName.includes("fallback");

const shapes = [[1, 4, 64, 64], [4, 4, 128, 128], [4, 3, 256, 256]];

for (const shape of shapes) {
  for (const thresholding of [false, true]) {
    const size = shape.reduce((a, b) => a * b, 1);
    const bytes = size * 4 * (thresholding ? 7 : 5);
    const name = `step ${shape.join("×")}${
      thresholding ? " thresholding" : ""
    }`;
    let state: {
      scheduler: DPMSolverMultistepInverseScheduler;
      modelOutput: WebGpuTensor;
      sample: WebGpuTensor;
      spare: WebGpuTensor;
      i: number;
    } | null = null;
    let total = 0;
    let iterations = 0;
    Deno.bench({
      name,
      group: shape.join("×"),
      ignore,
      n: software ? 3 : 50,
      warmup: software ? 1 : 5,
      async fn(b) {
        if (!gpu) throw new Error(`no WebGPU device on ${adapterName}`);
        if (!state) {
          const scheduler = new DPMSolverMultistepInverseScheduler({
            beta_schedule: "scaled_linear",
            beta_start: 0.00085,
            beta_end: 0.012,
            thresholding,
            sample_max_value: 1.5,
          });
          scheduler.setTimesteps(1000);
          const values = (seed: number) =>
            Tensor.from(
              Array.from({ length: size }, (_, i) => Math.sin(i * seed)),
              shape,
            );
          state = {
            scheduler,
            modelOutput: gpu.upload(values(0.37)),
            sample: gpu.upload(values(0.11)),
            spare: gpu.empty(shape),
            i: 0,
          };
          await gpu.device.queue.onSubmittedWorkDone();
        }
        const s = state;
        b.start();
        const t0 = performance.now();
        for (let k = 0; k < STEPS; k++) {
          const t = s.scheduler.timesteps[s.i++ % 900]!;
          const out = s.scheduler.step(s.modelOutput, t, s.sample, {
            out: s.spare,
          }).prevSample;
          s.spare = s.sample;
          s.sample = out;
        }
        await gpu.device.queue.onSubmittedWorkDone();
        total += performance.now() - t0;
        iterations++;
        b.end();
      },
    });
    addEventListener("unload", () => {
      if (!iterations) return;
      const perStep = total / iterations / STEPS;
      console.log(
        `${name}: ${perStep.toFixed(3)} ms/step, ${
          (bytes / (perStep * 1e-3) / 1e9).toFixed(2)
        } GB/s effective (${
          (bytes / 1e6).toFixed(1)
        } MB/step) on ${adapterName}${
          software ? " — software adapter: correctness run only" : ""
        }`,
      );
    });
  }
}

// The latency of one scalar readback, the cost unit of exact inversion on WebGPU (its iteration
// reads back only maxAbs and dot scalars): each call submits its kernel and waits for the
// mapping, as a whole-tensor read() does, on the [2, 1, 4, 4] batch of the exact inversion test.
const small = gpu?.upload(
  Tensor.from(Array.from({ length: 32 }, (_, i) => Math.sin(i)), [2, 1, 4, 4]),
);
const readbacks: [string, () => Promise<unknown>][] = [
  ["maxAbs", () => gpu!.maxAbs(small!)],
  ["dot", () => gpu!.dot(small!, small!)],
  ["read()", () => gpu!.read(small!)],
];
for (const [name, run] of readbacks) {
  Deno.bench({
    name: `readback: ${name} of [2, 1, 4, 4]`,
    group: "readback",
    ignore,
    n: 50,
    warmup: 5,
    async fn() {
      await run();
    },
  });
}
