// The kernel cases of the backend conformance suite, written once: tests/kernels_test.ts runs
// them on every backend available to Deno, tests/browser/ on WebGPU in headless Chromium.
// Expected values come from mathematics (exactly representable inputs and results) or from the
// TypeScript CPU kernels, the oracle whose steps tests/multistep_inverse_test.ts and the
// diffusers suites hold to diffusers' references. Every backend must match bit for bit (any NaN
// matching any NaN), except `dot`, held to float32's summation bound (see dotBound). No Deno API
// here: the module also runs in a browser.
import { convertThenUpdate } from "../lib/_convert.ts";
import { CpuKernels } from "../lib/backends/cpu.ts";
import type {
  Kernels,
  ModelOutputConversion,
  TensorView,
} from "../lib/kernels.ts";
import type { MultistepCoefficients } from "../lib/solver.ts";
import { Tensor } from "../lib/tensor.ts";
import {
  algorithmsFor,
  assertSameBits,
  coefficients,
  conversions,
  values,
} from "./_kernel_fixtures.ts";

/** The oracle: the TypeScript kernels. */
export const oracle: CpuKernels = new CpuKernels();

/** A backend tensor the cases can take views of. */
export type View<T> = TensorView<T> & { permute(dims: readonly number[]): T };

/** One backend as the suite runs it: its kernels, and how test data gets in and out. */
export interface Backend<T extends View<T>> {
  name: string;
  /** `null` where the backend is unavailable here (then the tests are ignored, or fail under CI). */
  kernels: Kernels<T> | null;
  /** A new backend tensor holding `t`'s values. */
  put(t: Tensor): T;
  /** A backend tensor's values as a new CPU tensor. */
  get(t: T): Promise<Tensor>;
  ignore: boolean;
}

/** A backend whose tensors are CPU {@link Tensor}s (in its own memory or not). */
export function hostBackend(
  name: string,
  kernels: Kernels<Tensor>,
): Backend<Tensor> {
  return {
    name,
    kernels,
    put: (t) => {
      const out = kernels.empty(t.shape);
      oracle.copy(out, t);
      return out;
    },
    get: (t) => Promise.resolve(t.clone()),
    ignore: false,
  };
}

/** A backend with tensors of its own, uploaded from and read back into CPU tensors. */
export function deviceBackend<T extends View<T>>(
  name: string,
  kernels:
    | Kernels<T> & {
      upload(t: Tensor): T;
      read(t: T): Promise<Tensor>;
    }
    | null,
  ignore: boolean,
): Backend<T> {
  return {
    name,
    kernels,
    put: (t) => kernels!.upload(t),
    get: (t) => kernels!.read(t),
    ignore,
  };
}

/** One kernel case, run on each backend. */
export interface KernelCase {
  name: string;
  run<T extends View<T>>(b: Backend<T>, k: Kernels<T>): Promise<void>;
}

/** Every kernel case, in order. */
export const cases: KernelCase[] = [];

// The result of a kernel on `b`, against its expected values.
async function check<T extends View<T>>(
  b: Backend<T>,
  actual: T,
  expected: Tensor,
  what: string,
): Promise<void> {
  assertSameBits(await b.get(actual), expected, `${b.name}: ${what}`);
}

// The scheduler's step on a backend: the fused kernel where it has one, else the separate ones.
function convertAndUpdate<T extends View<T>>(
  k: Kernels<T>,
  v: Operands<T>,
  conversion: ModelOutputConversion,
  c: MultistepCoefficients,
): void {
  const args = [
    v.out,
    v.converted,
    v.sample,
    v.modelOutput,
    conversion,
    v.history,
    c,
    v.noise,
  ] as const;
  if (k.convertAndUpdate) k.convertAndUpdate(...args);
  else convertThenUpdate(k, ...args);
}

function thresholdAndUpdate<T extends View<T>>(
  k: Kernels<T>,
  v: Operands<T>,
  ratio: number,
  maxValue: number,
  c: MultistepCoefficients,
): void {
  if (k.thresholdAndUpdate) {
    k.thresholdAndUpdate(
      v.out,
      v.converted,
      v.sample,
      ratio,
      maxValue,
      v.history,
      c,
      v.noise,
    );
  } else {
    k.threshold(v.converted, ratio, maxValue);
    const outputs = [v.converted, ...v.history].slice(0, c.order);
    k.multistep(v.out, v.sample, outputs, c, v.noise);
  }
}

