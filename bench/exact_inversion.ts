/**
 * Exact inversion on the digits model (issue 17's table): per cell, the round-trip PSNR of the
 * plain inversion and of the exact one (true class, PSNR pooled over the held-out digits, peak to
 * peak 2, regeneration with the ordinary `generate` down to sigma(t = 0)), with the model calls of
 * each (plain: one per step; exact: the median over the digits of the calls made while each digit
 * was unsolved, and the batch's total); then the class edits from exactly inverted noise judged by
 * the classifier, plain against exact.
 *
 *   deno task bench:exact [--count 50] [--edits 20] [--cap 10] [--tolerance 1e-6] [--steps 25,50,10] [--orders 1,2,3]
 *     [--sigmas linspace,karras] [--only TEXT] [--no-cells] [--no-edits] [--no-exact] [--json out.json]
 *
 * `--cap` bounds the exact inversion's model calls at cap × steps per cell (the issue's cost
 * target is 8×); `--tolerance` is the exact inversion's per-step residual target; `--only` keeps
 * the cells whose label contains the text.
 *
 * The `1-ulp dB` column is the ceiling float32 puts on any inversion of the cell: the PSNR between
 * the regeneration from the exactly inverted noise and the regeneration from the same noise with
 * every element moved to a neighbouring float32 (one ulp, random direction). Noise stored in
 * float32 is up to half an ulp from any exact solution, so where the forward pass amplifies a
 * one-ulp change to about the target's error, no solver reaches the target. `--no-exact` runs
 * only the plain inversions and takes the column from their noise (the forward pass from a
 * plain inversion's noise, a cheaper and, where the guided sampler must be steered to an atypical
 * digit, more forgiving estimate).
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  firstItems,
  loadDigits,
  psnr,
  repeatItems,
  schedulers,
} from "../examples/_digits.ts";
import { type ExactInversionResult, generate, invert, Tensor } from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    count: { type: "string", default: "50" },
    edits: { type: "string", default: "20" },
    cap: { type: "string", default: "10" },
    tolerance: { type: "string", default: "1e-6" },
    only: { type: "string" },
    json: { type: "string" },
    "no-edits": { type: "boolean", default: false },
    "no-cells": { type: "boolean", default: false },
    "no-exact": { type: "boolean", default: false },
    steps: { type: "string", default: "25,50,10" },
    orders: { type: "string", default: "1,2,3" },
    sigmas: { type: "string", default: "linspace,karras" },
  },
});
const count = Number(values.count);
const editCount = Number(values.edits);
const cap = Number(values.cap);
const tolerance = Number(values.tolerance);
for (const [name, value] of [["count", count], ["edits", editCount]] as const) {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot run the benchmark as '--${name}' must be a positive integer: current value is ${value}`,
    );
  }
}
if (!(tolerance > 0)) {
  throw new RangeError(
    `Cannot run the benchmark as '--tolerance' must be positive: current value is ${values.tolerance}`,
  );
}
if (!(cap >= 1)) {
  throw new RangeError(
    `Cannot run the benchmark as '--cap' must be at least 1: current value is ${cap}`,
  );
}

const digits = await loadDigits();
const images = firstItems(digits.images, count);
const labels = digits.labels.subarray(0, count);

interface Cell {
  order: 1 | 2 | 3;
  karras: boolean;
  steps: number;
  guidance: number;
}
const list = (text: string) => text.split(",").map((v) => v.trim());
const cells: Cell[] = [];
for (const steps of list(values.steps).map(Number)) {
  for (const order of list(values.orders).map(Number) as (1 | 2 | 3)[]) {
    if (order === 3 && steps === 10) continue;
    for (const karras of list(values.sigmas).map((s) => s === "karras")) {
      for (const guidance of [1, 3]) {
        cells.push({ order, karras, steps, guidance });
      }
    }
  }
}
const label = (c: Cell) =>
  `order ${c.order} ${
    c.karras ? "Karras" : "linspace"
  } ${c.steps} steps guidance ${c.guidance}`;
const target = (c: Cell) =>
  c.steps === 10 ? 80 : c.order === 3 || c.guidance > 1 ? 90 : 100;

/** `t` with every element moved to a neighbouring float32 (direction from a fixed LCG). */
function ulpNeighbour(t: Tensor): Tensor {
  const values = t.toFloat32Array().slice();
  const bits = new Uint32Array(values.buffer);
  let seed = 1;
  for (let i = 0; i < bits.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const up = (seed & 0x10000) !== 0;
    // ±0 has no smaller magnitude: step to the smallest subnormal of either sign.
    if ((bits[i]! & 0x7fffffff) === 0) bits[i] = up ? 1 : 0x80000001;
    else bits[i] = bits[i]! + (up ? 1 : -1);
  }
  return new Tensor(values, t.shape);
}

