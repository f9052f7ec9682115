// Exact inversion (lib/exact_inversion.ts) on analytic Gaussian mixtures (lib/analytic.ts), where
// the model is exact, so only the solver's algebra is tested: the ORDINARY generate() with the
// ordinary forward scheduler, run from the inverted noise, must give the input back to float32
// precision; plain inversion, the same round trip without the iteration, misses by orders of
// magnitude more. Also: WebGPU tensors end to end, refusals, non-convergence reported without
// throwing, the reductions.
import assert from "node:assert/strict";
import {
  DPMSolverMultistepInverseScheduler,
  DPMSolverMultistepScheduler,
  type ExactInversionResult,
  generate,
  invert,
  Tensor,
  TorchGenerator,
} from "../mod.ts";
import { GaussianMixture, schedulerModel } from "../analytic.ts";
import { WasmKernels } from "../wasm.ts";
import { CpuKernels } from "../lib/backends/cpu.ts";
import { AndersonMixer } from "../lib/_anderson.ts";
import { createWebGpuKernels, type WebGpuTensor } from "../webgpu.ts";
import { ignore as noGpu } from "./_gpu.ts";

const mixture = new GaussianMixture({
  weights: [1, 2],
  means: [-0.6, 0.5],
  variances: [0.02, 0.05],
});
// The conditional distribution of a guided model: the mixture's second component.
const conditional = new GaussianMixture({
  weights: [1],
  means: [0.5],
  variances: [0.05],
});
const image = mixture.sample([2, 1, 4, 4], new TorchGenerator(0));
const conditionalImage = conditional.sample(
  [2, 1, 4, 4],
  new TorchGenerator(1),
);

// Classifier-free guidance over the two analytic models: u + s·(c − u).
function guidedModel(forward: DPMSolverMultistepScheduler) {
  const unconditional = schedulerModel(mixture, forward);
  const conditioned = schedulerModel(conditional, forward);
  return (x: Tensor, t: number, _labels?: Int32Array, scale = 1) => {
    const u = unconditional(x, t).toFloat32Array();
    const c = conditioned(x, t).toFloat32Array();
    return new Tensor(u.map((v, i) => v + scale * (c[i]! - v)), x.shape);
  };
}

function maxError(a: Tensor, b: Tensor): number {
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
}

interface Case {
  config: Record<string, unknown>;
  finalSigmasType: "zero" | "sigma_min";
  steps: number;
  strength?: number;
  guidanceScale?: number;
}

async function roundTrip(c: Case, exact: boolean) {
  const inverse = new DPMSolverMultistepInverseScheduler(c.config);
  const forward = new DPMSolverMultistepScheduler({
    ...c.config,
    final_sigmas_type: c.finalSigmasType,
  });
  const model = guidedModel(forward);
  const x0 = (c.guidanceScale ?? 1) > 1 ? conditionalImage : image;
  const options = {
    numInferenceSteps: c.steps,
    guidanceScale: c.guidanceScale ?? 1,
    strength: c.strength ?? 1,
  };
  const inverted = exact
    ? await invert(model, x0, inverse, { ...options, exact: { forward } })
    : await invert(model, x0, inverse, options);
  const back = await generate(model, inverted.sample, forward, {
    numInferenceSteps: c.steps,
    guidanceScale: options.guidanceScale,
    startSigma: inverted.sigma,
  });
  return { inverted, error: maxError(x0, back) };
}

const CASES: Case[] = [
  { config: { solver_order: 1 }, finalSigmasType: "zero", steps: 10 },
  { config: { solver_order: 1 }, finalSigmasType: "sigma_min", steps: 25 },
  { config: { solver_order: 2 }, finalSigmasType: "zero", steps: 10 },
  { config: { solver_order: 2 }, finalSigmasType: "zero", steps: 25 },
  { config: { solver_order: 3 }, finalSigmasType: "zero", steps: 10 },
  { config: { solver_order: 3 }, finalSigmasType: "sigma_min", steps: 10 },
  {
    config: { solver_order: 2, use_karras_sigmas: true },
    finalSigmasType: "zero",
    steps: 25,
  },
  {
    config: { solver_order: 3, use_karras_sigmas: true },
    finalSigmasType: "sigma_min",
    steps: 10,
  },
  {
    config: { solver_order: 2, use_exponential_sigmas: true },
    finalSigmasType: "zero",
    steps: 10,
  },
  {
    config: { solver_order: 1, algorithm_type: "dpmsolver" },
    finalSigmasType: "sigma_min",
    steps: 10,
  },
  {
    config: { solver_order: 2, prediction_type: "v_prediction" },
    finalSigmasType: "zero",
    steps: 10,
  },
  {
    config: { solver_order: 2 },
    finalSigmasType: "zero",
    steps: 20,
    strength: 0.5,
  },
  {
    config: { solver_order: 2 },
    finalSigmasType: "sigma_min",
    steps: 10,
    guidanceScale: 1.5,
  },
];