/** The tensors of a step: `converted` is the model output converted (or x0 to threshold). */
interface Operands<T> {
  out: T;
  converted: T;
  sample: T;
  modelOutput: T;
  history: T[];
  noise: T | null;
}

cases.push({
  name: "copy() is the identity, from and into strided views",
  async run(b, k) {
    const x = values([2, 3, 4], 1);
    const out = k.empty([2, 3, 4]);
    k.copy(out, b.put(x));
    await check(b, out, x, "contiguous");
    // From a channel slice and from a permuted view.
    const doubled = values([2, 6, 4, 4], 2);
    const slice = k.empty([2, 3, 4, 4]);
    k.copy(slice, b.put(doubled).slice(1, 3, 6));
    await check(b, slice, doubled.slice(1, 3, 6).contiguous(), "from a slice");
    const base = values([7, 2, 5, 3], 3);
    const permuted = k.empty([2, 3, 5, 7]);
    k.copy(permuted, b.put(base).permute([1, 3, 2, 0]));
    await check(
      b,
      permuted,
      base.permute([1, 3, 2, 0]).contiguous(),
      "from a permuted view",
    );
    // Into a channel slice: the other channels stay.
    const target = b.put(doubled);
    k.copy(target.slice(1, 0, 3), b.put(values([2, 3, 4, 4], 4)));
    const expected = doubled.clone();
    oracle.copy(expected.slice(1, 0, 3), values([2, 3, 4, 4], 4));
    await check(b, target, expected, "into a slice");
  },
});

cases.push({
  name: "axpbyDiv() computes (a·x + b·y) / d",
  async run(b, k) {
    // Exactly representable: (2x + 4y) / 0.5 = 4x + 8y, and 3x / 2.
    const x = b.put(Tensor.from([1, 2, 3, -4]));
    const y = b.put(Tensor.from([0.5, 0.25, -1, 2]));
    const out = k.empty([4]);
    k.axpbyDiv(out, 2, x, 4, y, 0.5);
    await check(b, out, Tensor.from([8, 10, 4, 0]), "exact with y");
    k.axpbyDiv(out, 3, x, 0, null, 2);
    await check(b, out, Tensor.from([1.5, 3, 4.5, -6]), "exact without y");
    // Random float32 data, a channel slice and a permuted view as operands.
    const [a, c, d] = [0.83, -0.41, 0.77].map(Math.fround) as [
      number,
      number,
      number,
    ];
    const doubled = values([2, 6, 4, 4], 11);
    const base = values([4, 4, 3, 2], 12);
    const sample = base.permute([3, 2, 0, 1]);
    for (const withY of [true, false]) {
      const expected = Tensor.zeros([2, 3, 4, 4]);
      const ySlice = withY ? doubled.slice(1, 0, 3) : null;
      oracle.axpbyDiv(expected, a, sample, c, ySlice, d);
      const result = k.empty([2, 3, 4, 4]);
      k.axpbyDiv(
        result,
        a,
        b.put(base).permute([3, 2, 0, 1]),
        c,
        withY ? b.put(doubled).slice(1, 0, 3) : null,
        d,
      );
      await check(b, result, expected, `strided, y: ${withY}`);
    }
  },
});

