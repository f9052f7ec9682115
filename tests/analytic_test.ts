// The analytic models against mathematics (Tweedie's formula on an independently written
// marginal density, the Gaussian closed forms, CDF transport for the 1-D mixture), then the
// solvers' true errors: convergence orders on Gaussian data and the inversion round trip on the
// mixture. Measured values are printed; the assertions are ranges that a wrong update
// coefficient breaks (a wrong second- or third-order term leaves a first-order method).
import assert from "node:assert/strict";
import {
  DPMSolverMultistepInverseScheduler,
  DPMSolverMultistepScheduler,
  Tensor,
  TorchGenerator,
} from "../mod.ts";
import {
  alphaSigmaOfTimestep,
  analyticPrediction,
  type AnalyticPredictionType,
  builtinAnalyticModel,
  convergenceOrder,
  GaussianData,
  GaussianMixture,
  integrateProbabilityFlow,
  schedulerModel,
} from "../analytic.ts";

const vp = (alphaT: number) => ({ alphaT, sigmaT: Math.sqrt(1 - alphaT ** 2) });
const LEVELS = [0.99995, 0.9, 0.5, 0.1, 0.0064].map(vp);

/** Log density of x_t = alpha_t·x0 + sigma_t·eps for a mixture, summed over one point. */
function logMarginal(
  weights: number[],
  means: number[][],
  variances: number[],
  x: number[],
  { alphaT, sigmaT }: { alphaT: number; sigmaT: number },
): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let p = 0;
  weights.forEach((w, k) => {
    const v = alphaT ** 2 * variances[k]! + sigmaT ** 2;
    const d2 = x.reduce(
      (s, xi, i) => s + (xi - alphaT * means[k]![i]!) ** 2,
      0,
    );
    p += (w / total) * (2 * Math.PI * v) ** (-x.length / 2) *
      Math.exp(-d2 / (2 * v));
  });
  return Math.log(p);
}

/** Tweedie: E[eps|x] = −sigma_t·∇log p_t(x), E[x0|x] = (x + sigma_t²·∇log p_t(x)) / alpha_t. */
function tweedie(
  logp: (x: number[]) => number,
  x: number[],
  { alphaT, sigmaT }: { alphaT: number; sigmaT: number },
): { x0: number[]; eps: number[] } {
  const h = 1e-5;
  const grad = x.map((_, i) => {
    const up = x.map((v, j) => (j === i ? v + h : v));
    const down = x.map((v, j) => (j === i ? v - h : v));
    return (logp(up) - logp(down)) / (2 * h);
  });
  return {
    x0: x.map((v, i) => (v + sigmaT ** 2 * grad[i]!) / alphaT),
    eps: grad.map((g) => -sigmaT * g),
  };
}

Deno.test("GaussianData.posteriorMeans() equals Tweedie's formula on the Gaussian marginal", () => {
  const data = new GaussianData({ mean: 0.5, std: 0.3 });
  for (const level of LEVELS) {
    const xs = [-1, 0, 0.4, 1.7].map((z) =>
      level.alphaT * 0.5 + z * data.marginalStd(level)
    );
    const { x0, epsilon } = data.posteriorMeans(xs, level);
    xs.forEach((x, i) => {
      const v = level.alphaT ** 2 * 0.09 + level.sigmaT ** 2;
      // ∇log N(x; alpha·mu, v) = −(x − alpha·mu)/v, exactly.
      const score = -(x - level.alphaT * 0.5) / v;
      assert.ok(Math.abs(epsilon[i]! - -level.sigmaT * score) < 1e-12);
      assert.ok(
        Math.abs(x0[i]! - (x + level.sigmaT ** 2 * score) / level.alphaT) <
          1e-9 / level.alphaT,
      );
      // x = alpha·E[x0|x] + sigma·E[eps|x] (linearity of the conditional expectation)
      assert.ok(
        Math.abs(level.alphaT * x0[i]! + level.sigmaT * epsilon[i]! - x) <
          1e-12,
      );
    });
  }
});

