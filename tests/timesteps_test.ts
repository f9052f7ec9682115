// lib/timesteps.ts on its own, as tables: NumPy's round/linspace/arange, the sigma families
// against their defining formulas, and the sigma → timestep interpolation.
import assert from "node:assert/strict";
import {
  arange,
  betaSigmas,
  exponentialSigmas,
  firstOccurrences,
  flowSigmas,
  interpIndex,
  karrasSigmas,
  linspace,
  luSigmas,
  roundHalfEven,
  sigmaToT,
} from "../lib/timesteps.ts";

function assertAllClose(
  actual: ArrayLike<number>,
  expected: readonly number[],
  what: string,
  tolerance = 1e-12,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const scale = Math.max(1, Math.abs(expected[i]!));
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) <= tolerance * scale,
      `${what}[${i}]: ${actual[i]} is not ${expected[i]}`,
    );
  }
}

Deno.test("roundHalfEven() is np.round: ties to even", () => {
  const table: [number, number][] = [
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [3.5, 4],
    [-1.5, -2],
    [-2.5, -2],
    [2.4, 2],
    [2.6, 3],
    [998.5, 998],
    [7, 7],
  ];
  for (const [x, expected] of table) {
    assert.equal(roundHalfEven(x), expected, `round(${x})`);
  }
});

Deno.test("linspace() and arange() give NumPy's points", () => {
  const table: [string, ArrayLike<number>, number[]][] = [
    ["linspace(0, 1, 5)", linspace(0, 1, 5), [0, 0.25, 0.5, 0.75, 1]],
    ["linspace(0, 999, 1)", linspace(0, 999, 1), [0]],
    ["linspace(2, 2, 3)", linspace(2, 2, 3), [2, 2, 2]],
    ["linspace(999, 0, 4)", linspace(999, 0, 4), [999, 666, 333, 0]],
    ["arange(0, 1, 0.25)", arange(0, 1, 0.25), [0, 0.25, 0.5, 0.75]],
    ["arange(1000, 0, -250)", arange(1000, 0, -250), [1000, 750, 500, 250]],
    ["arange(0, 10, 3)", arange(0, 10, 3), [0, 3, 6, 9]],
    ["arange(5, 0, 1)", arange(5, 0, 1), []],
  ];
  for (const [what, actual, expected] of table) {
    assertAllClose(actual, expected, what);
  }
  // The last point is the stop exactly, whatever the step's rounding.
  assert.equal(linspace(0, 0.1, 7)[6], 0.1);
});

Deno.test("the sigma families follow their defining formulas", () => {
  const rho = 7;
  const karrasMid = ((10 ** (1 / rho) + 0.1 ** (1 / rho)) / 2) ** rho;
  const shift = (s: number, k: number) => (k * s) / (1 + (k - 1) * s);
  const table: [string, ArrayLike<number>, number[]][] = [
    // Karras (2206.00364, eq. 5): (σmax^(1/ρ) + u·(σmin^(1/ρ) − σmax^(1/ρ)))^ρ
    ["karras", karrasSigmas(0.1, 10, 3), [10, karrasMid, 0.1]],
    // Evenly spaced in log: geometric.
    ["exponential", exponentialSigmas(0.1, 10, 3), [10, 1, 0.1]],
    // Lu (2206.00927): evenly spaced in lambda = −log(sigma) for VP with alpha ≈ 1.
    ["lu", luSigmas(Math.log(10), Math.log(0.1), 5), [
      10,
      10 ** 0.5,
      1,
      10 ** -0.5,
      0.1,
    ]],
    // Flow: 1 − linspace(1, 1/T, n + 1), flipped, the 0 dropped; shift 1 leaves it as is.
    ["flow", flowSigmas(4, 1, 1000), [0.999, 0.74925, 0.4995, 0.24975]],
    [
      "flow shift 3",
      flowSigmas(4, 3, 1000),
      [0.999, 0.74925, 0.4995, 0.24975].map((s) => shift(s, 3)),
    ],
    // Beta(0.6, 0.6) is symmetric: its median is 0.5, so the middle sigma is the midpoint.
    ["beta", betaSigmas(0.1, 10, 3), [10, 5.05, 0.1]],
  ];
  for (const [what, actual, expected] of table) {
    assertAllClose(actual, expected, what, 1e-9);
  }
});

Deno.test("sigmaToT() interpolates linearly in log-sigma and clamps at the ends", () => {
  const logSigmas = Float32Array.from([1, 2, 4, 8], Math.log);
  const table: [number, number][] = [
    [2, 1],
    [Math.SQRT2 * 2, 1.5], // halfway between log 2 and log 4
    [8, 3],
    [0.5, 0], // below the range
    [100, 3], // above the range
  ];
  for (const [sigma, t] of table) {
    assert.ok(
      Math.abs(sigmaToT(sigma, logSigmas) - t) < 1e-6,
      `sigma ${sigma}`,
    );
  }
});

Deno.test("interpIndex() is np.interp over 0..n-1; firstOccurrences() keeps first copies", () => {
  const values = [10, 20, 40];
  const table: [number, number][] = [[0.5, 15], [-1, 10], [5, 40], [1.25, 25], [
    2,
    40,
  ], [1, 20]];
  for (const [x, y] of table) {
    assert.equal(interpIndex(x, values), y, `x = ${x}`);
  }
  assert.deepEqual(firstOccurrences([3, 3, 1, 3, 2, 1]), [0, 2, 4]);
  assert.deepEqual(firstOccurrences([]), []);
});