cases.push({
  name: "threshold() scales each item by its clamped |x| quantile",
  async run(b, k) {
    // torch.quantile of |x| per item, clamped to [1, max]: item 0 has |x| = 1, 2, 3, 4, item 1
    // stays below 1 (s = 1: unchanged).
    const rows = [-4, -2, 1, 3, 0.5, -0.25, 0.125, 0.75];
    const exact: [number, number, number[]][] = [
      [1, 30, [-1, -0.5, 0.25, 0.75]], // s = 4
      [1, 2, [-1, -1, 0.5, 1]], // s = 2
      // rank 1.5 between 2 and 3: s = 2.5
      [0.5, 30, [-1, -2 / 2.5, 1 / 2.5, 1]],
    ];
    for (const [ratio, max, item0] of exact) {
      const x = b.put(Tensor.from(rows, [2, 4]));
      k.threshold(x, ratio, max);
      const expected = Tensor.from([...item0, ...rows.slice(4)], [2, 4]);
      await check(b, x, expected, `exact ratio ${ratio} max ${max}`);
    }
    // NaN anywhere in an item makes the whole item NaN (torch.quantile); the other item stays.
    const withNaN = values([2, 10], 3);
    withNaN.data[4] = NaN;
    const expectedNaN = withNaN.clone();
    oracle.threshold(expectedNaN, 0.9, 2);
    const g = b.put(withNaN);
    k.threshold(g, 0.9, 2);
    const result = (await b.get(g)).toFloat32Array();
    if (!result.slice(0, 10).every(Number.isNaN)) {
      throw new Error(`${b.name}: the item holding NaN is not all NaN`);
    }
    assertSameBits(await b.get(g), expectedNaN, `${b.name}: NaN item`);
    // Random data (with ties) over shapes and ratios, against the oracle.
    const shapes = [[1, 1], [3, 5, 7], [2, 3, 5, 3], [1, 1, 9], [2, 3001], [
      2,
      3,
      32,
      32,
    ]];
    let seed = 100;
    for (const shape of shapes) {
      for (const ratio of [0, 0.5, 0.87, 0.995, 0.9999, 1]) {
        for (const max of [1, 1.5, 30]) {
          const x = values(shape, seed++, 4);
          const onBackend = b.put(x);
          oracle.threshold(x, ratio, max);
          k.threshold(onBackend, ratio, max);
          await check(b, onBackend, x, `${shape} ratio ${ratio} max ${max}`);
        }
      }
    }
    // A permuted view, thresholded in place through the view.
    const base = values([5, 4, 3], 7);
    const onBackend = b.put(base);
    oracle.threshold(base.permute([2, 0, 1]), 0.9, 2);
    k.threshold(onBackend.permute([2, 0, 1]), 0.9, 2);
    await check(b, onBackend, base, "strided");
  },
});

cases.push({
  name:
    "multistep() orders 1-3, every algorithm, with and without noise, on permuted views",
  async run(b, k) {
    // Exact: order 1 is a·x + b·m0 + e·noise.
    const exact: MultistepCoefficients = {
      order: 1,
      a: 2,
      b: 0.5,
      c: 0,
      d: 0,
      e: 0.25,
      k0: 0,
      k1: 0,
      q: 0,
      k2: 0,
    };
    const out = k.empty([3]);
    k.multistep(
      out,
      b.put(Tensor.from([1, -2, 3])),
      [b.put(Tensor.from([4, 8, -2]))],
      exact,
      b.put(Tensor.from([4, 0, 8])),
    );
    await check(b, out, Tensor.from([5, 0, 7]), "exact order 1 with noise");
    const shape = [2, 3, 5, 7];
    const dims = [1, 3, 2, 0];
    const bases = [1, 2, 3, 4, 5].map((seed) => values([7, 2, 5, 3], seed));
    const [x, m0, m1, m2, noise] = bases.map((t) => t.permute(dims));
    const [gx, g0, g1, g2, gn] = bases.map((t) => b.put(t).permute(dims));
    for (const order of [1, 2, 3] as const) {
      for (const algorithm of algorithmsFor(order)) {
        for (const solver of ["midpoint", "heun"] as const) {
          for (const withNoise of [true, false]) {
            const c = coefficients(order, algorithm, solver);
            const expected = Tensor.zeros(shape);
            const history = [m0!, m1!, m2!].slice(0, order);
            oracle.multistep(
              expected,
              x!,
              history,
              c,
              withNoise ? noise! : null,
            );
            const result = k.empty(shape);
            k.multistep(
              result,
              gx!,
              [g0!, g1!, g2!].slice(0, order),
              c,
              withNoise ? gn! : null,
            );
            await check(
              b,
              result,
              expected,
              `order ${order} ${algorithm} ${solver} noise ${withNoise}`,
            );
          }
        }
      }
    }
  },
});

