/**
 * The main job: prints the inverse schedule of a `scheduler_config.json` (diffusers' defaults when
 * none is given) and inverts a deterministic sample through a built-in stand-in model.
 *
 *   deno task demo [path/to/scheduler_config.json or model folder] [--steps N]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DPMSolverMultistepInverseScheduler, Tensor } from "./mod.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    steps: { type: "string", default: "25" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "usage: deno task demo [scheduler_config.json | model folder] [--steps N]",
  );
  Deno.exit(0);
}
const steps = Number(values.steps);
if (!Number.isInteger(steps) || steps < 1) {
  console.error(
    `Cannot run the demo as '--steps' must be a positive integer: current value is ${values.steps}`,
  );
  Deno.exit(2);
}

async function load(
  path: string | undefined,
): Promise<DPMSolverMultistepInverseScheduler> {
  if (path === undefined) return new DPMSolverMultistepInverseScheduler();
  const info = await Deno.stat(path);
  if (info.isDirectory) {
    const direct = await Deno.stat(`${path}/scheduler_config.json`).then(
      () => true,
      () => false,
    );
    return DPMSolverMultistepInverseScheduler.fromPretrained(
      path,
      direct ? {} : { subfolder: "scheduler" },
    );
  }
  const slash = path.lastIndexOf("/");
  return DPMSolverMultistepInverseScheduler.fromPretrained(
    slash < 0 ? "." : path.slice(0, slash),
  );
}

const scheduler = await load(positionals[0]);
scheduler.setTimesteps(steps);
const { config } = scheduler;
console.log(
  `DPMSolverMultistepInverseScheduler: ${config.algorithm_type}, order ${config.solver_order}, ${config.solver_type}, ` +
    `${config.prediction_type}, ${config.beta_schedule} betas, ${config.timestep_spacing} spacing, ${scheduler.numInferenceSteps} steps`,
);
console.log(
  "\n step      t        sigma      alpha_t      sigma_t       lambda          h",
);
for (const row of scheduler.scheduleTable()) {
  console.log(
    [
      String(row.step).padStart(5),
      (row.t === null ? "final" : String(row.t)).padStart(6),
      row.sigma.toExponential(4).padStart(12),
      row.alphaT.toFixed(6).padStart(12),
      row.sigmaT.toFixed(6).padStart(12),
      row.lambda.toFixed(5).padStart(12),
      row.h.toFixed(5).padStart(10),
    ].join(" "),
  );
}

// A deterministic 1×4×8×8 "latent" and a smooth non-linear noise predictor standing in for a model.
const shape = [1, 4, 8, 8];
const x0 = Tensor.from(
  Array.from({ length: 256 }, (_, i) => Math.sin(i * 0.37 + 0.1) * 1.3),
  shape,
);
const model = (x: Tensor, t: number) => {
  const s = t / 1000;
  return new Tensor(
    x.toFloat32Array().map((v) =>
      (0.8 - 0.3 * s) * Math.tanh(v) + (0.2 + 0.1 * s) * v
    ),
    x.shape,
  );
};

const stats = (x: Tensor) => {
  const v = x.toFloat32Array();
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  return `mean ${mean.toFixed(4)}, std ${std.toFixed(4)}, max |x| ${
    v.reduce((a, b) => Math.max(a, Math.abs(b)), 0).toFixed(4)
  }`;
};

console.log(`\ninverting a ${shape.join("×")} sample (${stats(x0)})`);
const encoder = new TextEncoder();
const tty = Deno.stderr.isTerminal();
let sample = x0;
const started = performance.now();
scheduler.timesteps.forEach((t, i) => {
  sample = scheduler.step(model(sample, t), t, sample).prevSample;
  if (tty) {
    const done = Math.round(((i + 1) / scheduler.timesteps.length) * 30);
    Deno.stderr.writeSync(
      encoder.encode(
        `\r[${"#".repeat(done)}${" ".repeat(30 - done)}] step ${
          i + 1
        }/${scheduler.timesteps.length} t=${t}`,
      ),
    );
  }
});
if (tty) Deno.stderr.writeSync(encoder.encode("\n"));
const { alphaT, sigmaT } = scheduler.alphaSigmaAt(scheduler.sigmas.length - 1);
console.log(
  `ended at sigma ${scheduler.sigmas.at(-1)!.toExponential(4)} (alpha_t ${
    alphaT.toFixed(4)
  }, sigma_t ${sigmaT.toFixed(4)}) after ${
    (performance.now() - started).toFixed(1)
  } ms`,
);
console.log(`inverted sample: ${stats(sample)}`);
