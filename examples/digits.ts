/**
 * The main job on a real model: the tiny class-conditional digits UNet of
 * `reference/models/digits/` run through ONNX Runtime. Inverts held-out digits, reconstructs them,
 * edits them to other classes, prints the round-trip PSNR table and the edit scores, and writes a
 * PNG grid (original | inverted noise | reconstruction | edits to 0…9).
 *
 *   deno task demo [options]        (deno task demo --help lists them)
 *
 * Every option is checked before any work; a bad one prints one `error:` line and exits with 2.
 *
 * @module
 */
import { dirname } from "node:path";
import {
  intOption,
  numberOption,
  parseOptions,
  UsageError,
} from "../_cli_args.ts";
import { generate, type LoopProgress, TorchGenerator } from "../mod.ts";
import { readNpy } from "../npy.ts";

const LABELS = new URL(
  "../reference/models/digits/heldout_labels.npy",
  import.meta.url,
);
/** Inference steps are at most the model's training steps. */
const TRAIN_STEPS = 1000;
/** The round-trip table: orders 1–3, linspace and Karras, 10/25/50/100 steps. */
const TABLE_STEPS = [10, 25, 50, 100] as const;

const OPTIONS = {
  count: { type: "string" },
  edits: { type: "string" },
  rows: { type: "string" },
  steps: { type: "string" },
  guidance: { type: "string" },
  strength: { type: "string" },
  out: { type: "string", short: "o" },
  help: { type: "boolean", short: "h" },
} as const;

const available = (await readNpy(LABELS)).shape[0]!;

function help(): string {
  return `Usage: deno task demo [options]

Inverts held-out digits with DPMSolverMultistepInverseScheduler, reconstructs them with
DPMSolverMultistepScheduler (round-trip PSNR table: orders 1-3, linspace and Karras sigmas,
${
    TABLE_STEPS.join("/")
  } steps), edits some to the other nine classes (judged by a classifier), and
writes a PNG grid: 30 model runs through ONNX Runtime on the CPU (3.5 min of CPU time
measured on two shared cores).

Options:
  --count N       held-out digits in the round-trip table, 1 to ${available} (default 50)
  --edits N       digits edited to the 9 other classes, 1 to --count (default 20)
  --rows N        rows of the PNG grid, 1 to --count (default 6)
  --steps N       inference steps of the edits and the grid, 1 to ${TRAIN_STEPS} (default 50)
  --guidance G    classifier-free guidance scale of the edits, a number >= 1 (default 3)
  --strength S    partial-inversion strength of the edits, in (0, 1] (default 0.3)
  -o, --out FILE  where to write the PNG grid (default out/digits.png; the folder is created)
  -h, --help      this text
`;
}

interface DemoOptions {
  count: number;
  editCount: number;
  rows: number;
  steps: number;
  guidanceScale: number;
  strength: number;
  out: string;
}

/** Every option checked before any work; a bad one is a {@link UsageError}. */
async function options(args: readonly string[]): Promise<DemoOptions | null> {
  const { values } = parseOptions(args, OPTIONS, false);
  if (values.help) return null;
  const count = intOption("count", values.count, 50, 1, available);
  const fits = (flag: string, value: string | undefined, fallback: number) => {
    if (value === undefined && fallback > count) {
      throw new UsageError(
        `'--${flag}' defaults to ${fallback}, more than '--count ${count}': give '--${flag}' in [1, ${count}] or a larger '--count'`,
      );
    }
    return intOption(flag, value, fallback, 1, count);
  };
  const editCount = fits("edits", values.edits, 20);
  const rows = fits("rows", values.rows, 6);
  const steps = intOption("steps", values.steps, 50, 1, TRAIN_STEPS);
  const guidanceScale = numberOption("guidance", values.guidance, 3, {
    min: 1,
    max: Infinity,
  });
  const strength = numberOption("strength", values.strength, 0.3, {
    min: 0,
    max: 1,
    minOpen: true,
  });
  const out = values.out ?? "out/digits.png";
  const info = await Deno.stat(out).catch(() => null);
  if (info?.isDirectory) {
    throw new UsageError(
      `'--out' must be a file path: '${out}' is a folder`,
    );
  }
  return { count, editCount, rows, steps, guidanceScale, strength, out };
}