for (const c of CASES) {
  const name = `${
    JSON.stringify(c.config)
  }, final ${c.finalSigmasType}, ${c.steps} steps${
    c.strength ? `, strength ${c.strength}` : ""
  }${c.guidanceScale ? `, guidance ${c.guidanceScale}` : ""}`;
  Deno.test(`exact inversion round trip to float32 precision: ${name}`, async () => {
    const { inverted, error } = await roundTrip(c, true);
    const result = inverted as ExactInversionResult;
    assert.ok(result.converged, `residuals ${result.residuals}`);
    assert.equal(result.residuals.length, result.steps);
    assert.ok(result.residuals.every((r) => r <= 1e-6));
    // Tolerance 1e-6 per step, relative to max(1, |x|): the round trip lands within a few
    // float32 units of values of magnitude ~1 (≥ 100 dB at peak-to-peak 2).
    assert.ok(error < 2e-5, `max error ${error}`);
    // The iteration is what makes it exact: plain inversion misses by far more.
    const plain = await roundTrip(c, false);
    assert.ok(
      plain.error > 1e3 * Math.max(error, 1e-7),
      `plain ${plain.error}, exact ${error}`,
    );
    assert.equal(plain.inverted.modelCalls, plain.inverted.steps);
    assert.ok(result.modelCalls > result.steps);
    assert.ok(result.itemModelCalls.every((n) => n <= result.modelCalls));
  });
}

// Karras sigmas: on linspace sigmas with the sigma_min final step, this mixture's clean end (pixels
// between the two modes, a model Jacobian up to twice the conversion's identity part) is beyond
// the sweeps' 50 rounds (docs/exact_inversion.md, "What does not reach the target").
Deno.test("exact inversion: the sweeps over the trajectory are what make a multistep inversion exact", async () => {
  const config = { solver_order: 2, use_karras_sigmas: true } as const;
  const forward = new DPMSolverMultistepScheduler({
    ...config,
    final_sigmas_type: "sigma_min",
  });
  const inverse = new DPMSolverMultistepInverseScheduler(config);
  const model = schedulerModel(mixture, forward);
  const run = (maxSweeps: number) =>
    invert(model, image, inverse, {
      numInferenceSteps: 25,
      exact: { forward, maxSweeps },
    });
  const firstPass = await run(0);
  assert.equal(firstPass.sweeps, 0);
  assert.equal(firstPass.converged, false);
  const swept = await run(50);
  assert.ok(swept.converged, `residuals ${swept.residuals}`);
  assert.ok(swept.sweeps > 0);
  const back = await generate(model, swept.sample, forward, {
    numInferenceSteps: 25,
    startSigma: swept.sigma,
  });
  assert.ok(maxError(image, back) < 2e-5);
});

Deno.test("exact inversion: the inverted sample sits where generate() starts", async () => {
  const forward = new DPMSolverMultistepScheduler({ solver_order: 2 });
  const inverse = new DPMSolverMultistepInverseScheduler({ solver_order: 2 });
  const model = schedulerModel(mixture, forward);
  const result = await invert(model, image, inverse, {
    numInferenceSteps: 20,
    strength: 0.5,
    exact: { forward },
  });
  assert.equal(result.steps, 10);
  forward.setTimesteps(20);
  assert.equal(result.sigma, forward.sigmas[10]);
});

