/**
 * The web demo's page load to first result (issue 16's target: ≤ 2 s): builds and serves
 * examples/web/, then loads the page `--runs` times in headless Chromium, each with a fresh
 * profile (nothing cached), and reports the wall time from navigation start to the first
 * reconstruction on screen, the page's own milestones, and the CPU time all Chromium processes
 * used meanwhile (from /proc; on a shared machine the wall time includes waiting for a core).
 *
 *   deno task bench:web [--runs 3] [--backend default|wasm] [--threads n] [--reload] [--trace]
 *
 * `--reload` times a second visit in the same profile (HTTP cache and compiled WebAssembly
 * warm) instead of a cold one. `--trace` records a Chromium trace of each timed load and prints
 * the time V8 spent compiling WebAssembly (ONNX Runtime Web's module) per kind of work; tracing
 * itself slows the page, so its first-result times are not the benchmark's.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { buildDemo, serveDemo } from "../examples/web/serve.ts";
import { CHROMIUM, launch } from "../tests/browser/_chromium.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    backend: { type: "string", default: "default" },
    threads: { type: "string" },
    reload: { type: "boolean", default: false },
    trace: { type: "boolean", default: false },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(
    `Cannot benchmark as '--runs' must be a positive integer: current value is ${values.runs}`,
  );
  Deno.exit(2);
}
if (values.backend !== "default" && values.backend !== "wasm") {
  console.error(
    `Cannot benchmark as '--backend' must be default or wasm: current value is ${values.backend}`,
  );
  Deno.exit(2);
}

/**
 * CPU seconds (user + system) of `root` and all its descendants, from /proc/<pid>/stat, per
 * Chromium process type (browser, renderer, gpu-process, …).
 */
function treeCpuByKind(root: number): Record<string, number> {
  // Deno reads /proc only with --allow-all, so `cat` reads it; 1/100 s ticks (USER_HZ).
  const { stdout } = new Deno.Command("sh", {
    args: [
      "-c",
      'for p in /proc/[0-9]*; do s=$(cat $p/stat 2>/dev/null) && t=$(tr "\\0" " " < $p/cmdline 2>/dev/null | grep -o -- "--type=[a-z-]*" | head -1) && echo "$s ${t:---type=browser}"; done',
    ],
    stdout: "piped",
  }).outputSync();
  const children = new Map<number, number[]>();
  const cpu = new Map<number, number>();
  const kind = new Map<number, string>();
  for (const line of new TextDecoder().decode(stdout).split("\n")) {
    if (!line) continue;
    const pid = Number(line.slice(0, line.indexOf(" ")));
    const fields = line.slice(line.lastIndexOf(")") + 2).split(" ");
    const parent = Number(fields[1]);
    cpu.set(pid, (Number(fields[11]) + Number(fields[12])) / 100);
    kind.set(pid, fields.at(-1)!.replace("--type=", ""));
    children.set(parent, [...(children.get(parent) ?? []), pid]);
  }
  const total: Record<string, number> = {};
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const k = kind.get(pid) ?? "other";
    total[k] = (total[k] ?? 0) + (cpu.get(pid) ?? 0);
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

/**
 * CPU milliseconds of V8's WebAssembly compilation work in a Chromium trace, per kind: lazy
 * baseline compilation on first call (`wasm.CompileLazy`, on the thread that calls), top-tier
 * recompilation of hot functions (`wasm.TopTierCompilation`, background threads) and streaming
 * validation (`wasm.ValidateFunctionsStreaming`).
 */
async function wasmCompileMs(file: string): Promise<Record<string, number>> {
  const kinds = [
    "wasm.CompileLazy",
    "wasm.TopTierCompilation",
    "wasm.ValidateFunctionsStreaming",
  ];
  const trace = JSON.parse(await Deno.readTextFile(file)) as {
    traceEvents: { name: string; ph: string; tdur?: number }[];
  };
  const total: Record<string, number> = Object.fromEntries(
    kinds.map((k) => [k, 0]),
  );
  for (const event of trace.traceEvents) {
    // `tdur` is the thread's CPU time in the event (`dur`, the wall time, counts waits for a core).
    if (event.ph === "X" && event.tdur && kinds.includes(event.name)) {
      total[event.name]! += event.tdur / 1000;
    }
  }
  return Object.fromEntries(
    Object.entries(total).map(([k, v]) => [k, Math.round(v)]),
  );
}

await buildDemo();
const server = serveDemo(0);
const load = () => Deno.loadavg()[0].toFixed(1);
console.log(
  `web demo first result: ${runs} ${
    values.reload ? "warm (second)" : "cold"
  } loads in ${CHROMIUM}, backend ${values.backend}, ${navigator.hardwareConcurrency} cores, load average ${load()}`,
);
try {
  for (let run = 1; run <= runs; run++) {
    const chromium = await launch();
    try {
      const page = await chromium.browser.newPage();
      const pid = chromium.browser.process()!.pid!;
      const url = server.url + "?" + new URLSearchParams({
        ...(values.backend === "wasm" ? { backend: "wasm" } : {}),
        ...(values.threads ? { threads: values.threads } : {}),
      });
      if (values.reload) {
        // A first visit fills the HTTP cache and V8's WebAssembly code cache; time the second.
        await page.goto(url);
        await page.waitForFunction(
          () =>
            (globalThis as unknown as { demo?: { status: string } }).demo
              ?.status === "done",
          { timeout: 300_000 },
        );
      }
      const before = treeCpuByKind(pid);
      const traceFile = values.trace
        ? await Deno.makeTempFile({ prefix: "web-trace-", suffix: ".json" })
        : undefined;
      if (traceFile) {
        await page.tracing.start({
          path: traceFile,
          categories: ["v8.wasm", "toplevel"],
        });
      }
      await page.goto(
        url,
      );
      await page.waitForFunction(
        () => {
          const s = (globalThis as unknown as {
            demo?: { firstResultMs?: number; status: string };
          }).demo;
          return s?.firstResultMs !== undefined || s?.status === "error";
        },
        { timeout: 300_000, polling: 20 },
      );
      const after = treeCpuByKind(pid);
      if (traceFile) {
        await page.tracing.stop();
        console.log(
          `run ${run} trace: V8 WebAssembly compilation (CPU ms, all threads) ${
            JSON.stringify(await wasmCompileMs(traceFile))
          }`,
        );
        await Deno.remove(traceFile);
      }
      const byKind = Object.fromEntries(
        Object.entries(after).map((
          [k, v],
        ) => [k, Math.round((v - (before[k] ?? 0)) * 100) / 100]),
      );
      const cpu = Object.values(byKind).reduce((a, b) => a + b, 0);
      const state = await page.evaluate(() =>
        (globalThis as unknown as {
          demo: {
            status: string;
            error?: string;
            backend: string;
            firstResultMs: number;
            steps: number;
            timings: Record<string, number>;
          };
        }).demo
      );
      if (state.status === "error") throw new Error(state.error);
      console.log(
        `run ${run}: first result ${
          (state.firstResultMs / 1000).toFixed(2)
        } s after navigation start (scheduler on ${state.backend}, ${state.steps} steps each way); ` +
          `Chromium CPU ${cpu.toFixed(2)} s ${
            JSON.stringify(byKind)
          }; milestones (ms) ${
            JSON.stringify(state.timings)
          }; load average ${load()}`,
      );
    } finally {
      await chromium.close();
    }
  }
} finally {
  await server.shutdown();
}