let parsed: DemoOptions | null;
try {
  parsed = await options(Deno.args);
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  console.error(
    `error: ${error.message} (run 'deno task demo --help' for the options)`,
  );
  Deno.exit(2);
}
if (parsed === null) {
  console.log(help());
  Deno.exit(0);
}
const { count, editCount, rows, steps, guidanceScale, strength, out } = parsed;

// ONNX Runtime (a native addon) loads only once the options are known to be good.
const {
  edit,
  firstItems,
  item,
  loadDigits,
  pngGrid,
  psnr,
  repeatItems,
  roundTrip,
  schedulers,
} = await import("./_digits.ts");
type Setting = import("./_digits.ts").Setting;

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
// Every model run of the demo: the 24 round trips of the table, the fresh-noise baseline, the
// full and partial edits, and the grid's round trip and two edits.
const RUNS = 2 * 3 * TABLE_STEPS.length + 1 + 2 + 3;
let run = 0;
const demoStarted = performance.now();
// A progress line on a terminal, through the loops' onProgress callback: the run out of all the
// demo's runs, what it is, and the step within it.
const progress = (what: string) => {
  run++;
  return (phase: "invert" | "generate", { step, steps }: LoopProgress) => {
    if (!tty) return;
    const seconds = ((performance.now() - demoStarted) / 1000).toFixed(0);
    Deno.stderr.writeSync(
      encoder.encode(
        `\r\x1b[2Krun ${run} of ${RUNS} (${seconds} s): ${what}, ${phase} step ${step}/${steps}`,
      ),
    );
  };
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
    TABLE_STEPS.map((n) => `${n} steps`.padStart(10)).join(""),
);
const started = performance.now();
for (const karras of [false, true]) {
  for (const order of [1, 2, 3] as const) {
    const cells: string[] = [];
    for (const n of TABLE_STEPS) {
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
  const fresh = progress("fresh noise baseline");
  const regenerated = await generate(
    digits.model,
    new TorchGenerator(0).randn(images.shape),
    forward,
    {
      numInferenceSteps: 50,
      classLabels: labels,
      onProgress: (p) => fresh("generate", p),
    },
  );
  clearLine();
  console.log(
    `fresh noise instead of the inverted one (order 2, linspace, 50 steps): ${
      psnr(images, regenerated).toFixed(1)
    } dB`,
  );
}
console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);

// Edits: each of the first `editCount` digits to each of the other nine classes.
const setting = { order: 2, karras: false, steps } as const;
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
  } edits; order 2, linspace, ${steps} steps, guidance ${guidanceScale}), judged by the classifier`,
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
const trip = await roundTrip(
  digits,
  few,
  fewLabels,
  setting,
  progress("grid round trip"),
);
const all = repeatItems(few, 10);
const allSources = Int32Array.from(
  { length: rows * 10 },
  (_, i) => fewLabels[Math.floor(i / 10)]!,
);
const allTargets = Int32Array.from({ length: rows * 10 }, (_, i) => i % 10);
const edits = await edit(
  digits,
  all,
  allSources,
  allTargets,
  { ...setting, guidanceScale, strength: 1 },
  progress("grid edits, full inversion"),
);
const partial = await edit(
  digits,
  all,
  allSources,
  allTargets,
  { ...setting, guidanceScale, strength },
  progress("grid edits, partial inversion"),
);
clearLine();
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
await Deno.mkdir(dirname(out), { recursive: true });
await Deno.writeFile(out, pngGrid(grid));
console.log(
  `\nwrote ${out} (${
    ((performance.now() - demoStarted) / 1000).toFixed(1)
  } s in all): per row original | inverted noise | reconstruction || edits to 0…9 (full inversion) || edits to 0…9 (partial, strength ${strength})`,
);