cases.push({
  name:
    "convertAndUpdate() equals the conversion then the update (forms × orders × noise, strided)",
  async run(b, k) {
    const shape = [2, 3, 5, 7];
    const dims = [1, 3, 2, 0];
    const bases = [1, 2, 3, 4].map((seed) => values([7, 2, 5, 3], 40 + seed));
    const doubled = values([2, 6, 5, 7], 45);
    const [x, m1, m2, noise] = bases.map((t) => t.permute(dims));
    const [gx, g1, g2, gn] = bases.map((t) => b.put(t).permute(dims));
    const gm = b.put(doubled).slice(1, 3, 6);
    for (const conversion of conversions) {
      for (const order of [1, 2, 3] as const) {
        for (const algorithm of ["dpmsolver++", "sde-dpmsolver++"] as const) {
          const c = coefficients(order, algorithm);
          const expected = {
            out: Tensor.zeros(shape),
            converted: Tensor.zeros(shape),
          };
          convertThenUpdate(
            oracle,
            expected.out,
            expected.converted,
            x!,
            doubled.slice(1, 3, 6),
            conversion,
            [m1!, m2!],
            c,
            noise!,
          );
          const v = {
            out: k.empty(shape),
            converted: k.empty(shape),
            sample: gx!,
            modelOutput: gm,
            history: [g1!, g2!],
            noise: gn!,
          };
          convertAndUpdate(k, v, conversion, c);
          const what = `${conversion.form} order ${order} ${algorithm}`;
          await check(b, v.out, expected.out, what);
          await check(b, v.converted, expected.converted, `${what} converted`);
        }
      }
    }
  },
});

cases.push({
  name:
    "thresholdAndUpdate() equals threshold() then multistep() (orders × noise, strided, NaN)",
  async run(b, k) {
    const shape = [3, 4, 5, 3];
    const dims = [0, 3, 2, 1];
    const bases = [1, 2, 3, 4, 5].map((seed) =>
      values([3, 3, 5, 4], 70 + seed)
    );
    bases[0]!.data[7] = NaN; // item 0 of x0 holds a NaN: its x0 and update are NaN
    for (const order of [1, 2, 3] as const) {
      for (const algorithm of ["dpmsolver++", "sde-dpmsolver++"] as const) {
        const c = coefficients(order, algorithm, "heun");
        const [x0, x, m1, m2, noise] = bases.map((t) =>
          t.clone().permute(dims)
        );
        const expected = Tensor.zeros(shape);
        oracle.threshold(x0!, 0.9, 1.5);
        oracle.multistep(
          expected,
          x!,
          [x0!, m1!, m2!].slice(0, order),
          c,
          noise!,
        );
        const [gx0, gx, g1, g2, gn] = bases.map((t) => b.put(t).permute(dims));
        const v = {
          out: k.empty(shape),
          converted: gx0!,
          sample: gx!,
          modelOutput: gx0!,
          history: [g1!, g2!],
          noise: gn!,
        };
        thresholdAndUpdate(k, v, 0.9, 1.5, c);
        const what = `order ${order} ${algorithm}`;
        await check(b, v.out, expected, what);
        await check(b, gx0!, x0!.contiguous(), `${what} x0`);
      }
    }
  },
});

cases.push({
  name:
    "every kernel on sizes 1, 3, 4, 5, 17, 64 and 1003 (vector bodies and scalar tails)",
  async run(b, k) {
    const [a, c, d] = [0.7, -1.3, 0.9].map(Math.fround) as [
      number,
      number,
      number,
    ];
    for (const n of [1, 3, 4, 5, 17, 64, 1003]) {
      const [x, y, m1, m2, noise] = [1, 2, 3, 4, 5].map((k) =>
        values([n], 10 * n + k, 2)
      );
      const [gx, gy, g1, g2, gn] = [x, y, m1, m2, noise].map((t) => b.put(t!));
      for (const withY of [true, false]) {
        const expected = Tensor.zeros([n]);
        oracle.axpbyDiv(expected, a, x!, c, withY ? y! : null, d);
        const out = k.empty([n]);
        k.axpbyDiv(out, a, gx!, c, withY ? gy! : null, d);
        await check(b, out, expected, `axpbyDiv n=${n} y: ${withY}`);
      }
      for (const order of [1, 2, 3] as const) {
        for (const algorithm of ["dpmsolver++", "sde-dpmsolver++"] as const) {
          const co = coefficients(order, algorithm, "heun");
          const expected = Tensor.zeros([n]);
          oracle.multistep(
            expected,
            x!,
            [y!, m1!, m2!].slice(0, order),
            co,
            noise!,
          );
          const out = k.empty([n]);
          k.multistep(out, gx!, [gy!, g1!, g2!].slice(0, order), co, gn!);
          const what = `n=${n} order ${order} ${algorithm}`;
          await check(b, out, expected, `multistep ${what}`);
          for (const conversion of conversions) {
            const want = {
              out: Tensor.zeros([n]),
              converted: Tensor.zeros([n]),
            };
            convertThenUpdate(
              oracle,
              want.out,
              want.converted,
              x!,
              y!,
              conversion,
              [m1!, m2!],
              co,
              noise!,
            );
            const v = {
              out: k.empty([n]),
              converted: k.empty([n]),
              sample: gx!,
              modelOutput: gy!,
              history: [g1!, g2!],
              noise: gn!,
            };
            convertAndUpdate(k, v, conversion, co);
            await check(
              b,
              v.out,
              want.out,
              `convertAndUpdate ${conversion.form} ${what}`,
            );
            await check(
              b,
              v.converted,
              want.converted,
              `convertAndUpdate ${conversion.form} ${what} converted`,
            );
          }
        }
      }
    }
  },
});