Deno.test("exact inversion refuses forward configs it cannot invert, naming the key", async () => {
  const model = (x: Tensor) => x;
  const inverse = new DPMSolverMultistepInverseScheduler();
  await assert.rejects(
    () =>
      invert(model, image, inverse, {
        numInferenceSteps: 5,
        exact: {
          forward: new DPMSolverMultistepScheduler({
            beta_schedule: "scaled_linear",
          }),
        },
      }),
    (e: Error) =>
      e instanceof RangeError && e.message.includes("'beta_schedule'"),
  );
  await assert.rejects(
    () =>
      invert(model, image, inverse, {
        numInferenceSteps: 5,
        exact: {
          forward: new DPMSolverMultistepScheduler({
            algorithm_type: "sde-dpmsolver++",
          }),
        },
      }),
    (e: Error) =>
      e instanceof RangeError && e.message.includes("'algorithm_type'") &&
      e.message.includes("sde-dpmsolver++"),
  );
  await assert.rejects(
    () =>
      invert(model, image, inverse, {
        numInferenceSteps: 5,
        exact: {
          forward: new DPMSolverMultistepScheduler({ solver_order: 3 }),
        },
      }),
    (e: Error) =>
      e instanceof RangeError && e.message.includes("'solver_order'"),
  );
  await assert.rejects(
    () =>
      invert(model, image, inverse, {
        numInferenceSteps: 5,
        exact: { forward: inverse as unknown as DPMSolverMultistepScheduler },
      }),
    (e: Error) =>
      e instanceof TypeError && e.message.includes("'exact.forward'"),
  );
  for (
    const [key, exact] of [
      ["exact.tolerance", { tolerance: 0 }],
      ["exact.maxIterations", { maxIterations: 0.5 }],
      ["exact.maxSweeps", { maxSweeps: -1 }],
      ["exact.andersonDepth", { andersonDepth: Number.NaN }],
    ] as const
  ) {
    await assert.rejects(
      () =>
        invert(model, image, inverse, {
          numInferenceSteps: 5,
          exact: { forward: new DPMSolverMultistepScheduler(), ...exact },
        }),
      (e: Error) => e instanceof RangeError && e.message.includes(`'${key}'`),
    );
  }
});

Deno.test("exact inversion reports non-convergence without throwing and keeps the best iterate", async () => {
  const forward = new DPMSolverMultistepScheduler({ solver_order: 2 });
  const inverse = new DPMSolverMultistepInverseScheduler({ solver_order: 2 });
  const model = schedulerModel(mixture, forward);
  const iterations: number[] = [];
  const result = await invert(model, image, inverse, {
    numInferenceSteps: 10,
    exact: {
      forward,
      maxIterations: 2,
      maxSweeps: 0,
      onIteration: ({ residual }) => void iterations.push(residual),
    },
  });
  assert.equal(result.converged, false);
  assert.ok(result.residuals.some((r) => r > 1e-6));
  assert.ok(result.residuals.every(Number.isFinite));
  assert.ok(result.sample.toFloat32Array().every(Number.isFinite));
  // At most two model calls per step, plus the one at the clean sample.
  assert.ok(result.modelCalls <= 2 * 10 + 1);
  assert.ok(iterations.length > 0);
  // A budget of calls stops it too.
  const budget = await invert(model, image, inverse, {
    numInferenceSteps: 10,
    exact: { forward, maxModelCalls: 15 },
  });
  assert.equal(budget.converged, false);
  assert.ok(budget.modelCalls <= 15 + 10);
});

Deno.test({
  name:
    "exact inversion of WebGPU tensors: the round trip gives x0 back, and the iteration reads back only scalars",
  ignore: noGpu,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const gpu = await createWebGpuKernels();
    const forward = new DPMSolverMultistepScheduler({ solver_order: 1 });
    const inverse = new DPMSolverMultistepInverseScheduler({ solver_order: 1 });
    // The analytic model computes on CPU tensors: it reads each sample back whole and uploads
    // its prediction, with the readback spy off, so the spy sees only the inversion's readbacks.
    const analytic = schedulerModel(mixture, forward);
    let spying = false;
    const model = async (x: Tensor, t: number) => {
      spying = false;
      const sample = await gpu.read(x as unknown as WebGpuTensor);
      spying = true;
      return gpu.upload(analytic(sample, t)) as unknown as Tensor;
    };
    const mapped: number[] = [];
    const mapAsync = GPUBuffer.prototype.mapAsync;
    GPUBuffer.prototype.mapAsync = function (mode, offset, size) {
      if (spying) mapped.push(size ?? this.size);
      return mapAsync.call(this, mode, offset, size);
    };
    let result: ExactInversionResult;
    try {
      spying = true;
      result = await invert(
        model,
        gpu.upload(image) as unknown as Tensor,
        inverse,
        { numInferenceSteps: 5, exact: { forward } },
      ) as ExactInversionResult;
    } finally {
      spying = false;
      GPUBuffer.prototype.mapAsync = mapAsync;
    }
    assert.ok(gpu.owns(result.sample), "the inverted sample stays on the GPU");
    assert.ok(result.converged, `residuals ${result.residuals}`);
    // Every readback of the iteration is one scalar: a maxAbs word or a dot's flags and sum.
    assert.ok(mapped.length > result.modelCalls);
    assert.ok(
      mapped.every((bytes) => bytes <= 8),
      `readbacks of ${[...new Set(mapped)]} bytes`,
    );
    const back = await generate(model, result.sample, forward, {
      numInferenceSteps: 5,
      startSigma: result.sigma,
    });
    const error = maxError(
      image,
      await gpu.read(back as unknown as WebGpuTensor),
    );
    assert.ok(error < 2e-5, `max error ${error}`);
    gpu.destroy();
  },
});

