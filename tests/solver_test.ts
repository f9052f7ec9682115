// lib/solver.ts on its own: the update coefficients against the closed forms of the papers
// (DPM-Solver, arXiv:2206.00927; DPM-Solver++, arXiv:2211.01095; their SDE variants as
// diffusers writes them), evaluated in float64 from the same noise levels; chooseOrder as a
// table; the model-output conversion against its formulas.
import assert from "node:assert/strict";
import {
  chooseOrder,
  isDataPrediction,
  modelOutputConversion,
  multistepCoefficients,
} from "../lib/solver.ts";
import { type AlphaSigma, sigmaToAlphaSigma } from "../lib/noise_schedule.ts";
import type { AlgorithmType } from "../lib/config.ts";

// Float32 arithmetic (SLEEF exp, rounding after every operation) against float64 closed forms.
function assertClose(actual: number, expected: number, what: string): void {
  const tolerance = 2e-6 * Math.max(1, Math.abs(expected));
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `${what}: ${actual} is not within ${tolerance} of ${expected}`,
  );
}

const lambda = ({ alphaT, sigmaT }: AlphaSigma) =>
  Math.log(alphaT) - Math.log(sigmaT);

// Noise levels [t, s0, s1, s2] of an inverse step (sigma grows) and of a forward one.
const directions: [string, AlphaSigma[]][] = [
  ["inverse", [2.5, 1.2, 0.7, 0.4].map((s) => sigmaToAlphaSigma(s, false))],
  ["forward", [0.3, 0.8, 1.9, 3.5].map((s) => sigmaToAlphaSigma(s, false))],
];

Deno.test("first-order coefficients are the exp/expm1 closed forms", () => {
  for (const [direction, points] of directions) {
    const [t, s] = points as [AlphaSigma, AlphaSigma];
    const h = lambda(t) - lambda(s);
    const rows: [AlgorithmType, number, number, number][] = [
      // DPM-Solver++ (2211.01095, eq. 5 with order 1): x_t = (σ_t/σ_s)·x − α_t·(e^{−h} − 1)·x0
      ["dpmsolver++", t.sigmaT / s.sigmaT, -t.alphaT * Math.expm1(-h), 0],
      // DPM-Solver (2206.00927, eq. 3.7 with k = 1): x_t = (α_t/α_s)·x − σ_t·(e^{h} − 1)·ε
      ["dpmsolver", t.alphaT / s.alphaT, -t.sigmaT * Math.expm1(h), 0],
      // SDE-DPM-Solver++ (2211.01095, §4 / diffusers): noise σ_t·sqrt(1 − e^{−2h})
      [
        "sde-dpmsolver++",
        (t.sigmaT / s.sigmaT) * Math.exp(-h),
        -t.alphaT * Math.expm1(-2 * h),
        t.sigmaT * Math.sqrt(-Math.expm1(-2 * h)),
      ],
      // SDE-DPM-Solver: noise σ_t·sqrt(e^{2h} − 1)
      [
        "sde-dpmsolver",
        t.alphaT / s.alphaT,
        -2 * t.sigmaT * Math.expm1(h),
        t.sigmaT * Math.sqrt(Math.expm1(2 * h)),
      ],
    ];
    for (const [algorithm, a, b, e] of rows) {
      if (algorithm.startsWith("sde") && direction === "inverse") continue; // h < 0: no SDE
      const c = multistepCoefficients(1, algorithm, "midpoint", [t, s])!;
      const what = `${direction} ${algorithm}`;
      assert.equal(c.order, 1);
      assertClose(c.a, a, `${what} a`);
      assertClose(c.b, b, `${what} b`);
      assertClose(c.e, e, `${what} e`);
      assert.deepEqual([c.c, c.d, c.k0, c.k1, c.q, c.k2], [0, 0, 0, 0, 0, 0]);
    }
  }
});

Deno.test("a first-order step maps a consistent sample exactly (DDIM's identity)", () => {
  // x_s = α_s·x0 + σ_s·ε must go to α_t·x0 + σ_t·ε for either parametrisation.
  const [x0, eps] = [0.7, -1.3];
  for (const [direction, points] of directions) {
    const [t, s] = points as [AlphaSigma, AlphaSigma];
    const xs = s.alphaT * x0 + s.sigmaT * eps;
    const xt = t.alphaT * x0 + t.sigmaT * eps;
    const pp = multistepCoefficients(1, "dpmsolver++", "midpoint", [t, s])!;
    assertClose(pp.a * xs + pp.b * x0, xt, `${direction} dpmsolver++`);
    const p = multistepCoefficients(1, "dpmsolver", "midpoint", [t, s])!;
    assertClose(p.a * xs + p.b * eps, xt, `${direction} dpmsolver`);
  }
});

Deno.test("second-order coefficients: midpoint c = b/2, heun the phi_2 form, k0 = h/h0", () => {
  for (const [direction, points] of directions) {
    const [t, s0, s1] = points as [AlphaSigma, AlphaSigma, AlphaSigma];
    const h = lambda(t) - lambda(s0);
    const h0 = lambda(s0) - lambda(s1);
    for (const algorithm of ["dpmsolver++", "dpmsolver"] as const) {
      const first = multistepCoefficients(1, algorithm, "midpoint", [t, s0])!;
      const mid = multistepCoefficients(2, algorithm, "midpoint", [t, s0, s1])!;
      const heun = multistepCoefficients(2, algorithm, "heun", [t, s0, s1])!;
      const what = `${direction} ${algorithm}`;
      assert.equal(mid.order, 2);
      assert.equal(mid.a, first.a);
      assert.equal(mid.b, first.b);
      assert.equal(mid.c, 0.5 * mid.b);
      assertClose(mid.k0, h / h0, `${what} k0`);
      // Heun: D1 enters with α_t·((e^{−h} − 1)/h + 1) (++), or −σ_t·((e^{h} − 1)/h − 1).
      const expected = algorithm === "dpmsolver++"
        ? t.alphaT * (Math.expm1(-h) / h + 1)
        : -t.sigmaT * (Math.expm1(h) / h - 1);
      assertClose(heun.c, expected, `${what} heun c`);
    }
  }
});