cases.push({
  name:
    "out may alias an input element for element; aliased fused operands take the separate kernels",
  async run(b, k) {
    const shape = [2, 4, 6];
    const c = coefficients(2, "dpmsolver++");
    const conversion = conversions[1]!;
    // axpbyDiv and multistep in place, on a permuted view.
    const base = values([6, 2, 4], 50);
    const [a, d] = [Math.fround(0.7), Math.fround(0.9)];
    const expected = base.clone();
    const view = expected.permute([1, 2, 0]);
    oracle.axpbyDiv(view, a, view, a, view, d);
    const g = b.put(base);
    const gv = g.permute([1, 2, 0]);
    k.axpbyDiv(gv, a, gv, a, gv, d);
    await check(b, g, expected, "axpbyDiv out = x = y (strided)");
    const m = values(shape, 51);
    const sample = values(shape, 52);
    const expectedStep = sample.clone();
    oracle.multistep(expectedStep, expectedStep, [m, m], c, null);
    const gs = b.put(sample);
    k.multistep(gs, gs, [b.put(m), b.put(m)], c, null);
    await check(b, gs, expectedStep, "multistep out = sample");
    // One buffer of 4 items [sample, model output, m1, spare]; each layout places out and
    // converted in it.
    const host = values([4, ...shape], 60);
    const item = (i: number) => <T extends View<T>>(t: T) =>
      t.slice(0, i, i + 1);
    const [s, mo, h1, spare] = [0, 1, 2, 3].map(item);
    const layouts: [string, typeof s, typeof s][] = [
      ["out aliases the sample", s, spare],
      ["converted aliases the model output", spare, mo],
      ["converted aliases the history", spare, h1],
      ["converted is the sample", spare, s],
    ];
    for (const [name, out, converted] of layouts) {
      const operands = <T extends View<T>>(t: T): Operands<T> => ({
        out: out(t),
        converted: converted(t),
        sample: s(t),
        modelOutput: mo(t),
        history: [h1(t)],
        noise: null,
      });
      const cpu = host.clone();
      const v = operands(cpu);
      convertThenUpdate(
        oracle,
        v.out,
        v.converted,
        v.sample,
        v.modelOutput,
        conversion,
        v.history,
        c,
        null,
      );
      const onBackend = b.put(host);
      convertAndUpdate(k, operands(onBackend), conversion, c);
      await check(b, onBackend, cpu, `convertAndUpdate: ${name}`);
    }
    // Inputs aliasing each other: one tensor as both history entries, and operands beside `out`
    // in its buffer.
    const c3 = coefficients(3, "dpmsolver++");
    const pair = values([2, ...shape], 53);
    const expectedPair = pair.clone();
    oracle.multistep(
      expectedPair.slice(0, 1, 2),
      expectedPair.slice(0, 0, 1),
      [m, m, m].map((t) => t.reshape([1, ...shape])),
      c3,
      null,
    );
    const gPair = b.put(pair);
    const gm = b.put(m.reshape([1, ...shape]));
    k.multistep(
      gPair.slice(0, 1, 2),
      gPair.slice(0, 0, 1),
      [gm, gm, gm],
      c3,
      null,
    );
    await check(
      b,
      gPair,
      expectedPair,
      "multistep history [m, m, m], out beside the sample",
    );
    const x0 = values([1, ...shape], 54);
    const four = values([4, ...shape], 55);
    const expectedFour = four.clone();
    const expectedX0 = x0.clone();
    oracle.threshold(expectedX0, 0.9, 1.5);
    oracle.multistep(
      expectedFour.slice(0, 3, 4),
      expectedFour.slice(0, 0, 1),
      [expectedX0, expectedFour.slice(0, 2, 3), expectedFour.slice(0, 2, 3)],
      c3,
      null,
    );
    const gFour = b.put(four);
    const gx0 = b.put(x0);
    thresholdAndUpdate(
      k,
      {
        out: gFour.slice(0, 3, 4),
        converted: gx0,
        sample: gFour.slice(0, 0, 1),
        modelOutput: gx0,
        history: [gFour.slice(0, 2, 3), gFour.slice(0, 2, 3)],
        noise: null,
      },
      0.9,
      1.5,
      c3,
    );
    await check(
      b,
      gFour,
      expectedFour,
      "thresholdAndUpdate, history aliased beside out",
    );
    await check(
      b,
      gx0,
      expectedX0,
      "thresholdAndUpdate, history aliased beside out (x0)",
    );
    // thresholdAndUpdate with x0 the sample itself.
    const x = values([2, 50], 9, 3);
    const expectedX = x.clone();
    oracle.threshold(expectedX, 0.9, 1.5);
    const c1 = coefficients(1, "dpmsolver++");
    const expectedOut = Tensor.zeros([2, 50]);
    oracle.multistep(expectedOut, expectedX, [expectedX], c1, null);
    const gx = b.put(x);
    const v = {
      out: k.empty([2, 50]),
      converted: gx,
      sample: gx,
      modelOutput: gx,
      history: [],
      noise: null,
    };
    thresholdAndUpdate(k, v, 0.9, 1.5, c1);
    await check(b, v.out, expectedOut, "thresholdAndUpdate x0 = sample");
    await check(b, gx, expectedX, "thresholdAndUpdate x0 = sample (x0)");
  },
});

