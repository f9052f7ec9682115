// The web demo end to end in headless Chromium: the page (examples/web/, built with deno bundle
// and served on 127.0.0.1) inverts and reconstructs a held-out digit with ONNX Runtime Web, and
// its round-trip PSNR must be within 0.5 dB of the same run in Deno (ONNX Runtime's native CPU
// build, `roundTrip` of examples/_digits.ts: same digit, steps and scheduler). The default
// backend (WebGPU on a hardware adapter, WebAssembly on none or on a fallback adapter such as
// headless Chromium's SwiftShader), `?backend=wasm` and `?backend=webgpu` are run. A failure prints
// the page's console. Set WEB_DEMO_SCREENSHOT=<path.png> to save a screenshot after the run.
import assert from "node:assert/strict";
import { buildDemo, serveDemo } from "../../examples/web/serve.ts";
import { loadDigits, roundTrip } from "../../examples/_digits.ts";
import type { DemoState } from "../../examples/web/_demo.ts";
import { ignore, launch, withConsole } from "./_chromium.ts";

// Digits and steps compared beyond the page's first run (digit 0, 25 steps).
const EXTRA_RUNS: [number, number][] = Deno.env.get("WEB_DEMO_QUICK")
  ? []
  : [[7, 10], [13, 40]];

async function denoPsnr(index: number, steps: number): Promise<number> {
  const digits = await loadDigits();
  const image = digits.images.slice(0, index, index + 1);
  const label = digits.labels.subarray(index, index + 1);
  const order = digits.config.solver_order as 1 | 2 | 3;
  const result = await roundTrip(
    digits,
    image,
    label,
    { order, karras: false, steps },
    undefined,
    "sigma_min",
  );
  return result.psnr;
}

Deno.test({
  name: "web demo: round-trip PSNR in Chromium within 0.5 dB of Deno's",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await buildDemo();
    const server = serveDemo(0);
    const chromium = await launch();
    try {
      for (const query of ["", "?backend=wasm", "?backend=webgpu"]) {
        const page = await chromium.browser.newPage();
        const log: string[] = [];
        page.on("console", (m) => log.push(`[${m.type()}] ${m.text()}`));
        page.on("pageerror", (e) => log.push(`[pageerror] ${String(e)}`));
        page.on("requestfailed", (r) => log.push(`[requestfailed] ${r.url()}`));
        try {
          await page.setViewport({ width: 1000, height: 900 });
          await page.goto(server.url + query);
          await page.waitForFunction(
            () => {
              const s = (globalThis as unknown as { demo?: DemoState }).demo;
              return s && (s.status === "done" || s.status === "error");
            },
            { timeout: 180_000 },
          );
          const state = await page.evaluate(() =>
            (globalThis as unknown as { demo: DemoState }).demo
          ) as DemoState;
          assert.equal(state.status, "done", state.error);
          const expected = await denoPsnr(state.digit!, state.steps!);
          console.log(
            `page${
              query || " (default)"
            }: scheduler on ${state.backend}; digit ${state.digit}, ${state.steps} steps: ` +
              `PSNR ${state.psnr!.toFixed(3)} dB (Deno ${
                expected.toFixed(3)
              } dB); first result ${
                (state.firstResultMs! / 1000).toFixed(2)
              } s after navigation (ready at, ms: ${
                JSON.stringify(state.timings)
              }); edits read as ${state.edits!.join(" ")}`,
          );
          assert.ok(
            Math.abs(state.psnr! - expected) <= 0.5,
            `page PSNR ${state.psnr} dB, Deno ${expected} dB`,
          );
          // The page says where the scheduler runs: WebGPU on a hardware adapter, or when asked
          // for and an adapter exists.
          const adapter = await page.evaluate(async () => {
            const a = await (navigator as unknown as {
              gpu?: {
                requestAdapter(): Promise<
                  { info: { isFallbackAdapter?: boolean } } | null
                >;
              };
            }).gpu?.requestAdapter();
            return a ? { fallback: a.info.isFallbackAdapter === true } : null;
          });
          const onGpu = query === "?backend=webgpu"
            ? adapter !== null
            : query === "" && adapter !== null && !adapter.fallback;
          assert.equal(state.backend, onGpu ? "WebGPU" : "WebAssembly");
          const said = await page.$eval("#backend", (e) => e.textContent ?? "");
          assert.match(
            said,
            onGpu
              ? /^Scheduler steps run on WebGPU/
              : query === "?backend=wasm"
              ? /WebAssembly kernels \(asked with \?backend=wasm\)/
              : adapter?.fallback
              ? /^WebGPU here is a fallback adapter emulated on the CPU/
              : /^No WebGPU adapter here/,
          );
          for (const [index, steps] of EXTRA_RUNS) {
            const got = await page.evaluate(
              (i, n) =>
                (globalThis as unknown as {
                  demo: {
                    roundTrip(i: number, n: number): Promise<{ psnr: number }>;
                  };
                }).demo.roundTrip(i, n),
              index,
              steps,
            );
            const want = await denoPsnr(index, steps);
            console.log(
              `  digit ${index}, ${steps} steps: PSNR ${
                got.psnr.toFixed(3)
              } dB (Deno ${want.toFixed(3)} dB)`,
            );
            assert.ok(
              Math.abs(got.psnr - want) <= 0.5,
              `digit ${index}, ${steps} steps: page ${got.psnr} dB, Deno ${want} dB`,
            );
          }
          const screenshot = Deno.env.get("WEB_DEMO_SCREENSHOT");
          if (screenshot && !query) {
            await page.screenshot({ path: screenshot, fullPage: true });
          }
        } catch (error) {
          throw withConsole(error as Error, log);
        } finally {
          await page.close();
        }
      }
    } finally {
      await chromium.close();
      await server.shutdown();
    }
  },
});