Deno.test("analyticPrediction() gives epsilon, x0 and v = alpha·eps − sigma·x0", () => {
  const data = new GaussianData({ mean: 0.5, std: 0.3 });
  const sample = Tensor.from([-0.3, 0.1, 0.5, 0.8, 1.4, 2], [1, 2, 3]);
  for (const level of LEVELS) {
    const out = (type: AnalyticPredictionType) =>
      analyticPrediction(data, sample, level, type).toFloat32Array();
    const eps = out("epsilon");
    const x0 = out("sample");
    const v = out("v_prediction");
    const x = sample.toFloat32Array();
    const r = (xi: number) =>
      (xi - level.alphaT * 0.5) /
      (level.alphaT ** 2 * 0.09 + level.sigmaT ** 2);
    x.forEach((xi, i) => {
      const tol = 1e-6 * Math.max(1, Math.abs(x0[i]!));
      assert.ok(Math.abs(eps[i]! - level.sigmaT * r(xi)) < 1e-6);
      assert.ok(Math.abs(x0[i]! - (0.5 + level.alphaT * 0.09 * r(xi))) < tol);
      assert.ok(
        Math.abs(v[i]! - (level.alphaT * eps[i]! - level.sigmaT * x0[i]!)) <
          2 * tol,
      );
    });
    assert.deepEqual(analyticPrediction(data, sample, level, "sample").shape, [
      1,
      2,
      3,
    ]);
  }
  assert.throws(
    () =>
      analyticPrediction(
        data,
        sample,
        LEVELS[0]!,
        "flow_prediction" as AnalyticPredictionType,
      ),
    { name: "RangeError", message: /'prediction_type' must be/ },
  );
});

Deno.test("GaussianMixture.posteriorMeans() equals Tweedie's formula on the mixture marginal (1-D and 2-D)", () => {
  const cases = [
    {
      weights: [0.3, 0.5, 0.2],
      means: [[-1], [0.25], [1.5]],
      variances: [0.04, 0.09, 0.0225],
    },
    {
      weights: [0.45, 0.35, 0.2],
      means: [[-1.2, -0.4], [0.9, 0.8], [0.6, -1.1]],
      variances: [0.04, 0.09, 0.0225],
    },
  ];
  for (const c of cases) {
    const mixture = new GaussianMixture(c);
    const d = c.means[0]!.length;
    for (const level of LEVELS.slice(1)) {
      const points = [[-1.1, 0.3], [0.2, -0.5], [0.7, 0.9], [1.6, -1]]
        .map((p) =>
          p.slice(0, d).map((v) => v * Math.hypot(level.alphaT, level.sigmaT))
        );
      const { x0, epsilon } = mixture.posteriorMeans(points.flat(), level);
      points.forEach((p, j) => {
        const ref = tweedie(
          (x) => logMarginal(c.weights, c.means, c.variances, x, level),
          p,
          level,
        );
        for (let i = 0; i < d; i++) {
          assert.ok(Math.abs(epsilon[j * d + i]! - ref.eps[i]!) < 1e-7);
          assert.ok(
            Math.abs(x0[j * d + i]! - ref.x0[i]!) < 1e-7 / level.alphaT,
          );
        }
      });
    }
  }
  // One component is the Gaussian; identical components are one.
  const single = new GaussianMixture({
    weights: [2],
    means: [0.5],
    variances: [0.09],
  });
  const twins = new GaussianMixture({
    weights: [1, 3],
    means: [0.5, 0.5],
    variances: [0.09, 0.09],
  });
  const gauss = new GaussianData({ mean: 0.5, std: 0.3 });
  const xs = [-2, 0, 0.5, 3];
  for (const level of LEVELS) {
    const g = gauss.posteriorMeans(xs, level);
    for (const m of [single, twins]) {
      const r = m.posteriorMeans(xs, level);
      xs.forEach((_, i) => {
        assert.ok(Math.abs(r.epsilon[i]! - g.epsilon[i]!) < 1e-12);
        assert.ok(Math.abs(r.x0[i]! - g.x0[i]!) < 1e-12);
      });
    }
  }
});

Deno.test("GaussianData.odeMap() moves quantiles to quantiles; RK4 matches it to 1e-9", () => {
  const data = new GaussianData({ mean: 0.5, std: 0.3 });
  const from = vp(Math.sqrt(1 - 1e-4));
  const to = vp(0.0064);
  const zs = [-2.5, -1, 0, 0.3, 2];
  const xs = zs.map((z) => from.alphaT * 0.5 + z * data.marginalStd(from));
  const mapped = data.odeMap(xs, from, to);
  zs.forEach((z, i) => {
    assert.ok(
      Math.abs(mapped[i]! - (to.alphaT * 0.5 + z * data.marginalStd(to))) <
        1e-12,
    );
  });
  for (
    const [a, b] of [[from, to], [to, from], [from, { alphaT: 1, sigmaT: 0 }]]
  ) {
    const exact = data.odeMap(xs, a!, b!);
    const rk4 = integrateProbabilityFlow(data, xs, a!, b!, { steps: 1000 });
    exact.forEach((e, i) => assert.ok(Math.abs(rk4[i]! - e) < 1e-9));
  }
  // Non-VP scales give the same map (the posterior depends on x/alpha and sigma/alpha only).
  const scaled = { alphaT: 2 * to.alphaT, sigmaT: 2 * to.sigmaT };
  const rk4 = integrateProbabilityFlow(data, xs, from, scaled, { steps: 1000 });
  data.odeMap(xs, from, scaled).forEach((e, i) =>
    assert.ok(Math.abs(rk4[i]! - e) < 2e-9)
  );
});

