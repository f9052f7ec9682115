/**
 * The command line: print a schedule, run the inverse or forward scheduler on a `.npy` through a
 * built-in analytic model, or run an inversion round trip and compare it with the exact
 * probability-flow ODE solution.
 *
 *   deno run --allow-read --allow-write cli.ts <schedule|invert|sample|roundtrip> [options]
 *
 * `main(args, io)` is the whole program: it writes to the given streams and returns the exit code
 * (0 success, 1 a failure while running, 2 a bad command line), so tests call it directly.
 *
 * @module
 */
import { intOption as intFlag, parseOptions, UsageError } from "./_cli_args.ts";
import {
  DPMSolverMultistepInverseScheduler,
  DPMSolverMultistepScheduler,
  generate,
  invert,
  type LoopOptions,
  type MultistepScheduler,
  type Tensor,
  TorchGenerator,
} from "./mod.ts";
import {
  BUILTIN_ANALYTIC_MODELS,
  builtinAnalyticModel,
  type BuiltinAnalyticModelName,
  type GaussianMixture,
  schedulerModel,
  type SchedulerModelOptions,
} from "./analytic.ts";
import { readNpyTensor, writeNpy } from "./npy.ts";
import { resolveMultistepConfig } from "./lib/config.ts";
import { parseConfigJson, readConfigPath } from "./lib/_config_file.ts";
import {
  SIGMA_FAMILIES,
  SIGMA_FAMILY_NAMES,
  sigmaFamilyOf,
} from "./lib/_sigma_families.ts";

/** Where the CLI writes; all fields optional in {@link main}. */
export interface CliIo {
  /** Writes text to standard output. */
  stdout(text: string): void;
  /** Writes text to standard error. */
  stderr(text: string): void;
  /** Whether standard error is a terminal (the progress bar is drawn only then). */
  isTerminal: boolean;
}

const encoder = new TextEncoder();

/**
 * Writes all of `text` (a pipe may take a write in parts). A reader that has gone away
 * (`cli.ts schedule … | head -3`) ends the program quietly with exit code 0, as Unix tools do.
 */
function writeAll(file: typeof Deno.stdout, text: string): void {
  const bytes = encoder.encode(text);
  try {
    for (let done = 0; done < bytes.length;) {
      done += file.writeSync(bytes.subarray(done));
    }
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) Deno.exit(0);
    throw error;
  }
}

const DEFAULT_IO: CliIo = {
  stdout: (text) => writeAll(Deno.stdout, text),
  stderr: (text) => writeAll(Deno.stderr, text),
  get isTerminal() {
    return Deno.stderr.isTerminal();
  },
};

const COMMANDS = ["schedule", "invert", "sample", "roundtrip"] as const;
type Command = typeof COMMANDS[number];

/**
 * The most samples `roundtrip` draws: the exact reference integrates every sample's ODE in
 * float64 (1000 RK4 steps for the mixtures), about 1 s of CPU per 1,000 samples (measured:
 * `roundtrip --count 10000` took 10.8 s of user time), so the limit is a couple of minutes.
 */
const MAX_COUNT = 100_000;

const USAGE = `Usage: cli.ts <command> [options]

DPM-Solver multistep schedulers on exact (analytic) diffusion models.

Commands:
  schedule [config]   the schedule table: step, t, sigma, alpha_t, sigma_t, lambda, h
  invert <input.npy>  invert a clean sample to noise (inverse scheduler, built-in model)
  sample <input.npy>  sample from noise back to data (forward scheduler, built-in model)
  roundtrip           invert, reconstruct, and print the errors against the exact solution

Run 'cli.ts <command> --help' for the options of a command.
`;

const SCHEDULER_HELP = `Scheduler options (all commands):
  --config PATH         a scheduler_config.json, or a model folder holding one (directly or
                        in scheduler/); diffusers' defaults without it
  --steps N             inference steps (default 25)
  --order 1|2|3         solver_order
  --algorithm A         algorithm_type: dpmsolver++ | dpmsolver
  --solver-type T       solver_type: midpoint | heun
  --sigmas S            default | karras | exponential | beta
  --spacing S           timestep_spacing: linspace | leading | trailing
  --prediction-type P   prediction_type: epsilon | sample | v_prediction
  --beta-schedule B     beta_schedule: linear | scaled_linear | squaredcos_cap_v2
  --set KEY=VALUE       any other diffusers config key (VALUE as JSON, else a string);
                        repeatable, e.g. --set lower_order_final=false
`;

