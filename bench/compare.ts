// Runs bench/cpu_bench.ts and reference/bench_diffusers.py one after the other (never at the
// same time) and prints ms/step, GB/s and the ratios against diffusers and the SIMD floor.
//
//   eval "$(/work/shared/tools/diffusers-env.sh DIFFUSERS_GIT_DIR HF_HUB_GIT_DIR)"
//   deno task bench:compare [--repeats N] [--json]
import type { BenchResult } from "./cpu_bench.ts";

const root = new URL("../", import.meta.url);
const passThrough = Deno.args.filter((a) => a !== "--json");

async function jsonLines(
  command: string,
  args: string[],
): Promise<BenchResult[]> {
  const output = await new Deno.Command(command, {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed with code ${output.code}`,
    );
  }
  return new TextDecoder().decode(output.stdout).split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as BenchResult);
}

const ours = await jsonLines(Deno.execPath(), [
  "run",
  "--allow-read",
  "--allow-env",
  "bench/cpu_bench.ts",
  "--json",
  ...passThrough,
]);
const python = Deno.env.get("REF_PYTHON") ?? "python3";
const theirs = await jsonLines(python, [
  "reference/bench_diffusers.py",
  ...passThrough,
]);
const all = [...ours, ...theirs];

// Targets of issue 9: speed-up over diffusers per case.
const targets: Record<string, number> = {
  "1x4x64x64_order2": 20,
  "4x4x128x128_order3": 10,
  "4x3x256x256_thresholding": 30,
};

if (Deno.args.includes("--json")) {
  for (const r of all) console.log(JSON.stringify(r));
} else {
  const cases = [...new Set(all.map((r) => r.case))];
  const impls = [
    "diffusers",
    "ts",
    "wasm",
    "wasm-copy-in",
    "wasm-2pass",
    "floor",
    "js-loop",
  ];
  console.log(
    `${"case".padEnd(26)}${
      impls.map((i) => i.padStart(13)).join("")
    }   (ms/step)`,
  );
  for (const c of cases) {
    const ms = (impl: string) =>
      all.find((r) => r.case === c && r.impl === impl)?.ms_per_step;
    console.log(
      `${c.padEnd(26)}${
        impls.map((i) => (ms(i)?.toFixed(4) ?? "-").padStart(13)).join("")
      }`,
    );
  }
  console.log("");
  console.log(
    `${"case".padEnd(26)}${"wasm GB/s".padStart(11)}${
      "floor GB/s".padStart(12)
    }${"diffusers/wasm".padStart(16)}${"target".padStart(8)}${
      "wasm/floor".padStart(12)
    }${"diffusers/ts".padStart(14)}`,
  );
  for (const c of cases) {
    const get = (impl: string) =>
      all.find((r) => r.case === c && r.impl === impl);
    const [d, w, f, t] = ["diffusers", "wasm", "floor", "ts"].map(get);
    if (!d || !w || !f || !t) continue;
    console.log(
      `${c.padEnd(26)}${w.gb_per_s.toFixed(1).padStart(11)}${
        f.gb_per_s.toFixed(1).padStart(12)
      }${`${(d.ms_per_step / w.ms_per_step).toFixed(1)}×`.padStart(16)}${
        `≥${targets[c] ?? "?"}×`.padStart(8)
      }${`${(w.ms_per_step / f.ms_per_step).toFixed(2)}×`.padStart(12)}${
        `${(d.ms_per_step / t.ms_per_step).toFixed(2)}×`.padStart(14)
      }`,
    );
  }
}