/** erf by its everywhere-positive series 2/√π·e^(−x²)·Σ 2ⁿx^(2n+1)/(1·3·…·(2n+1)). */
function erf(x: number): number {
  if (Math.abs(x) > 6) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
}

Deno.test("GaussianMixture.odeMap() (RK4) keeps every 1-D point at its quantile of the marginal", () => {
  // In 1-D the probability-flow ODE is the monotone transport of the marginals: F_to(x_to) = F_from(x).
  const weights = [0.3, 0.5, 0.2];
  const means = [-1, 0.25, 1.5];
  const variances = [0.04, 0.09, 0.0225];
  const mixture = new GaussianMixture({ weights, means, variances });
  const cdf = (
    x: number,
    { alphaT, sigmaT }: { alphaT: number; sigmaT: number },
  ) =>
    weights.reduce((s, w, k) => {
      const sd = Math.sqrt(alphaT ** 2 * variances[k]! + sigmaT ** 2);
      return s +
        w * 0.5 * (1 + erf((x - alphaT * means[k]!) / (sd * Math.SQRT2)));
    }, 0);
  const from = vp(Math.sqrt(1 - 1e-4));
  const xs = [-1.4, -0.9, -0.5, 0, 0.25, 0.9, 1.2, 1.5, 1.8];
  for (const to of [vp(0.9), vp(0.3), vp(0.0064)]) {
    const mapped = mixture.odeMap(xs, from, to);
    xs.forEach((x, i) => {
      assert.ok(Math.abs(cdf(mapped[i]!, to) - cdf(x, from)) < 1e-9);
    });
    const back = mixture.odeMap(mapped, to, from);
    back.forEach((x, i) => assert.ok(Math.abs(x - xs[i]!) < 1e-9));
  }
});

Deno.test("alphaSigmaOfTimestep() and schedulerModel() read the scheduler's noise levels", () => {
  const scheduler = new DPMSolverMultistepInverseScheduler({
    use_karras_sigmas: true,
  });
  scheduler.setTimesteps(10);
  const data = new GaussianData({ mean: 0, std: 1 });
  // Unit-variance data: E[eps | x] = sigma_t·x at every level.
  const x = Tensor.from([1]);
  const t = scheduler.timesteps[3]!;
  const fromTraining = schedulerModel(data, scheduler)(x, t).get(0);
  const fromSchedule = schedulerModel(data, scheduler, {
    noiseLevel: "schedule",
  })(x, t)
    .get(0);
  const a = scheduler.alphasCumprod[t]!;
  assert.ok(Math.abs(fromTraining - Math.sqrt(1 - a)) < 1e-6);
  assert.ok(Math.abs(fromSchedule - scheduler.alphaSigmaAt(3).sigmaT) < 1e-6);
  assert.notEqual(fromTraining, fromSchedule); // Karras sigmas sit between timesteps
  assert.throws(
    () => alphaSigmaOfTimestep(scheduler.alphasCumprod, 1000),
    RangeError,
  );
  assert.throws(
    () =>
      schedulerModel(
        data,
        new DPMSolverMultistepInverseScheduler({
          use_flow_sigmas: true,
          prediction_type: "flow_prediction",
        }),
      ),
    { name: "RangeError", message: /'use_flow_sigmas'/ },
  );
  assert.throws(
    () => schedulerModel(data, scheduler, { noiseLevel: "x" as "schedule" }),
    RangeError,
  );
});

// ---------------------------------------------------------------------------------------------
// Convergence orders: inversion of Gaussian data (mu 0.5, s 0.3) against the closed-form ODE map.

const GAUSSIAN = new GaussianData({ mean: 0.5, std: 0.3 });
const X0 = Tensor.from(
  Array.from({ length: 11 }, (_, i) => 0.5 + 0.3 * (-2.5 + 0.5 * i)),
);
const STEPS = [12, 16, 20, 24, 32, 40, 48];