const MODEL_HELP = `Model options:
  --model M             the built-in analytic model: ${
  BUILTIN_ANALYTIC_MODELS.join(" | ")
} (default mixture)
                        gaussian: N(0.5, 0.3²) per element; mixture: a 3-component 1-D
                        mixture per element; mixture2d: a 3-component 2-D mixture over a
                        last axis of size 2
  --noise-level L       alphas_cumprod (the model sees sqrt(alphas_cumprod[t]), default) |
                        schedule (the scheduler's own sigma for the step)
`;

const HELP: Record<Command, string> = {
  schedule: `Usage: cli.ts schedule [config] [options]

Prints the inference schedule: per step its timestep t, sigma, alpha_t, sigma_t, the half
log-SNR lambda and the step size h in lambda, plus a last row for the final sigma.

  config                same as --config
  --direction D         inverse (clean to noise, default) | forward (noise to clean)
  --format F            table (default) | csv | json; JSON writes the non-finite values
                        (lambda and h at a final sigma of zero) as the strings "Infinity",
                        "-Infinity" and "NaN", which Number() in JavaScript and float() in
                        Python read back

${SCHEDULER_HELP}`,
  invert: `Usage: cli.ts invert <input.npy> --output <noise.npy> [options]

Runs the inverse scheduler on a float32 .npy (the clean sample at t = 0) through a built-in
analytic model and writes the inverted noise as float32 .npy.

  -o, --output PATH     where to write the result (required; never the input file)

${MODEL_HELP}
${SCHEDULER_HELP}`,
  sample: `Usage: cli.ts sample <input.npy> --output <sample.npy> [options]

Runs the forward scheduler on a float32 .npy (noise at the noisiest timestep) through a
built-in analytic model and writes the sample as float32 .npy.

  -o, --output PATH     where to write the result (required; never the input file)

${MODEL_HELP}
${SCHEDULER_HELP}`,
  roundtrip: `Usage: cli.ts roundtrip [options]

Inverts a sample with the inverse scheduler, samples it back with the forward scheduler (same
config, final_sigmas_type "sigma_min" so that it ends where the inversion started), and prints
the inversion's error against the exact probability-flow ODE solution (closed form for
gaussian, 1000 float64 RK4 steps in lambda for the mixtures) and the reconstruction error.

  --input PATH          a float32 .npy to invert (default: samples drawn from the model)
  --count N             samples to draw without --input, 1 to ${
    MAX_COUNT.toLocaleString("en-US")
  }
                        (default 512)
  --seed N              TorchGenerator seed for the samples (default 0)

${MODEL_HELP}
${SCHEDULER_HELP}`,
};

// The families `--sigmas` offers: both directions have them and the built-in models need the
// VP schedule, so neither Lu (forward only) nor flow sigmas.
const CLI_SIGMA_FAMILIES = SIGMA_FAMILY_NAMES.filter((name) =>
  !SIGMA_FAMILIES[name].forwardOnly && !SIGMA_FAMILIES[name].flow
);

/** Flags that set one config key: flag name → key. */
const KEY_FLAGS = {
  order: "solver_order",
  algorithm: "algorithm_type",
  "solver-type": "solver_type",
  spacing: "timestep_spacing",
  "prediction-type": "prediction_type",
  "beta-schedule": "beta_schedule",
} as const;

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  config: { type: "string" },
  steps: { type: "string" },
  order: { type: "string" },
  algorithm: { type: "string" },
  "solver-type": { type: "string" },
  sigmas: { type: "string" },
  spacing: { type: "string" },
  "prediction-type": { type: "string" },
  "beta-schedule": { type: "string" },
  set: { type: "string", multiple: true },
  direction: { type: "string" },
  format: { type: "string" },
  output: { type: "string", short: "o" },
  model: { type: "string" },
  "noise-level": { type: "string" },
  input: { type: "string" },
  count: { type: "string" },
  seed: { type: "string" },
} as const;

/** Which options each command takes (besides the scheduler options and --help). */
const COMMAND_OPTIONS: Record<Command, string[]> = {
  schedule: ["direction", "format"],
  invert: ["output", "model", "noise-level"],
  sample: ["output", "model", "noise-level"],
  roundtrip: ["model", "noise-level", "input", "count", "seed"],
};
const SCHEDULER_OPTIONS = [
  "help",
  "config",
  "steps",
  "sigmas",
  "set",
  ...Object.keys(KEY_FLAGS),
];