Deno.test("third-order coefficients are DPM-Solver++'s multistep order-3 closed form", () => {
  for (const [direction, points] of directions) {
    const [t, s0, s1, s2] = points as [
      AlphaSigma,
      AlphaSigma,
      AlphaSigma,
      AlphaSigma,
    ];
    const h = lambda(t) - lambda(s0);
    const r0 = (lambda(s0) - lambda(s1)) / h;
    const r1 = (lambda(s1) - lambda(s2)) / h;
    const c = multistepCoefficients(3, "dpmsolver++", "midpoint", points)!;
    const what = `${direction} order 3`;
    assert.equal(c.order, 3);
    assertClose(c.k0, 1 / r0, `${what} k0`);
    assertClose(c.k1, 1 / r1, `${what} k1`);
    assertClose(c.q, r0 / (r0 + r1), `${what} q`);
    assertClose(c.k2, 1 / (r0 + r1), `${what} k2`);
    assertClose(c.c, t.alphaT * (Math.expm1(-h) / h + 1), `${what} c`);
    assertClose(
      c.d,
      -t.alphaT * ((Math.expm1(-h) + h) / (h * h) - 0.5),
      `${what} d`,
    );
  }
});

Deno.test("a zero-length step has no coefficients; an empty earlier interval lowers the order", () => {
  const [t, s0, s1] = directions[0]![1] as [AlphaSigma, AlphaSigma, AlphaSigma];
  assert.equal(
    multistepCoefficients(1, "dpmsolver++", "midpoint", [t, t]),
    null,
  );
  assert.equal(
    multistepCoefficients(2, "dpmsolver++", "heun", [t, t, s0]),
    null,
  );
  assert.equal(
    multistepCoefficients(2, "dpmsolver++", "midpoint", [t, s0, s0])!.order,
    1,
  );
  assert.equal(
    multistepCoefficients(3, "dpmsolver++", "midpoint", [t, s0, s1, s1])!.order,
    2,
  );
  assert.throws(
    () =>
      multistepCoefficients(3, "sde-dpmsolver", "midpoint", directions[1]![1]),
    RangeError,
  );
});

Deno.test("chooseOrder() follows diffusers' step: warm-up, lower_order_final, lower_order_second", () => {
  // [solver_order, lower_order_nums, lower_order_final, lower_order_second] → order
  const table: [number, number, boolean, boolean, 1 | 2 | 3][] = [
    [1, 0, false, false, 1],
    [1, 5, false, false, 1],
    [2, 0, false, false, 1],
    [2, 1, false, false, 2],
    [2, 2, false, false, 2],
    [2, 2, true, false, 1],
    [2, 2, false, true, 2],
    [3, 0, false, false, 1],
    [3, 1, false, false, 2],
    [3, 2, false, false, 3],
    [3, 3, false, false, 3],
    [3, 3, false, true, 2],
    [3, 3, true, false, 1],
    [3, 3, true, true, 1],
    [3, 1, false, true, 2],
  ];
  for (const [solverOrder, lowerOrderNums, final, second, order] of table) {
    assert.equal(
      chooseOrder({
        solverOrder,
        lowerOrderNums,
        lowerOrderFinal: final,
        lowerOrderSecond: second,
      }),
      order,
      `order ${solverOrder}, ${lowerOrderNums} lower-order steps, final ${final}, second ${second}`,
    );
  }
});

Deno.test("modelOutputConversion() is diffusers' convert_model_output, term by term", () => {
  const [alphaT, sigmaT, sigma] = [0.8, 0.6, 0.75];
  // [algorithm, prediction, form, a, b, d]: (a·first + b·second) / d
  const table = [
    ["dpmsolver++", "epsilon", "sample-first", 1, -sigmaT, alphaT], // x0 = (x − σ_t·ε)/α_t
    ["dpmsolver++", "sample", "copy", 1, 0, 1],
    ["dpmsolver++", "v_prediction", "sample-first", alphaT, -sigmaT, 1], // x0 = α_t·x − σ_t·v
    ["dpmsolver++", "flow_prediction", "sample-first", 1, -sigma, 1], // x0 = x − σ·v
    ["dpmsolver", "epsilon", "copy", 1, 0, 1],
    ["dpmsolver", "sample", "sample-first", 1, -alphaT, sigmaT], // ε = (x − α_t·x0)/σ_t
    ["dpmsolver", "v_prediction", "model-first", alphaT, sigmaT, 1], // ε = α_t·v + σ_t·x
  ] as const;
  for (const [algorithm, prediction, form, a, b, d] of table) {
    assert.deepEqual(
      {
        ...modelOutputConversion(algorithm, prediction, alphaT, sigmaT, sigma),
      },
      { form, a, b, d },
      `${algorithm} ${prediction}`,
    );
  }
  assert.throws(
    () =>
      modelOutputConversion(
        "dpmsolver",
        "flow_prediction",
        alphaT,
        sigmaT,
        sigma,
      ),
    RangeError,
  );
  assert.deepEqual(
    (["dpmsolver", "dpmsolver++", "sde-dpmsolver", "sde-dpmsolver++"] as const)
      .map(isDataPrediction),
    [false, true, false, true],
  );
});