function inversionError(
  config: Record<string, unknown>,
  steps: number,
  noiseLevel: "schedule" | "alphas_cumprod",
): number {
  const scheduler = new DPMSolverMultistepInverseScheduler(config);
  scheduler.setTimesteps(steps);
  const model = schedulerModel(GAUSSIAN, scheduler, { noiseLevel });
  let x = X0;
  for (const t of scheduler.timesteps) {
    x = scheduler.step(model(x, t), t, x).prevSample;
  }
  const exact = GAUSSIAN.odeMap(
    X0.toFloat32Array(),
    scheduler.alphaSigmaAt(0),
    scheduler.alphaSigmaAt(scheduler.sigmas.length - 1),
  );
  return Math.max(
    ...Array.from(x.toFloat32Array(), (v, i) => Math.abs(v - exact[i]!)),
  );
}

interface Variant {
  algorithm: "dpmsolver++" | "dpmsolver";
  solver: "midpoint" | "heun";
  order: 1 | 2 | 3;
  sigmas: "karras" | "linspace";
  noiseLevel: "schedule" | "alphas_cumprod";
  slope: number;
  errors: number[];
}

function measure(
  sigmas: Variant["sigmas"],
  noiseLevel: Variant["noiseLevel"],
): Variant[] {
  const out: Variant[] = [];
  for (const algorithm of ["dpmsolver++", "dpmsolver"] as const) {
    for (const solver of ["midpoint", "heun"] as const) {
      for (const order of [1, 2, 3] as const) {
        const config = {
          algorithm_type: algorithm,
          solver_type: solver,
          solver_order: order,
          lower_order_final: false,
          use_karras_sigmas: sigmas === "karras",
        };
        const errors = STEPS.map((n) => inversionError(config, n, noiseLevel));
        out.push({
          algorithm,
          solver,
          order,
          sigmas,
          noiseLevel,
          errors,
          slope: convergenceOrder(STEPS, errors),
        });
      }
    }
  }
  return out;
}

function report(title: string, variants: Variant[]): void {
  console.log(`${title} (max |error| at ${STEPS.join("/")} steps; slope)`);
  for (const v of variants) {
    console.log(
      `  ${v.algorithm.padEnd(11)} ${
        v.solver.padEnd(8)
      } order ${v.order}: slope ${v.slope.toFixed(2)}  ${
        v.errors.map((e) => e.toExponential(1)).join(" ")
      }`,
    );
  }
}

Deno.test("convergence orders on Gaussian data, Karras sigmas, the scheduler's own sigmas", () => {
  const variants = measure("karras", "schedule");
  report("Karras, noise level from the schedule", variants);
  for (const v of variants) {
    // Order 1 is DDIM for both algorithm types and both solver types.
    if (v.order === 1) {
      assert.ok(v.slope >= 0.85 && v.slope <= 1.15, `${v.slope}`);
    }
    if (v.algorithm !== "dpmsolver++") continue;
    if (v.order === 2) assert.ok(v.slope >= 1.7, `${v.solver} ${v.slope}`);
    if (v.order === 3) assert.ok(v.slope >= 2.2, `${v.solver} ${v.slope}`);
  }
  // DPM-Solver (noise prediction): its error changes sign inside 12..48 steps, so the slope says
  // little; at 48 steps every higher order still beats first order by more than 10×.
  const first = variants.find((v) => v.order === 1)!.errors.at(-1)!;
  for (
    const v of variants.filter((v) =>
      v.algorithm === "dpmsolver" && v.order > 1
    )
  ) {
    assert.ok(v.errors.at(-1)! < first / 10, `${v.solver} ${v.order}`);
  }
});

Deno.test("convergence orders on Gaussian data, Karras sigmas, noise level from alphas_cumprod", () => {
  const variants = measure("karras", "alphas_cumprod").filter((v) =>
    v.algorithm === "dpmsolver++"
  );
  report("Karras, noise level from alphas_cumprod[t]", variants);
  for (const v of variants) {
    if (v.order === 1) {
      assert.ok(v.slope >= 0.85 && v.slope <= 1.15, `${v.slope}`);
    }
    if (v.order === 2) assert.ok(v.slope >= 1.7, `${v.solver} ${v.slope}`);
    if (v.order === 3) assert.ok(v.slope >= 2.2, `${v.solver} ${v.slope}`);
  }
});

