// Runs bench/cpu_bench.ts and reference/bench_diffusers.py case by case, one after the other
// (never at the same time), for several rounds, and prints ms/step, GB/s and the ratios against
// diffusers and the SIMD floor. The host's speed drifts over seconds on a shared machine, so
// each round runs a case in both implementations back to back, and a ratio is the median over
// rounds of the per-round medians (its range over rounds printed beside it).
//
//   eval "$(reference/env.sh DIFFUSERS_GIT HUB_GIT)"
//   deno task bench:compare [--rounds N] [--repeats N] [--case NAME] [--json]
//
// The judged column is "default": README's plain loop with the default kernels (see
// bench/cpu_bench.ts for every column). Without $REF_PYTHON (or with --no-diffusers) diffusers is
// skipped and only the ratios against the floor are printed.
import { parseArgs } from "node:util";
import { type BenchResult, CASES, median } from "./cpu_bench.ts";

const root = new URL("../", import.meta.url);
const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "3" },
    repeats: { type: "string" },
    case: { type: "string", multiple: true },
    json: { type: "boolean", default: false },
    "no-diffusers": { type: "boolean", default: false },
  },
});
const rounds = Number(args.rounds);
if (!Number.isInteger(rounds) || rounds < 1) {
  throw new RangeError(
    `'--rounds' must be a positive integer: current value is ${args.rounds}`,
  );
}
const cases = CASES.filter((c) =>
  !args.case?.length || args.case.includes(c.name)
);
if (cases.length === 0) {
  throw new RangeError(
    `'--case' must name one of ${
      CASES.map((c) => c.name).join(", ")
    }: current value is ${args.case}`,
  );
}
const repeats = args.repeats === undefined ? [] : ["--repeats", args.repeats];

async function jsonLines(
  command: string,
  commandArgs: string[],
): Promise<BenchResult[]> {
  const output = await new Deno.Command(command, {
    args: commandArgs,
    cwd: root,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) {
    throw new Error(
      `${command} ${commandArgs.join(" ")} failed with code ${output.code}`,
    );
  }
  return new TextDecoder().decode(output.stdout).split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as BenchResult);
}

const python = Deno.env.get("REF_PYTHON") ?? "python3";
// Per round, every result of both implementations.
const perRound: BenchResult[][] = [];
for (let round = 0; round < rounds; round++) {
  const results: BenchResult[] = [];
  for (const c of cases) {
    results.push(
      ...await jsonLines(Deno.execPath(), [
        "run",
        "--allow-read",
        "--allow-env",
        "bench/cpu_bench.ts",
        "--json",
        "--case",
        c.name,
        ...repeats,
      ]),
      ...(args["no-diffusers"] ? [] : await jsonLines(python, [
        "reference/bench_diffusers.py",
        "--case",
        c.name,
        ...repeats,
      ])),
    );
  }
  perRound.push(results);
}

// ms/step of one implementation on one case, per round.
function times(c: string, impl: string): number[] {
  return perRound.flatMap((results) =>
    results.filter((r) => r.case === c && r.impl === impl)
      .map((r) => r.ms_per_step)
  );
}

// The median over rounds of numerator/denominator, and its range.
function ratio(c: string, numerator: string, denominator: string) {
  const a = times(c, numerator);
  const b = times(c, denominator);
  const each = a.map((x, i) => x / b[i]!);
  return {
    median: median(each),
    min: Math.min(...each),
    max: Math.max(...each),
  };
}

if (args.json) {
  for (const results of perRound) {
    for (const r of results) console.log(JSON.stringify(r));
  }
} else {
  // Targets of issue 15 for the default path (README's plain loop): speed-up over diffusers, and
  // at most 2× the SIMD floor.
  const targets: Record<string, number> = {
    "1x4x64x64_order2": 15,
    "4x4x128x128_order3": 8,
    "4x3x256x256_thresholding": 40,
  };
  const impls = [
    "diffusers",
    "default",
    "plain-out",
    "resident",
    "resident-2pass",
    "ts",
    "floor",
    "floor+copies",
    "js-loop",
  ];
  console.log(
    `${rounds} round(s); ms/step, median over rounds\n${"case".padEnd(26)}${
      impls.map((i) => i.padStart(15)).join("")
    }`,
  );
  for (const { name } of cases) {
    console.log(
      `${name.padEnd(26)}${
        impls.map((i) => {
          const t = times(name, i);
          return (t.length ? median(t).toFixed(4) : "-").padStart(15);
        }).join("")
      }`,
    );
  }
  const show = (r: { median: number; min: number; max: number }, digits = 1) =>
    `${r.median.toFixed(digits)}× (${r.min.toFixed(digits)}–${
      r.max.toFixed(digits)
    })`;
  const columns: [string, (name: string) => string][] = [
    ["diffusers/default", (n) => show(ratio(n, "diffusers", "default"))],
    ["target", (n) => `≥${targets[n] ?? "?"}×`],
    ["default/floor ≤2", (n) => show(ratio(n, "default", "floor"), 2)],
    [
      "default/(floor+copies)",
      (n) => show(ratio(n, "default", "floor+copies"), 2),
    ],
    ["diffusers/resident", (n) => show(ratio(n, "diffusers", "resident"))],
    ["resident/floor", (n) => show(ratio(n, "resident", "floor"), 2)],
    ["ts/js-loop", (n) => show(ratio(n, "ts", "js-loop"), 2)],
  ];
  console.log(
    `\nratios, median over rounds (range)\n${"case".padEnd(26)}${
      columns.map(([h]) => h.padStart(24)).join("")
    }`,
  );
  for (const { name } of cases) {
    console.log(
      `${name.padEnd(26)}${
        columns.map(([, f]) => f(name).padStart(24)).join("")
      }`,
    );
  }
}