type Values = {
  [K in keyof typeof OPTIONS]?: typeof OPTIONS[K] extends { multiple: true }
    ? string[]
    : typeof OPTIONS[K]["type"] extends "boolean" ? boolean
    : string;
};

/**
 * Runs the CLI on `args` (without the program name) and resolves to the exit code: 0 on success,
 * 1 when running failed (a file, a model or the solver), 2 for a bad command line.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * import assert from "node:assert/strict";
 * let out = "";
 * const code = await main(["schedule", "--steps", "2", "--format", "csv"], { stdout: (s) => (out += s) });
 * assert.equal(code, 0);
 * assert.equal(out.split("\n")[0], "step,t,sigma,alpha_t,sigma_t,lambda,h");
 * ```
 */
export async function main(
  args: readonly string[],
  io: Partial<CliIo> = {},
): Promise<number> {
  const out: CliIo = {
    stdout: io.stdout ?? DEFAULT_IO.stdout,
    stderr: io.stderr ?? DEFAULT_IO.stderr,
    isTerminal: io.isTerminal ?? DEFAULT_IO.isTerminal,
  };
  const [command, ...rest] = args;
  if (command === undefined || command === "--help" || command === "-h") {
    (command === undefined ? out.stderr : out.stdout)(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (!(COMMANDS as readonly string[]).includes(command)) {
    out.stderr(
      `error: unknown command '${command}': expected one of ${
        COMMANDS.join(", ")
      }\nRun 'cli.ts --help' for the commands.\n`,
    );
    return 2;
  }
  const cmd = command as Command;
  try {
    const { values, positionals } = parse(cmd, rest);
    if (values.help) {
      out.stdout(HELP[cmd]);
      return 0;
    }
    switch (cmd) {
      case "schedule":
        return await schedule(values, positionals, out);
      case "invert":
      case "sample":
        return await run(cmd, values, positionals, out);
      case "roundtrip":
        return await roundtrip(values, positionals, out);
    }
  } catch (error) {
    const usage = error instanceof UsageError;
    out.stderr(
      `error: ${(error as Error).message}${
        usage ? `\nRun 'cli.ts ${cmd} --help' for the options.` : ""
      }\n`,
    );
    return usage ? 2 : 1;
  }
}

function parse(
  cmd: Command,
  args: string[],
): { values: Values; positionals: string[] } {
  // Errors name the option (a mistyped one with the closest known name); a negative number is
  // taken as an option's value, so that the range check says what is wrong.
  const parsed = parseOptions(args, OPTIONS, true);
  const allowed = new Set([...SCHEDULER_OPTIONS, ...COMMAND_OPTIONS[cmd]]);
  for (const name of Object.keys(parsed.values)) {
    if (!allowed.has(name)) {
      throw new UsageError(
        `the option '--${name}' does not apply to '${cmd}': it takes ${
          [...allowed].map((n) => `--${n}`).join(", ")
        }`,
      );
    }
  }
  const maxPositionals = cmd === "roundtrip" ? 0 : 1;
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(
      `'${cmd}' takes ${
        maxPositionals === 0
          ? "no positional arguments"
          : "one positional argument"
      }: got ${parsed.positionals.map((p) => `'${p}'`).join(", ")}`,
    );
  }
  return { values: parsed.values as Values, positionals: parsed.positionals };
}

function choiceFlag<T extends string>(
  flag: string,
  value: string | undefined,
  choices: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(
      `'--${flag}' must be one of ${
        choices.join(", ")
      }: current value is '${value}'`,
    );
  }
  return value as T;
}

/** The config file's keys (or `{}`) and the keys the flags set, each checked on its own. */
async function configFrom(
  values: Values,
  positional: string | undefined,
): Promise<
  { base: Record<string, unknown>; overrides: Record<string, unknown> }