Deno.test("convergence orders on Gaussian data, linspace: every order near 1 (first step spans lambda 4.6 to ~2)", () => {
  const variants = measure("linspace", "schedule");
  report("linspace, interpolated sigmas", variants);
  for (const v of variants) {
    assert.ok(
      v.slope > 0.8 && v.slope < 1.5,
      `${v.algorithm} ${v.solver} ${v.order} ${v.slope}`,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Round trip on the built-in 1-D mixture: invert, then sample back with the forward scheduler.

const MIXTURE = builtinAnalyticModel("mixture") as GaussianMixture;
const SAMPLES = MIXTURE.sample([512], new TorchGenerator(0));
const ROUND_STEPS = [10, 25, 50, 100];

function roundTrip(
  config: Record<string, unknown>,
  steps: number,
): { inversion: number; reconstruction: number; noise: Tensor } {
  const inverse = new DPMSolverMultistepInverseScheduler(config);
  inverse.setTimesteps(steps);
  const forward = new DPMSolverMultistepScheduler({
    ...config,
    final_sigmas_type: "sigma_min",
  });
  forward.setTimesteps(steps);
  let x = SAMPLES;
  const invert = schedulerModel(MIXTURE, inverse);
  for (const t of inverse.timesteps) {
    x = inverse.step(invert(x, t), t, x).prevSample;
  }
  const noise = x;
  const sample = schedulerModel(MIXTURE, forward);
  for (const t of forward.timesteps) {
    x = forward.step(sample(x, t), t, x).prevSample;
  }
  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
    return m;
  };
  return {
    inversion: maxDiff(noise.toFloat32Array(), EXACT_NOISE),
    reconstruction: maxDiff(x.toFloat32Array(), SAMPLES.toFloat32Array()),
    noise,
  };
}

// Every schedule below runs from sigmas[0] = training sigma 0 to the noisiest training sigma.
const reference = new DPMSolverMultistepInverseScheduler();
const EXACT_NOISE = MIXTURE.odeMap(
  SAMPLES.toFloat32Array(),
  reference.alphaSigmaAt(0),
  {
    alphaT: Math.sqrt(reference.alphasCumprod[999]!),
    sigmaT: Math.sqrt(1 - reference.alphasCumprod[999]!),
  },
);

Deno.test("round trip on the mixture: reconstruction and inversion errors fall at the solver's order", () => {
  const rows: string[] = [];
  const table: Record<
    string,
    { inversion: number[]; reconstruction: number[] }
  > = {};
  for (const sigmas of ["linspace", "karras"]) {
    for (const order of [1, 2, 3]) {
      const config = {
        solver_order: order,
        use_karras_sigmas: sigmas === "karras",
      };
      const results = ROUND_STEPS.map((n) => roundTrip(config, n));
      // The noise ends at the same sigma whatever the schedule.
      for (const r of results) {
        assert.ok(
          Number.isFinite(r.inversion) && Number.isFinite(r.reconstruction),
        );
      }
      const key = `${sigmas} ${order}`;
      table[key] = {
        inversion: results.map((r) => r.inversion),
        reconstruction: results.map((r) => r.reconstruction),
      };
      rows.push(
        `  ${sigmas.padEnd(8)} order ${order}: reconstruction ${
          results.map((r) => r.reconstruction.toExponential(1)).join(" ")
        } | inversion ${
          results.map((r) => r.inversion.toExponential(1)).join(" ")
        }`,
      );
    }
  }
  console.log(
    `round trip, max |error| at ${ROUND_STEPS.join("/")} steps\n${
      rows.join("\n")
    }`,
  );
  const ratio = (xs: number[], i: number) => xs[i]! / xs[i + 1]!;
  // Order 1 (DDIM both ways): errors halve at most per doubling.
  const o1 = table["karras 1"]!.reconstruction;
  assert.ok(o1[3]! > 0.1 && o1[3]! < 0.5, `${o1}`);
  // Karras, orders 2 and 3: each doubling of the steps (25 → 50 → 100) divides both errors by
  // more than 4 (slope > 2), and 100 steps reconstruct to within 2e-3.
  for (const key of ["karras 2", "karras 3"]) {
    const { inversion, reconstruction } = table[key]!;
    for (const i of [1, 2]) {
      assert.ok(ratio(reconstruction, i) > 4, `${key} ${reconstruction}`);
      assert.ok(ratio(inversion, i) > 3.5, `${key} ${inversion}`);
    }
    assert.ok(reconstruction[3]! < 2e-3, `${key} ${reconstruction}`);
  }
  // linspace order 2: past its huge first step, 50 → 100 steps divides the error by more than 4.
  const l2 = table["linspace 2"]!.reconstruction;
  assert.ok(ratio(l2, 2) > 4 && l2[3]! < 3e-2, `${l2}`);
});