function median(values: ArrayLike<number>): number {
  const sorted = Array.from(values).sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

console.log(
  `exact inversion on ${count} held-out digits (true class; regenerate with generate() down to sigma(t = 0)); cap ${cap}× calls, tolerance ${tolerance}`,
);
console.log(
  "cell                                         target  plain dB  calls  exact dB  median calls (×)  batch calls  max residual  1-ulp dB  s",
);
const rows: Record<string, unknown>[] = [];
for (const cell of values["no-cells"] ? [] : cells) {
  if (values.only && !label(cell).includes(values.only)) continue;
  const started = performance.now();
  const { inverse, forward } = schedulers(digits.config, cell, "sigma_min");
  const loop = {
    numInferenceSteps: cell.steps,
    classLabels: labels,
    guidanceScale: cell.guidance,
  };
  const plain = await invert(digits.model, images, inverse, loop);
  const plainBack = await generate(digits.model, plain.sample, forward, {
    ...loop,
    startSigma: plain.sigma,
  });
  const exact: ExactInversionResult | undefined = values["no-exact"]
    ? undefined
    : await invert(digits.model, images, inverse, {
      ...loop,
      exact: { forward, tolerance, maxModelCalls: cap * cell.steps },
    });
  const inverted = exact ?? plain;
  const back = exact
    ? await generate(digits.model, exact.sample, forward, {
      ...loop,
      startSigma: exact.sigma,
    })
    : plainBack;
  const neighbourBack = await generate(
    digits.model,
    ulpNeighbour(inverted.sample),
    forward,
    { ...loop, startSigma: inverted.sigma },
  );
  const row = {
    cell: label(cell),
    target: target(cell),
    plainPsnr: psnr(images, plainBack),
    plainCalls: plain.modelCalls,
    ...(exact && {
      exactPsnr: psnr(images, back),
      medianCalls: median(exact.itemModelCalls),
      batchCalls: exact.modelCalls,
      maxResidual: Math.max(...exact.residuals),
    }),
    ulpPsnr: psnr(back, neighbourBack),
    seconds: (performance.now() - started) / 1000,
  };
  rows.push(row);
  console.log(
    `${row.cell.padEnd(45)}${String(row.target).padStart(6)}${
      row.plainPsnr.toFixed(1).padStart(10)
    }${String(row.plainCalls).padStart(7)}${
      (row.exactPsnr?.toFixed(1) ?? "-").padStart(10)
    }${
      (row.medianCalls === undefined
        ? "-"
        : `${row.medianCalls} (${
          (row.medianCalls / row.plainCalls).toFixed(1)
        }×)`).padStart(18)
    }${String(row.batchCalls ?? "-").padStart(13)}${
      (row.maxResidual?.toExponential(1) ?? "-").padStart(14)
    }${row.ulpPsnr.toFixed(1).padStart(10)}${
      row.seconds.toFixed(0).padStart(5)
    }`,
  );
}

// Edits: each of the first `editCount` digits, inverted with its own class (no guidance) as
// the demo does, regenerated to each of the 9 other classes with guidance 3 (order 2, linspace,
// 50 steps).
const edits: Record<string, unknown>[] = [];
if (!values["no-edits"]) {
  const setting = { order: 2, karras: false } as const;
  const steps = 50;
  const few = firstItems(images, editCount);
  const fewLabels = labels.subarray(0, editCount);
  const sources = Int32Array.from(
    { length: editCount * 9 },
    (_, i) => fewLabels[Math.floor(i / 9)]!,
  );
  const targets = Int32Array.from(
    { length: editCount * 9 },
    (_, i) => (sources[i]! + 1 + (i % 9)) % 10,
  );
  console.log(
    `\nedits of ${editCount} digits to the 9 other classes (order 2, linspace, ${steps} steps, guidance 3), judged by the classifier`,
  );
  console.log(
    "inversion   read as target   PSNR to original   inversion calls",
  );
  for (const exact of [false, true]) {
    const { inverse, forward } = schedulers(
      digits.config,
      setting,
      "sigma_min",
    );
    const loop = { numInferenceSteps: steps, classLabels: fewLabels };
    const inverted = exact
      ? await invert(digits.model, few, inverse, {
        ...loop,
        exact: { forward, tolerance, maxModelCalls: cap * steps },
      })
      : await invert(digits.model, few, inverse, loop);
    const noise = repeatItems(inverted.sample, 9);
    const edited = await generate(digits.model, noise, forward, {
      numInferenceSteps: steps,
      classLabels: targets,
      guidanceScale: 3,
      startSigma: inverted.sigma,
    });
    const read = await digits.classify(edited);
    const hits = read.reduce((n, c, i) => n + (c === targets[i] ? 1 : 0), 0);
    const original = repeatItems(few, 9);
    const row = {
      inversion: exact ? "exact" : "plain",
      accuracy: hits / read.length,
      psnr: psnr(original, edited),
      calls: inverted.modelCalls,
    };
    edits.push(row);
    console.log(
      `${row.inversion.padEnd(12)}${
        `${(100 * row.accuracy).toFixed(1)}%`.padStart(14)
      }${`${row.psnr.toFixed(1)} dB`.padStart(19)}${
        String(row.calls).padStart(18)
      }`,
    );
  }
}
if (values.json) {
  await Deno.writeTextFile(
    values.json,
    JSON.stringify({ count, cap, rows, edits }, null, 1),
  );
}