// The reductions of iterative solvers: optional in the kernel interface, present on every
// backend of the suite.
function reductions<T extends View<T>>(b: Backend<T>, k: Kernels<T>) {
  if (!k.maxAbs || !k.dot) {
    throw new Error(`${b.name}: the maxAbs and dot kernels are missing`);
  }
  return {
    maxAbs: async (x: T) => await k.maxAbs!(x),
    dot: async (x: T, y: T) => await k.dot!(x, y),
  };
}

// Backend tensors and their CPU twins, for the reduction cases: contiguous tensors of sizes up
// to a grid-strided 70000, a channel slice, a permuted view and single batch items.
function reductionViews<T extends View<T>>(
  b: Backend<T>,
  seed: number,
): [string, Tensor, T][] {
  const views: [string, Tensor, T][] = [];
  for (const n of [1, 3, 17, 1003, 70000]) {
    const x = values([n], seed + n, 2);
    views.push([`n=${n}`, x, b.put(x)]);
  }
  const doubled = values([2, 6, 4, 4], seed + 1);
  const g = b.put(doubled);
  views.push(["channel slice", doubled.slice(1, 3, 6), g.slice(1, 3, 6)]);
  const base = values([7, 2, 5, 3], seed + 2);
  const permuted = b.put(base).permute([1, 3, 2, 0]);
  views.push(["permuted", base.permute([1, 3, 2, 0]), permuted]);
  views.push(["item 1", base.slice(0, 1, 2), b.put(base).slice(0, 1, 2)]);
  views.push([
    "item of a permuted view",
    base.permute([1, 3, 2, 0]).slice(0, 1, 2),
    permuted.slice(0, 1, 2),
  ]);
  return views;
}

