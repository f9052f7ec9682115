// Memory of README's plain loop `x = scheduler.step(eps, t, x).prevSample` (model outputs in
// ordinary JS memory, no `out`, one synchronous loop that never yields to the event loop), per
// backend: 10,000 steps at 1×4×64×64 (order 2) and 3,000 at 4×4×128×128 (order 3), 50-step
// passes (bench/_memory_loop.ts). Each (backend, case) runs in its own process: a Deno process,
// or with `--browser` a fresh headless Chromium whose page runs the loop on its main thread. It
// samples RSS along the loop (after every pass in Deno; in Chromium the renderer processes', read
// with `ps` every 20 ms while the page runs) and prints it a third of the way through and at the
// end (the growth issue 15 bounds by max(4 sample sizes, 64 MB)), and the peak of the middle and
// of the last third: garbage collection makes RSS a sawtooth, so the verdict compares the peaks.
//
//   deno task bench:memory [--case NAME] [--backend wasm|ts] [--browser]
import { parseArgs } from "node:util";
import { BACKENDS, CASES, type LoopReport, runLoop } from "./_memory_loop.ts";

/** A loop's report and its RSS in bytes along it, as (fraction of the steps done, RSS). */
interface MemoryResult extends LoopReport {
  case: string;
  rss: [number, number][];
}

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    case: { type: "string" },
    backend: { type: "string" },
    browser: { type: "boolean", default: false },
    child: { type: "boolean", default: false },
  },
});
const cases = CASES.filter((c) => !args.case || c.name === args.case);
const backends = BACKENDS.filter((b) => !args.backend || b === args.backend);
if (cases.length === 0 || backends.length === 0) {
  throw new RangeError(
    `'--case' must be one of ${
      CASES.map((c) => c.name).join(", ")
    } and '--backend' one of ${
      BACKENDS.join(", ")
    }: current values are ${args.case}, ${args.backend}`,
  );
}

/** One row in a fresh Deno process (this script with `--child`). */
async function inDeno(name: string, backend: string): Promise<MemoryResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      new URL(import.meta.url).pathname,
      "--child",
      "--case",
      name,
      "--backend",
      backend,
    ],
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`${name} ${backend} failed`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

async function ps(args: string[]): Promise<string> {
  const { stdout } = await new Deno.Command("ps", { args, stderr: "null" })
    .output();
  return new TextDecoder().decode(stdout);
}

/** The pids of `root`'s descendants whose command line says `--type=renderer` (from `ps`). */
async function rendererPids(root: number): Promise<number[]> {
  const parent = new Map<number, number>();
  const renderer = new Set<number>();
  for (const line of (await ps(["-e", "-o", "pid=,ppid=,args="])).split("\n")) {
    const [, pid, ppid, cmd] = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line) ?? [];
    if (!pid) continue;
    parent.set(Number(pid), Number(ppid));
    if (cmd!.includes("--type=renderer")) renderer.add(Number(pid));
  }
  const descends = (pid: number): boolean => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) return true;
    }
    return false;
  };
  return [...renderer].filter(descends);
}

/** The summed resident set of `pids`, in bytes. */
async function rssOf(pids: number[]): Promise<number> {
  const out = await ps(["-o", "rss=", "-p", pids.join(",")]);
  return out.split("\n").filter(Boolean).reduce(
    (sum, kb) => sum + 1024 * Number(kb),
    0,
  );
}

/** One row in a fresh headless Chromium: the page runs the loop, this process samples RSS. */
async function inChromium(
  name: string,
  backend: string,
): Promise<MemoryResult> {
  const { bundle, launch, openPage, serve } = await import(
    "../tests/browser/_chromium.ts"
  );
  const script = await bundle(new URL("./_memory_page.ts", import.meta.url));
  const server = serve({
    files: {
      "/":
        `<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>`,
      "/page.js": script,
    },
  });
  const session = await launch();
  try {
    const page = await openPage(session, `${server.url}/`);
    await page.page.waitForFunction(
      "typeof globalThis.memoryLoop === 'function'",
    );
    const pids = await rendererPids(session.browser.process()!.pid!);
    const samples: [number, number][] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push([Date.now(), await rssOf(pids)]);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const report = await page.evaluate(
      ([n, b]) =>
        (globalThis as unknown as {
          memoryLoop: (n: string, b: string) => LoopReport & {
            passes: [number, number][];
          };
        }).memoryLoop(n, b),
      [name, backend] as const,
    );
    sampling = false;
    await sampler;
    // Place each sample along the loop by the pass it fell in.
    const { passes, ...rest } = report;
    const [start, end] = [passes[0]![1], passes.at(-1)![1]];
    const rss = samples.filter(([t]) => t >= start && t <= end).map(
      ([t, bytes]): [number, number] => {
        const j = passes.findIndex(([, at]) => at >= t);
        return [passes[Math.max(j, 0)]![0] / report.steps, bytes];
      },
    );
    return { ...rest, case: name, rss };
  } finally {
    await session.close();
    await server.close();
  }
}

if (args.child) {
  const c = cases[0]!;
  const rss: [number, number][] = [];
  const report = runLoop(
    c.name,
    backends[0]!,
    (steps) => rss.push([steps / c.steps, Deno.memoryUsage().rss]),
  );
  console.log(JSON.stringify({ ...report, case: c.name, rss }));
} else {
  const host = args.browser ? "chromium" : "deno";
  console.log(
    "host      case                  backend  steps  RSS@1/3 MB  RSS@end MB  growth MB  peak 2nd/3 MB  peak last/3 MB  bound MB  wasm MB  ms/step",
  );
  const mb = (b: number) => (b / 1e6).toFixed(1);
  for (const c of cases) {
    for (const backend of backends) {
      const r = args.browser
        ? await inChromium(c.name, backend)
        : await inDeno(c.name, backend);
      const near = (f: number) =>
        r.rss.reduce((a, b) =>
          Math.abs(b[0] - f) < Math.abs(a[0] - f) ? b : a
        )[1];
      const peak = (from: number, to: number) =>
        Math.max(
          ...r.rss.filter(([f]) => f > from && f <= to).map(([, b]) => b),
        );
      const [middle, last] = [peak(1 / 3, 2 / 3), peak(2 / 3, 1)];
      const bound = Math.max(4 * 4 * r.elements, 64e6);
      console.log(
        `${host.padEnd(10)}${r.case.padEnd(22)}${r.backend.padEnd(9)}${
          String(r.steps).padStart(5)
        }${mb(near(1 / 3)).padStart(12)}${mb(near(1)).padStart(12)}${
          mb(near(1) - near(1 / 3)).padStart(11)
        }${mb(middle).padStart(15)}${mb(last).padStart(16)}${
          mb(bound).padStart(10)
        }${mb(r.wasmBytes).padStart(9)}${r.msPerStep.toFixed(3).padStart(9)}  ${
          last - middle <= bound ? "plateau" : "GROWS"
        }`,
      );
    }
  }
}