> {
  const path = values.config ?? positional;
  if (values.config !== undefined && positional !== undefined) {
    throw new UsageError(
      `give the config once: as '--config' or as the positional argument, not both ('${values.config}' and '${positional}')`,
    );
  }
  const base = path === undefined ? {} : (await readConfigPath(path)).config;
  const overrides: Record<string, unknown> = {};
  const check = (flag: string, key: string, value: unknown) => {
    try {
      resolveMultistepConfig({ [key]: value });
    } catch (error) {
      throw new UsageError(
        `'${flag}' is not a valid setting: ${(error as Error).message}`,
      );
    }
    overrides[key] = value;
  };
  for (const [flag, key] of Object.entries(KEY_FLAGS)) {
    const value = values[flag as keyof typeof KEY_FLAGS];
    if (value === undefined) continue;
    check(
      `--${flag} ${value}`,
      key,
      key === "solver_order" && /^\d+$/.test(value) ? Number(value) : value,
    );
  }
  if (values.sigmas !== undefined) {
    const family = choiceFlag(
      "sigmas",
      values.sigmas,
      ["default", ...CLI_SIGMA_FAMILIES],
      "default",
    );
    for (const name of CLI_SIGMA_FAMILIES) {
      overrides[SIGMA_FAMILIES[name].key] = name === family;
    }
  }
  for (const entry of values.set ?? []) {
    const eq = entry.indexOf("=");
    if (eq <= 0) {
      throw new UsageError(
        `'--set' must be KEY=VALUE (e.g. --set lower_order_final=false): current value is '${entry}'`,
      );
    }
    const key = entry.slice(0, eq);
    const text = entry.slice(eq + 1);
    let value: unknown;
    try {
      value = parseConfigJson(`{"v": ${text}}`).v;
    } catch {
      value = text;
    }
    check(`--set ${entry}`, key, value);
  }
  return { base, overrides };
}

interface Schedulers {
  steps: number;
  inverse: () => DPMSolverMultistepInverseScheduler;
  forward: (extra?: Record<string, unknown>) => DPMSolverMultistepScheduler;
}

async function schedulers(
  values: Values,
  positional?: string,
): Promise<Schedulers> {
  const { base, overrides } = await configFrom(values, positional);
  const config = { ...base, ...overrides };
  const path = values.config ?? positional;
  const trainSteps = (() => {
    try {
      return resolveMultistepConfig(config, { ignoreUnknown: true })
        .num_train_timesteps;
    } catch (error) {
      const message = (error as Error).message;
      if (path === undefined) {
        throw new UsageError(
          `Cannot build the scheduler from the flags: ${message}`,
        );
      }
      throw new Error(
        `Cannot build the scheduler from the config '${path}' and the flags: ${message}`,
      );
    }
  })();
  const steps = intFlag("steps", values.steps, 25, 1, trainSteps);
  const build = <S extends MultistepScheduler>(make: () => S): S => {
    let scheduler: S;
    try {
      scheduler = make();
    } catch (error) {
      throw new UsageError(
        `Cannot build the scheduler from the config and flags: ${
          (error as Error).message
        }`,
      );
    }
    scheduler.setTimesteps(steps);
    return scheduler;
  };
  return {
    steps,
    inverse: () =>
      build(() => DPMSolverMultistepInverseScheduler.fromConfig(config)),
    forward: (extra = {}) =>
      build(() =>
        DPMSolverMultistepScheduler.fromConfig({ ...config, ...extra })
      ),
  };
}

async function schedule(
  values: Values,
  positionals: string[],
  io: CliIo,
): Promise<number> {
  const direction = choiceFlag(
    "direction",
    values.direction,
    ["inverse", "forward"],
    "inverse",
  );
  const format = choiceFlag(
    "format",
    values.format,
    ["table", "csv", "json"],
    "table",
  );
  const made = await schedulers(values, positionals[0]);
  const scheduler = direction === "inverse" ? made.inverse() : made.forward();
  const rows = scheduler.scheduleTable();
  if (format === "json") {
    // JSON has no infinities: they are written as strings that Number() and float() read back.
    const finite = (v: number) => Number.isFinite(v) ? v : String(v);
    io.stdout(
      JSON.stringify(
        rows.map((r) => ({
          step: r.step,
          t: r.t,
          sigma: finite(r.sigma),
          alpha_t: finite(r.alphaT),
          sigma_t: finite(r.sigmaT),
          lambda: finite(r.lambda),
          h: finite(r.h),
        })),
        null,
        1,
      ) + "\n",
    );
  } else if (format === "csv") {
    const lines = ["step,t,sigma,alpha_t,sigma_t,lambda,h"];
    for (const r of rows) {
      lines.push(
        [r.step, r.t ?? "", r.sigma, r.alphaT, r.sigmaT, r.lambda, r.h].join(
          ",",
        ),
      );
    }
    io.stdout(lines.join("\n") + "\n");
  } else {
    io.stdout(describe(scheduler) + "\n\n");
    io.stdout(
      " step      t        sigma      alpha_t      sigma_t       lambda          h\n",
    );
    for (const r of rows) {
      io.stdout(
        [
          String(r.step).padStart(5),
          (r.t === null ? "final" : String(r.t)).padStart(6),
          r.sigma.toExponential(4).padStart(12),
          r.alphaT.toFixed(6).padStart(12),
          r.sigmaT.toFixed(6).padStart(12),
          r.lambda.toFixed(5).padStart(12),
          r.h.toFixed(5).padStart(10),
        ].join(" ") + "\n",
      );
    }
  }
  return 0;
}

