// WebGPU parity in headless Chromium (issue 16): tests/browser/parity_page.ts bundled for the
// browser and served with reference/ as files; every reference case (inverse and forward,
// thresholding included) stepped in the page on the default CPU kernels and on WebGPU (Dawn, on
// SwiftShader where there is no GPU). Each CPU step must equal diffusers' bit for bit, each
// WebGPU step the CPU's. A failure prints the page's console. Ignored where /usr/bin/chromium is
// missing, except under CI=true. Run alone with `deno task test:browser`.
import assert from "node:assert/strict";
import {
  bundle,
  ignore,
  launch,
  type OpenPage,
  openPage,
  serve,
} from "./_chromium.ts";
import type { ConformanceResult } from "./conformance_page.ts";
import type { PlainLoopsReport } from "./memory_page.ts";
import type { ParityReport } from "./parity_page.ts";

// What the page puts on globalThis.
interface ParityPage {
  runParity(names: string[]): Promise<ParityReport>;
  caseNames(): Promise<string[]>;
  runConformance(): Promise<ConformanceResult[]>;
  runPlainLoops(): PlainLoopsReport;
}

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>parity</title>
<script type="module" src="/page.js"></script>
`;

// One bundle, server and browser for both tests (the bundle takes seconds, Chromium too).
let setup:
  | Promise<{
    page: OpenPage;
    close: () => Promise<void>;
  }>
  | null = null;

function open() {
  setup ??= (async () => {
    const script = await bundle(new URL("./page.ts", import.meta.url));
    const server = serve({
      files: { "/": PAGE, "/page.js": script },
      dirs: { "/reference/": new URL("../../reference/", import.meta.url) },
    });
    const session = await launch();
    const page = await openPage(session, `${server.url}/`);
    await page.page.waitForFunction(
      "typeof globalThis.runParity === 'function'",
    );
    return {
      page,
      async close() {
        await session.close();
        await server.close();
      },
    };
  })();
  return setup;
}

Deno.test({
  name:
    "every kernel case of tests/_kernel_cases.ts in headless Chromium: CPU, WASM and WebGPU bit-exact to the CPU oracle (dot within float32's bound)",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { page } = await open();
    const results = await page.evaluate(
      () => (globalThis as unknown as ParityPage).runConformance(),
      undefined,
    );
    const failed = results.filter((r) => r.error !== null);
    const byBackend = new Map<string, number>();
    for (const r of results) {
      byBackend.set(r.backend, (byBackend.get(r.backend) ?? 0) + r.ms);
    }
    console.log(
      `Chromium kernel cases: ${
        results.length - failed.length
      }/${results.length} passed (${
        [...byBackend].map(([b, ms]) => `${b} ${(ms / 1000).toFixed(1)} s`)
          .join(", ")
      })`,
    );
    if (failed.length > 0) {
      console.log(`page console:\n${page.console.join("\n")}`);
    }
    assert.deepEqual(
      failed.map((r) => `${r.name} [${r.backend}]: ${r.error}`),
      [],
    );
    assert.ok(results.some((r) => r.backend === "webgpu"));
  },
});

Deno.test({
  name:
    "every reference case in headless Chromium: the CPU bit-exact to diffusers, WebGPU bit-exact to the CPU",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { page } = await open();
    {
      const names = await page.evaluate(
        () => (globalThis as unknown as ParityPage).caseNames(),
        undefined,
      );
      const total: ParityReport = {
        cases: 0,
        steps: 0,
        cpuExactVsDiffusers: 0,
        cpuComparedToDiffusers: 0,
        gpuExactVsCpu: 0,
        failures: [],
        adapter: "",
        ms: 0,
      };
      const SLICE = 16;
      for (let i = 0; i < names.length; i += SLICE) {
        const slice = names.slice(i, i + SLICE);
        const r = await page.evaluate(
          (n: string[]) => (globalThis as unknown as ParityPage).runParity(n),
          slice,
        );
        total.cases += r.cases;
        total.steps += r.steps;
        total.cpuExactVsDiffusers += r.cpuExactVsDiffusers;
        total.cpuComparedToDiffusers += r.cpuComparedToDiffusers;
        total.gpuExactVsCpu += r.gpuExactVsCpu;
        total.failures.push(...r.failures);
        total.adapter = r.adapter;
        total.ms += r.ms;
      }
      const adapter = await page.evaluate(async () => {
        const a = await navigator.gpu?.requestAdapter();
        return a
          ? `${a.info.vendor} ${a.info.architecture} ${a.info.description}`
            .trim()
          : "none";
      }, undefined);
      console.log(
        `Chromium (${adapter}): ${total.cases} cases, ${total.steps} steps in ${
          (total.ms / 1000).toFixed(1)
        } s; CPU ${total.cpuExactVsDiffusers}/${total.cpuComparedToDiffusers} bit-exact to diffusers; WebGPU ${total.gpuExactVsCpu}/${total.steps} bit-exact to the CPU`,
      );
      const summary = total.failures.slice(0, 20).join("\n");
      if (total.failures.length > 0) {
        console.log(`page console:\n${page.console.join("\n")}`);
      }
      assert.equal(total.cases, names.length);
      assert.equal(total.failures.length, 0, summary);
      assert.equal(total.cpuExactVsDiffusers, total.cpuComparedToDiffusers);
      assert.equal(total.gpuExactVsCpu, total.steps);
    }
  },
});

Deno.test({
  name:
    "README's plain loop on Chromium's main thread: WebAssembly kernels from the first call, the module's memory flat over 1,000 steps",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { page } = await open();
    const report = await page.evaluate(
      () => (globalThis as unknown as ParityPage).runPlainLoops(),
      undefined,
    );
    // Chromium compiles the embedded module synchronously on the main thread, so the page never
    // runs on the TypeScript fallback.
    assert.equal(report.firstDefault, "wasm");
    for (const loop of report.loops) {
      assert.equal(loop.kernels, "wasm", loop.name);
      assert.equal(loop.bytes.length, 1000, loop.name);
      assert.ok(loop.finite, loop.name);
      assert.equal(
        loop.bytes.at(-1),
        loop.bytes[49],
        `${loop.name}: memory grew ${loop.bytes[49]} → ${loop.bytes.at(-1)}`,
      );
      assert.equal(loop.resident, false, `${loop.name}: results in JS memory`);
    }
  },
});

Deno.test({
  name: "close headless Chromium",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await (await setup)?.close();
  },
});