Deno.test("maxAbs and dot reductions of the CPU and WASM kernels", () => {
  const data = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i) * i);
  const x = new Tensor(data, [2, 3, 4]);
  const y = new Tensor(Float32Array.from(data, (v) => 1 - v), [2, 3, 4]);
  const strided = x.permute([0, 2, 1]);
  const maxAbs = data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  let dot = 0;
  data.forEach((v) => (dot += v * (1 - v)));
  for (const kernels of [new CpuKernels(), new WasmKernels()]) {
    assert.equal(kernels.maxAbs(x), maxAbs);
    assert.equal(kernels.maxAbs(strided), maxAbs);
    assert.ok(Math.abs(kernels.dot(x, y) - dot) < 1e-9 * Math.abs(dot));
    assert.ok(Number.isNaN(kernels.maxAbs(Tensor.from([1, NaN, 2], [3]))));
    const item = x.slice(0, 1, 2);
    const itemMax = data.subarray(12).reduce(
      (m, v) => Math.max(m, Math.abs(v)),
      0,
    );
    assert.equal(kernels.maxAbs(item), itemMax);
  }
});

Deno.test("Anderson mixing: after forget the next update is the plain fixed-point step, after restart it mixes with the one newest difference", async () => {
  const kernels = new CpuKernels();
  const mixer = new AndersonMixer(kernels, [2, 3], 1, 3);
  const active = Uint8Array.of(1, 1);
  const x0 = Tensor.from([0, 0, 0, 1, 1, 1], [2, 3]);
  const f0 = Tensor.from([1, 2, 3, -1, 0, 1], [2, 3]);
  const x1 = kernels.empty([2, 3]);
  await mixer.next([x0], [f0], [x1], active);
  assert.deepEqual(Array.from(x1.toFloat32Array()), [1, 2, 3, 0, 1, 2]);
  mixer.forget(0);
  mixer.restart(1);
  const f1Values = [0.2, -0.1, 0.3, 0.5, 0.5, -0.5];
  const f1 = Tensor.from(f1Values, [2, 3]);
  const x2 = kernels.empty([2, 3]);
  await mixer.next([x1], [f1], [x2], active);
  const got = Array.from(x2.toFloat32Array());
  // Item 0, forgotten: x1 + f1, the difference from (x0, f0) left out.
  [1.2, 1.9, 3.3].forEach((v, i) => assert.ok(Math.abs(got[i]! - v) < 1e-6));
  // Item 1, restarted: type-II Anderson with the one difference from (x0, f0),
  // x1 + f1 − γ·(Δx + Δf), γ = ⟨Δf, f1⟩ / ⟨Δf, Δf⟩.
  const dx = [-1, 0, 1];
  const df = [1.5, 0.5, -1.5];
  const f = f1Values.slice(3);
  const gamma = (df[0]! * f[0]! + df[1]! * f[1]! + df[2]! * f[2]!) /
    (df[0]! ** 2 + df[1]! ** 2 + df[2]! ** 2);
  [0, 1, 2].forEach((i) => {
    const expected = [0, 1, 2][i]! + f[i]! - gamma * (dx[i]! + df[i]!);
    assert.ok(Math.abs(got[3 + i]! - expected) < 1e-6, `${got} ${expected}`);
  });
});

Deno.test("cli roundtrip --exact reconstructs to float32 precision and reports the calls", async () => {
  const { main } = await import("../cli.ts");
  const run = async (extra: string[]) => {
    let stdout = "";
    const code = await main(
      ["roundtrip", "--steps", "10", "--count", "16", ...extra],
      { stdout: (s) => (stdout += s), stderr: () => {}, isTerminal: false },
    );
    assert.equal(code, 0);
    const max = Number(
      /reconstruction vs the input: +max \|error\| (\S+),/.exec(stdout)![1],
    );
    return { stdout, max };
  };
  const exact = await run(["--exact"]);
  assert.match(exact.stdout, /exact inversion: \d+ model calls \(plain: 10\)/);
  assert.ok(exact.max < 2e-5, exact.stdout);
  const plain = await run([]);
  assert.ok(plain.max > 1e3 * exact.max);
});