/** One line naming the scheduler and every key that shapes the run. */
function describe(scheduler: MultistepScheduler): string {
  const c = scheduler.config as MultistepScheduler["config"] & {
    final_sigmas_type?: string;
  };
  const family = sigmaFamilyOf(c);
  const sigmas = family === null
    ? "interpolated"
    : SIGMA_FAMILIES[family].label;
  const final = c.final_sigmas_type === undefined
    ? ""
    : `, final sigma ${c.final_sigmas_type}`;
  return `${scheduler.className}: ${c.algorithm_type}, order ${c.solver_order} (${c.solver_type}), ${c.prediction_type} prediction, ${c.beta_schedule} betas, ${c.timestep_spacing} spacing, ${sigmas} sigmas, lower_order_final ${c.lower_order_final}${final}, ${scheduler.numInferenceSteps} steps`;
}

function modelFlags(values: Values) {
  const name = choiceFlag(
    "model",
    values.model,
    BUILTIN_ANALYTIC_MODELS,
    "mixture" as BuiltinAnalyticModelName,
  );
  const noiseLevel = choiceFlag(
    "noise-level",
    values["noise-level"],
    ["alphas_cumprod", "schedule"] as const,
    "alphas_cumprod",
  );
  return { name, model: builtinAnalyticModel(name), noiseLevel };
}

/** Reads a float32 .npy and checks it fits the model. */
async function readInput(
  path: string,
  flag: string,
  dim: number,
): Promise<Tensor> {
  const x = await readNpyTensor(path);
  if (x.size === 0) {
    throw new Error(`Cannot use '${path}' (${flag}) as it holds no values`);
  }
  if (dim !== 1 && x.shape.at(-1) !== dim) {
    throw new Error(
      `Cannot use '${path}' (${flag}) with this model as its last axis must be ${dim}: current shape is [${
        x.shape.join(", ")
      }]`,
    );
  }
  if (!x.toFloat32Array().every(Number.isFinite)) {
    throw new Error(
      `Cannot use '${path}' (${flag}) as it holds NaN or infinite values`,
    );
  }
  return x;
}

/**
 * Runs the library's loop over the whole schedule (`invert` for the inverse scheduler,
 * `generate` for the forward one), drawing a progress bar on a terminal.
 */
async function loop(
  scheduler: MultistepScheduler,
  model: (x: Tensor, t: number) => Tensor,
  sample: Tensor,
  label: string,
  io: CliIo,
): Promise<Tensor> {
  const started = performance.now();
  const width = 24;
  const options: LoopOptions = {
    numInferenceSteps: scheduler.timesteps.length,
  };
  if (io.isTerminal) {
    options.onProgress = ({ step: done, steps: total }) => {
      const seconds = (performance.now() - started) / 1000;
      const filled = Math.round((done / total) * width);
      io.stderr(
        `\r${label} [${"#".repeat(filled)}${
          ".".repeat(width - filled)
        }] ${done}/${total} steps, ${seconds.toFixed(1)} s, ${
          (done / Math.max(seconds, 1e-9)).toFixed(1)
        } steps/s`,
      );
    };
  }
  const x = scheduler instanceof DPMSolverMultistepScheduler
    ? await generate(model, sample, scheduler, options)
    : (await invert(model, sample, scheduler, options)).sample;
  if (io.isTerminal) io.stderr("\n");
  return x;
}

async function run(
  cmd: "invert" | "sample",
  values: Values,
  positionals: string[],
  io: CliIo,
): Promise<number> {
  const input = positionals[0];
  if (input === undefined) {
    throw new UsageError(`'${cmd}' needs an input .npy file: none given`);
  }
  if (values.output === undefined) {
    throw new UsageError(
      `'${cmd}' needs '--output PATH' (where to write the result .npy): none given`,
    );
  }
  await checkOutput(values.output, input);
  const { model, noiseLevel } = modelFlags(values);
  const made = await schedulers(values);
  const scheduler = cmd === "invert" ? made.inverse() : made.forward();
  const x = await readInput(input, "the input", model.dim);
  const fn = modelFor(model, scheduler, { noiseLevel });
  const result = await loop(
    scheduler,
    fn,
    x,
    cmd === "invert" ? "invert" : "sample",
    io,
  );
  try {
    await writeNpy(values.output, result);
  } catch (error) {
    throw new Error(
      `Cannot write '${values.output}' (--output): ${(error as Error).message}`,
    );
  }
  io.stdout(
    `${describe(scheduler)}\nwrote ${values.output}: float32 [${
      result.shape.join(", ")
    }]\n`,
  );
  return 0;
}

