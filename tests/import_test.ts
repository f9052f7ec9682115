// The package as a user outside this repository imports it: a program in a temporary folder
// (no deno.json, so none of this repository's configuration applies) imports both entries by
// absolute path and runs with `deno run -A`. Library code must therefore carry full `npm:`
// specifiers or no dependency at all.
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);
const mod = new URL("mod.ts", root).href;
const onnx = new URL("onnx.ts", root).href;
const unet = new URL("reference/models/digits/unet.onnx", root).pathname;

async function runOutside(
  source: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "dpmsolver-outside-" });
  try {
    await Deno.writeTextFile(`${dir}/main.ts`, source);
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts"],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code, stdout: text(stdout), stderr: text(stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("mod.ts imported by path from outside the repository runs a scheduler, beta sigmas included", async () => {
  const { code, stdout, stderr } = await runOutside(`
import { DPMSolverMultistepInverseScheduler, Tensor } from ${
    JSON.stringify(mod)
  };
const plain = new DPMSolverMultistepInverseScheduler();
plain.setTimesteps(5);
const x = plain.step(Tensor.zeros([2]), plain.timesteps[0]!, Tensor.from([0.5, -0.5])).prevSample;
const beta = new DPMSolverMultistepInverseScheduler({ use_beta_sigmas: true });
beta.setTimesteps(5);
console.log(JSON.stringify({
  plain: Array.from(plain.timesteps),
  x: Array.from(x.toFloat32Array()),
  beta: beta.sigmas.length,
}));
`);
  assert.equal(code, 0, stderr);
  const result = JSON.parse(stdout);
  // diffusers' inverse linspace schedule: round(linspace(0, 999, 6))[:-1] = 0, 200, 400, 599, 799.
  assert.deepEqual(
    result.plain,
    Array.from({ length: 5 }, (_, i) => Math.round((i * 999) / 5)),
  );
  assert.equal(result.x.length, 2);
  assert.ok(result.x.every(Number.isFinite));
  // Five sigmas and the appended noisiest one.
  assert.equal(result.beta, 6);
});

Deno.test("onnx.ts imported by path from outside the repository creates a session and runs the digits UNet", async () => {
  const { code, stdout, stderr } = await runOutside(`
import * as ort from "npm:onnxruntime-node@1.30.0";
import { onnxDiffusionModel } from ${JSON.stringify(onnx)};
import { Tensor } from ${JSON.stringify(mod)};
const session = await ort.InferenceSession.create(${JSON.stringify(unet)});
const model = onnxDiffusionModel(session, { nullClassLabel: 10 });
const eps = await model(Tensor.zeros([1, 1, 8, 8]), 500, Int32Array.of(3));
console.log(JSON.stringify(eps.shape));
`);
  assert.equal(code, 0, stderr);
  assert.deepEqual(JSON.parse(stdout), [1, 1, 8, 8]);
});

Deno.test("deno.lock pins exactly the npm packages the library, the CLI and the demo load", async () => {
  // `deno task` installs every package of the configured lockfile before any task, so a tool in
  // deno.lock would be downloaded by `deno task demo` (dev.lock and wasm/build.lock hold the rest).
  const loaded = new Set<string>();
  for (const entry of ["mod.ts", "onnx.ts", "cli.ts", "examples/digits.ts"]) {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--lock=deno.lock", "--frozen", entry],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const info = JSON.parse(new TextDecoder().decode(stdout));
    for (const name of Object.keys(info.npmPackages)) loaded.add(name);
  }
  const lock = JSON.parse(
    await Deno.readTextFile(new URL("deno.lock", root)),
  );
  assert.deepEqual(Object.keys(lock.npm ?? {}).sort(), [...loaded].sort());
});