cases.push({
  name:
    "maxAbs() is the CPU's bit for bit (strided views, items, NaN, ±∞, subnormals, −0)",
  async run(b, k) {
    const { maxAbs } = reductions(b, k);
    const same = (actual: number, expected: number, what: string) => {
      if (Object.is(actual, expected)) return;
      if (Number.isNaN(actual) && Number.isNaN(expected)) return;
      throw new Error(
        `${b.name}: maxAbs ${what} is ${actual}, expected ${expected}`,
      );
    };
    // From mathematics: the largest magnitude, whatever its sign; 0 (not −0) for zeros.
    const exact: [number[], number][] = [
      [[0.5, -3, 2], 3],
      [[-0, -0], 0],
      [[Math.fround(1e-40), -Math.fround(3e-40)], Math.fround(3e-40)],
      [[1, -Infinity, 2], Infinity],
      [[1, NaN, Infinity], NaN],
      [[NaN], NaN],
    ];
    for (const [data, expected] of exact) {
      same(await maxAbs(b.put(Tensor.from(data))), expected, `of [${data}]`);
    }
    same(await maxAbs(b.put(Tensor.zeros([0]))), 0, "of an empty tensor");
    for (const [what, cpu, onBackend] of reductionViews(b, 300)) {
      same(await maxAbs(onBackend), oracle.maxAbs(cpu), what);
    }
    // A NaN in item 1 only: item 0 stays finite.
    const items = values([2, 3, 50], 310);
    items.data[200] = NaN;
    const g = b.put(items);
    same(
      await maxAbs(g.slice(0, 0, 1)),
      oracle.maxAbs(items.slice(0, 0, 1)),
      "item 0",
    );
    same(await maxAbs(g.slice(0, 1, 2)), NaN, "item 1 (NaN)");
  },
});

/**
 * How far a float32 `dot` of n elements may be from the CPU oracle's: a sum of n float32 products
 * in float32, in any order, is within γ_n·Σ|x·y| of the exact sum (γ_n = n·u / (1 − n·u),
 * u = 2⁻²⁴); the oracle's float64 sum adds its own γ_n of 2⁻⁵³, twice (`absSum` is one too).
 */
export function dotBound(n: number, absSum: number): number {
  const gamma = (u: number) => (n * u) / (1 - n * u);
  return (gamma(2 ** -24) + 2 * gamma(2 ** -53)) * absSum;
}

cases.push({
  name:
    "dot() is within float32's summation bound of Σ x·y (strided views, items); NaN and ±∞ as IEEE",
  async run(b, k) {
    const { dot } = reductions(b, k);
    // From mathematics, exactly representable at every partial sum: Σ i·0.5 = n(n − 1)/4.
    for (const n of [1, 5, 1003, 4096]) {
      const x = Tensor.from(Array.from({ length: n }, (_, i) => i));
      const half = Tensor.from(new Array(n).fill(0.5));
      const actual = await dot(b.put(x), b.put(half));
      if (actual !== (n * (n - 1)) / 4) {
        throw new Error(`${b.name}: dot of 0…${n - 1} and 0.5 is ${actual}`);
      }
    }
    if (await dot(b.put(Tensor.zeros([0])), b.put(Tensor.zeros([0]))) !== 0) {
      throw new Error(`${b.name}: dot of empty tensors is not 0`);
    }
    const ys = reductionViews(b, 400);
    for (
      const [[what, x, gx], [, y, gy]] of reductionViews(b, 500).map((v, i) =>
        [v, ys[i]!] as const
      )
    ) {
      const expected = oracle.dot(x, y);
      const absSum = oracle.dot(abs(x), abs(y));
      for (
        const [pair, actual, want, sum] of [
          ["x·y", await dot(gx, gy), expected, absSum],
          ["x·x", await dot(gx, gx), oracle.dot(x, x), oracle.dot(x, x)],
        ] as const
      ) {
        const error = Math.abs(actual - want);
        if (!(error <= dotBound(x.size, sum))) {
          throw new Error(
            `${b.name}: dot ${pair} of ${what} is ${actual}, expected ${want} within ${
              dotBound(x.size, sum)
            }`,
          );
        }
      }
    }
    // Non-finite products, as float64 arithmetic gives them.
    const special: [number[], number[], number][] = [
      [[1, NaN, 2], [1, 1, 1], NaN],
      [[Infinity, 2], [0, 1], NaN], // ∞·0
      [[Infinity, 2], [-3, 1], -Infinity],
      [[-Infinity, 2], [-3, 1], Infinity],
      [[Infinity, -Infinity], [1, 1], NaN],
      [[Infinity, Infinity, 5], [2, 1e-40, -1], Infinity],
    ];
    for (const [x, y, expected] of special) {
      const actual = await dot(b.put(Tensor.from(x)), b.put(Tensor.from(y)));
      if (!Object.is(actual, expected)) {
        throw new Error(
          `${b.name}: dot of [${x}] and [${y}] is ${actual}, expected ${expected}`,
        );
      }
    }
  },
});

/** |t| element-wise, as a new contiguous CPU tensor. */
export function abs(t: Tensor): Tensor {
  return new Tensor(t.contiguous().toFloat32Array().map(Math.abs), t.shape);
}