/** Refuses an output path that is a folder or the input file itself (before any work). */
async function checkOutput(output: string, input: string): Promise<void> {
  const real = (path: string) => Deno.realPath(path).catch(() => null);
  const [out, inp] = await Promise.all([real(output), real(input)]);
  if (out === null) return;
  if ((await Deno.stat(out)).isDirectory) {
    throw new UsageError(
      `'--output' must be a file path: '${output}' is a folder`,
    );
  }
  if (out === inp) {
    throw new UsageError(
      `'--output' must not be the input file: '${output}' is '${input}', which would be overwritten`,
    );
  }
}

function modelFor(
  model: ReturnType<typeof builtinAnalyticModel>,
  scheduler: MultistepScheduler,
  options: SchedulerModelOptions,
): (x: Tensor, t: number) => Tensor {
  try {
    return schedulerModel(model, scheduler, options);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

async function roundtrip(
  values: Values,
  _positionals: string[],
  io: CliIo,
): Promise<number> {
  const { name, model, noiseLevel } = modelFlags(values);
  if (values.input !== undefined) {
    for (const flag of ["count", "seed"] as const) {
      if (values[flag] !== undefined) {
        throw new UsageError(
          `'--${flag}' draws samples from the model, so it cannot be combined with '--input'`,
        );
      }
    }
  }
  const count = intFlag("count", values.count, 512, 1, MAX_COUNT);
  const seed = intFlag("seed", values.seed, 0, 0);
  const made = await schedulers(values);
  const inverse = made.inverse();
  // The forward pass ends at the training schedule's smallest sigma, where the inversion began.
  const forward = made.forward({ final_sigmas_type: "sigma_min" });
  let x0: Tensor;
  let source: string;
  if (values.input !== undefined) {
    x0 = await readInput(values.input, "--input", model.dim);
    source = `'${values.input}' [${x0.shape.join(", ")}]`;
  } else {
    const shape = model.dim === 1 ? [count] : [count, model.dim];
    x0 = model.sample(shape, new TorchGenerator(seed));
    source =
      `${count} samples drawn from the model (TorchGenerator seed ${seed})`;
  }

  const toNoise = modelFor(model, inverse, { noiseLevel });
  const noise = await loop(inverse, toNoise, x0, "invert", io);
  const toData = modelFor(model, forward, { noiseLevel });
  const back = await loop(forward, toData, noise, "sample", io);

  const start = inverse.alphaSigmaAt(0);
  const end = inverse.alphaSigmaAt(inverse.sigmas.length - 1);
  const exact = model.odeMap(x0.toFloat32Array(), start, end);
  const inversion = errors(noise.toFloat32Array(), exact);
  const reconstruction = errors(back.toFloat32Array(), x0.toFloat32Array());
  const table = inverse.scheduleTable();
  const fmt = (v: number) => v.toExponential(3);
  const reference = name === "gaussian"
    ? "closed form"
    : `float64 RK4, ${(model as GaussianMixture).odeSteps} steps in lambda`;
  io.stdout(
    [
      `Round trip on the built-in '${name}' model: ${source}`,
      `invert: ${describe(inverse)}`,
      `sample: ${describe(forward)}`,
      `  sigma ${table[0]!.sigma.toPrecision(4)} -> ${
        table.at(-1)!.sigma.toPrecision(4)
      } (lambda ${table[0]!.lambda.toFixed(3)} -> ${
        table.at(-1)!.lambda.toFixed(3)
      }), model noise level: ${noiseLevel}`,
      `inversion vs the exact ODE solution (${reference}): max |error| ${
        fmt(inversion.max)
      }, RMS ${fmt(inversion.rms)}`,
      `reconstruction vs the input:  max |error| ${
        fmt(reconstruction.max)
      }, RMS ${fmt(reconstruction.rms)}`,
      "",
    ].join("\n"),
  );
  return 0;
}

function errors(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
): { max: number; rms: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= max)) max = d; // NaN wins
    sum += d * d;
  }
  return { max, rms: Math.sqrt(sum / actual.length) };
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
