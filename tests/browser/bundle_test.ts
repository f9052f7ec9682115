// The main entry bundles for browsers with `deno bundle` and with esbuild (ES modules, and an IIFE
// for ES2020), stays within 100 KB gzip, and its IIFE loads and runs with no `Deno` in scope:
// no top-level await, nothing Deno-only at import time. Needs --allow-read --allow-write
// --allow-run --allow-env (esbuild's binary).
import assert from "node:assert/strict";
import * as esbuild from "npm:esbuild@0.28.2";
import { DPMSolverMultistepInverseScheduler } from "../../mod.ts";

const MOD = new URL("../../mod.ts", import.meta.url).pathname;
const LIMIT_GZIP = 100 * 1024;

async function gzipSize(code: string): Promise<number> {
  const stream = new Blob([code]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return (await new Response(stream).arrayBuffer()).byteLength;
}

Deno.test("deno bundle --platform browser bundles mod.ts within 100 KB gzip", async () => {
  const out = await Deno.makeTempFile({ suffix: ".js" });
  try {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform", "browser", "-o", out, MOD],
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const text = await Deno.readTextFile(out);
    const gzip = await gzipSize(text);
    console.log(
      `deno bundle mod.ts: ${text.length} bytes, ${gzip} bytes gzip`,
    );
    assert.ok(gzip <= LIMIT_GZIP, `${gzip} bytes gzip`);
    assert.doesNotMatch(text, /@stdlib|onnxruntime/);
  } finally {
    await Deno.remove(out);
  }
});

Deno.test({
  name:
    "esbuild bundles mod.ts as ESM and as an ES2020 IIFE that runs without Deno",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    try {
      for (
        const options of [
          { format: "esm", target: "esnext" },
          { format: "esm", target: "es2020" },
          { format: "iife", target: "es2020", globalName: "dpmsolver" },
        ] as const
      ) {
        const result = await esbuild.build({
          entryPoints: [MOD],
          bundle: true,
          platform: "browser",
          write: false,
          logLevel: "silent",
          ...options,
        });
        assert.deepEqual(result.errors, []);
        const text = result.outputFiles[0]!.text;
        const gzip = await gzipSize(text);
        console.log(
          `esbuild ${options.format} ${options.target}: ${text.length} bytes, ${gzip} bytes gzip`,
        );
        assert.ok(gzip <= LIMIT_GZIP, `${gzip} bytes gzip`);
        if (options.format !== "iife") continue;
        // Evaluate the IIFE with `Deno` shadowed by undefined: loading must not touch it.
        const lib = new Function("Deno", `${text}\nreturn dpmsolver;`)(
          undefined,
        ) as typeof import("../../mod.ts");
        const config = {
          use_beta_sigmas: true,
          beta_schedule: "scaled_linear",
          beta_start: 0.00085,
          beta_end: 0.012,
        } as const;
        const bundled = new lib.DPMSolverMultistepInverseScheduler(config);
        const here = new DPMSolverMultistepInverseScheduler(config);
        bundled.setTimesteps(20);
        here.setTimesteps(20);
        assert.deepEqual(bundled.sigmas, here.sigmas);
        assert.deepEqual(bundled.timesteps, here.timesteps);
      }
    } finally {
      await esbuild.stop();
    }
  },
});
