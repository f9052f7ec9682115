/**
 * The main job on a real model: the tiny class-conditional digits UNet of
 * `reference/models/digits/` run through ONNX Runtime. Inverts held-out digits, reconstructs them,
 * edits them to other classes, prints the round-trip PSNR table and the edit scores, and writes a
 * PNG grid (original | inverted noise | reconstruction | edits to 0…9).
 *
 *   deno task demo [--count 50] [--edits 20] [--rows 6] [--guidance 3] [--strength 0.3] [--out examples/digits.png] [--exact]
 *
 * `--exact` inverts exactly (issue 17) for the edits and the grid, and prints the exact round
 * trip at the edit setting next to the plain table.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  edit,
  firstItems,
  item,
  loadDigits,
  pngGrid,
  psnr,
  repeatItems,
  roundTrip,
  schedulers,
  type Setting,
} from "./_digits.ts";
import { generate, type LoopProgress, TorchGenerator } from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    count: { type: "string", default: "50" },
    edits: { type: "string", default: "20" },
    rows: { type: "string", default: "6" },
    guidance: { type: "string", default: "3" },
    strength: { type: "string", default: "0.3" },
    steps: { type: "string", default: "50" },
    out: { type: "string", default: "examples/digits.png" },
    exact: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "usage: deno task demo [--count 50] [--edits 20] [--rows 6] [--steps 50] [--guidance 3] [--strength 0.3] [--out examples/digits.png] [--exact]",
  );
  Deno.exit(0);
}
const count = Number(values.count);
const editCount = Number(values.edits);
const rows = Number(values.rows);
const steps = Number(values.steps);
const guidanceScale = Number(values.guidance);
const strength = Number(values.strength);

const digits = await loadDigits();
const images = firstItems(digits.images, count);
const labels = digits.labels.subarray(0, count);
console.log(
  `digits model: ${count} held-out digits, ${
    digits.images.shape[0]
  } available; ONNX Runtime on the CPU`,
);

const tty = Deno.stderr.isTerminal();
const encoder = new TextEncoder();
// A progress line on a terminal, through the loops' onProgress callback.
const progress = (what: string) =>
(
  phase: "invert" | "generate",
  { step, steps }: LoopProgress,
) => {
  if (!tty) return;
  Deno.stderr.writeSync(
    encoder.encode(`\r${what}: ${phase} step ${step}/${steps}   `),
  );
};
const clearLine = () =>
  tty && Deno.stderr.writeSync(encoder.encode("\r\x1b[2K"));

// Round trips: invert with the true class, no guidance, regenerate with the same setting.
console.log(
  "\nround trip PSNR (dB) on the held-out digits, true class, no guidance: invert from t = 0, then\n" +
    "regenerate down to sigma(t = 0) (final_sigmas_type sigma_min)",
);
console.log(
  "order  sigmas     " +
    [10, 25, 50, 100].map((n) => `${n} steps`.padStart(10)).join(""),
);
const started = performance.now();
for (const karras of [false, true]) {
  for (const order of [1, 2, 3] as const) {
    const cells: string[] = [];
    for (const n of [10, 25, 50, 100]) {
      const setting: Setting = { order, karras, steps: n };
      const { psnr } = await roundTrip(
        digits,
        images,
        labels,
        setting,
        progress(
          `order ${order}, ${karras ? "Karras" : "linspace"}, ${n} steps`,
        ),
      );
      cells.push(psnr.toFixed(1).padStart(10));
    }
    clearLine();
    console.log(
      `${String(order).padStart(5)}  ${
        (karras ? "Karras" : "linspace").padEnd(9)
      }${cells.join("")}`,
    );
  }
}
clearLine();
{
  // Baseline: regenerating from fresh noise instead of the inverted one.
  const { forward } = schedulers(digits.config, { order: 2, karras: false });
  const fresh = await generate(
    digits.model,
    new TorchGenerator(0).randn(images.shape),
    forward,
    { numInferenceSteps: 50, classLabels: labels },
  );
  console.log(
    `fresh noise instead of the inverted one (order 2, linspace, 50 steps): ${
      psnr(images, fresh).toFixed(1)
    } dB`,
  );
}
console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);

// Edits: each of the first `editCount` digits to each of the other nine classes.
const setting = {
  order: 2,
  karras: false,
  steps,
  exact: values.exact,
} as const;
if (values.exact) {
  const plain = await roundTrip(digits, images, labels, {
    ...setting,
    exact: false,
  });
  const exact = await roundTrip(digits, images, labels, setting);
  console.log(
    `exact inversion (order 2, linspace, ${steps} steps, no guidance): ${
      exact.psnr.toFixed(1)
    } dB in ${exact.modelCalls} model calls (plain: ${
      plain.psnr.toFixed(1)
    } dB in ${plain.modelCalls})`,
  );
}
const repeated = repeatItems(firstItems(images, editCount), 9);
const sources = Int32Array.from(
  { length: editCount * 9 },
  (_, i) => labels[Math.floor(i / 9)]!,
);
const targets = Int32Array.from(
  { length: editCount * 9 },
  (_, i) => (sources[i]! + 1 + (i % 9)) % 10,
);
console.log(
  `\nedits of ${editCount} digits to the 9 other classes (${
    editCount * 9
  } edits; order 2, linspace, ${steps} steps, guidance ${guidanceScale}${
    values.exact ? ", exact inversion" : ""
  }), judged by the classifier`,
);
const originals = await digits.classify(images);
console.log(
  `(the classifier reads ${
    originals.reduce((n, c, i) => n + (c === labels[i] ? 1 : 0), 0)
  } of the ${count} originals as their class)`,
);
console.log("inversion          read as target   PSNR to original");
for (const s of [1, strength]) {
  const edited = await edit(
    digits,
    repeated,
    sources,
    targets,
    { ...setting, guidanceScale, strength: s },
    progress(s === 1 ? "full inversion edits" : "partial inversion edits"),
  );
  clearLine();
  const read = await digits.classify(edited);
  const hits = read.reduce((n, c, i) => n + (c === targets[i] ? 1 : 0), 0);
  console.log(
    `${(s === 1 ? "full" : `partial ${s}`).padEnd(19)}${
      `${(100 * hits / read.length).toFixed(1)}%`.padStart(15)
    }${`${psnr(repeated, edited).toFixed(1)} dB`.padStart(19)}`,
  );
}

// The grid: original | inverted noise | reconstruction | edits to 0…9 (full inversion).
const few = firstItems(images, rows);
const fewLabels = labels.subarray(0, rows);
const trip = await roundTrip(digits, few, fewLabels, setting);
const all = repeatItems(few, 10);
const allSources = Int32Array.from(
  { length: rows * 10 },
  (_, i) => fewLabels[Math.floor(i / 10)]!,
);
const allTargets = Int32Array.from({ length: rows * 10 }, (_, i) => i % 10);
const edits = await edit(digits, all, allSources, allTargets, {
  ...setting,
  guidanceScale,
  strength: 1,
});
const partial = await edit(digits, all, allSources, allTargets, {
  ...setting,
  guidanceScale,
  strength,
});
const grid = [];
for (let r = 0; r < rows; r++) {
  const head = [
    { image: item(few, r) },
    { image: item(trip.noise, r), range: [-3, 3] as [number, number] },
    { image: item(trip.reconstruction, r) },
    null,
  ];
  grid.push([
    ...head,
    ...Array.from({ length: 10 }, (_, c) => ({
      image: item(edits, r * 10 + c),
    })),
    null,
    ...Array.from({ length: 10 }, (_, c) => ({
      image: item(partial, r * 10 + c),
    })),
  ]);
}
await Deno.writeFile(values.out, pngGrid(grid));
console.log(
  `\nwrote ${values.out}: per row original | inverted noise | reconstruction || edits to 0…9 (full inversion) || edits to 0…9 (partial, strength ${strength})`,
);
