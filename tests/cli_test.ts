// cli.ts through its main(args, io): exit codes, error messages that name the flag or file, the
// schedule table against the VP relations, .npy output, and the progress bar.
import assert from "node:assert/strict";
import { main } from "../cli.ts";
import { Tensor } from "../mod.ts";
import { decodeNpy, encodeNpy } from "../npy.ts";

async function cli(
  args: string[],
  isTerminal = false,
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    isTerminal,
  });
  return { code, stdout, stderr };
}

const tmp = await Deno.makeTempDir({ prefix: "dpmsolver-cli-" });
globalThis.addEventListener("unload", () => {
  Deno.removeSync(tmp, { recursive: true });
});

Deno.test("cli --help lists the commands; no command is a usage error", async () => {
  const help = await cli(["--help"]);
  assert.equal(help.code, 0);
  for (const c of ["schedule", "invert", "sample", "roundtrip"]) {
    assert.match(help.stdout, new RegExp(`\\n  ${c} `));
  }
  const none = await cli([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /Usage: cli.ts <command>/);
  for (const c of ["schedule", "invert", "sample", "roundtrip"]) {
    const r = await cli([c, "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^Usage: cli.ts ${c}`));
    assert.match(r.stdout, /--steps N/);
  }
});

Deno.test("cli names the bad command, flag or value and what was expected", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["frobnicate"],
      /unknown command 'frobnicate': expected one of schedule, invert, sample, roundtrip/,
    ],
    [
      ["schedule", "--bogus"],
      /unknown option '--bogus': expected one of --help, --config, --steps,/,
    ],
    [
      ["schedule", "--stepz", "3"],
      /unknown option '--stepz': did you mean '--steps'\?/,
    ],
    [
      ["schedule", "--sigma", "karras"],
      /unknown option '--sigma': did you mean '--sigmas'\?/,
    ],
    [["schedule", "--steps"], /'--steps' needs a value: none given/],
    [
      ["schedule", "--steps", "-3"],
      /'--steps' must be an integer in \[1, 1000\]: current value is '-3'/,
    ],
    [
      ["schedule", "--help=yes"],
      /'--help' takes no value/,
    ],
    [
      ["roundtrip", "--count", "1e9"],
      /'--count' must be an integer in \[1, 100000\]: current value is '1e9'/,
    ],
    [
      ["schedule", "--steps", "abc"],
      /'--steps' must be an integer in \[1, 1000\]: current value is 'abc'/,
    ],
    [
      ["schedule", "--steps", "1001"],
      /'--steps' must be an integer in \[1, 1000\]: current value is '1001'/,
    ],
    [
      ["schedule", "--order", "4"],
      /'--order 4' is not a valid setting: .*'solver_order' must be 1, 2 or 3: current value is 4/,
    ],
    [
      ["schedule", "--algorithm", "ddim"],
      /'--algorithm ddim' is not a valid setting: .*'algorithm_type'/,
    ],
    [
      ["schedule", "--sigmas", "fancy"],
      /'--sigmas' must be one of default, karras, exponential, beta: current value is 'fancy'/,
    ],
    [
      ["schedule", "--format", "xml"],
      /'--format' must be one of table, csv, json: current value is 'xml'/,
    ],
    [
      ["schedule", "--set", "solver_ordr=3"],
      /'--set solver_ordr=3' is not a valid setting: .*did you mean 'solver_order'/,
    ],
    [
      ["schedule", "--set", "oops"],
      /'--set' must be KEY=VALUE .*current value is 'oops'/,
    ],
    [
      ["schedule", "--output", "x.npy"],
      /'--output' does not apply to 'schedule'/,
    ],
    [["invert"], /'invert' needs an input .npy file/],
    [["invert", "x.npy"], /'invert' needs '--output PATH'/],
    [
      ["roundtrip", "--model", "unet"],
      /'--model' must be one of gaussian, mixture, mixture2d: current value is 'unet'/,
    ],
    [
      ["roundtrip", "--noise-level", "exact"],
      /'--noise-level' must be one of alphas_cumprod, schedule/,
    ],
    [
      ["roundtrip", "--count", "0"],
      /'--count' must be an integer in \[1, 100000\]: current value is '0'/,
    ],
    [
      ["roundtrip", "--input", "x.npy", "--seed", "3"],
      /'--seed' draws samples from the model, so it cannot be combined with '--input'/,
    ],
    [
      ["roundtrip", "extra"],
      /'roundtrip' takes no positional arguments: got 'extra'/,
    ],
    [
      [
        "schedule",
        "--prediction-type",
        "flow_prediction",
        "--algorithm",
        "dpmsolver",
      ],
      /Cannot build the scheduler from the flags: .*'prediction_type' "flow_prediction" needs/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assert.match(r.stderr, /Run 'cli.ts (\w+ )?--help'/);
    assert.equal(r.stdout, "");
  }
});

Deno.test("cli names the file that cannot be used", async () => {
  const folder = `${tmp}/empty-model`;
  await Deno.mkdir(folder, { recursive: true });
  const badJson = `${tmp}/bad.json`;
  await Deno.writeTextFile(badJson, "{ solver_order: 2 ");
  const ints = `${tmp}/ints.npy`;
  await Deno.writeFile(ints, encodeNpy(new Int32Array([1, 2, 3])));
  const odd = `${tmp}/odd.npy`;
  await Deno.writeFile(odd, encodeNpy(Tensor.zeros([4, 3])));
  const good = `${tmp}/good.npy`;
  await Deno.writeFile(good, encodeNpy(Tensor.zeros([4, 2])));
  const cases: [string[], RegExp][] = [
    [
      ["schedule", `${tmp}/missing.json`],
      new RegExp(
        `Cannot read the config '${tmp}/missing.json'.*expected a scheduler_config.json or a model folder`,
      ),
    ],
    [
      ["schedule", folder],
      new RegExp(
        `Cannot find a scheduler config in the folder '${folder}': expected '${folder}/scheduler_config.json' or '${folder}/scheduler/scheduler_config.json'`,
      ),
    ],
    [
      ["schedule", "--config", badJson],
      new RegExp(`Cannot read '${badJson}' as it is not valid JSON`),
    ],
    [
      ["invert", `${tmp}/missing.npy`, "-o", `${tmp}/o.npy`],
      new RegExp(`Cannot read '${tmp}/missing.npy'`),
    ],
    [
      ["invert", ints, "-o", `${tmp}/o.npy`],
      new RegExp(
        `Cannot read '${ints}' as a Tensor as its dtype is '<i4', not '<f4'`,
      ),
    ],
    [
      ["invert", odd, "-o", `${tmp}/o.npy`, "--model", "mixture2d"],
      new RegExp(
        `Cannot use '${odd}' \\(the input\\) with this model as its last axis must be 2: current shape is \\[4, 3\\]`,
      ),
    ],
    [
      ["invert", good, "-o", `${tmp}/no/such/dir/o.npy`],
      new RegExp(`Cannot write '${tmp}/no/such/dir/o.npy' \\(--output\\)`),
    ],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

Deno.test("cli schedule: the csv obeys the VP relations and json carries the same rows", async () => {
  const csv = await cli([
    "schedule",
    "--steps",
    "10",
    "--format",
    "csv",
    "--sigmas",
    "karras",
  ]);
  assert.equal(csv.code, 0, csv.stderr);
  const [header, ...lines] = csv.stdout.trim().split("\n");
  assert.equal(header, "step,t,sigma,alpha_t,sigma_t,lambda,h");
  assert.equal(lines.length, 11);
  const rows = lines.map((l) => l.split(","));
  rows.forEach((r, i) => {
    const [step, t, sigma, alpha, sigmaT, lambda, h] = r.map(Number);
    assert.equal(step, i);
    assert.equal(r[1] === "", i === 10); // the final sigma has no timestep
    if (i > 0 && i < 10) assert.ok(t! > Number(rows[i - 1]![1]));
    assert.ok(Math.abs(alpha! ** 2 + sigmaT! ** 2 - 1) < 1e-6);
    assert.ok(Math.abs(sigmaT! / alpha! - sigma!) < 1e-6 * sigma!);
    assert.ok(Math.abs(lambda! - Math.log(alpha! / sigmaT!)) < 1e-5);
    const next = i < 10 ? Number(rows[i + 1]![5]) : lambda!;
    assert.ok(Math.abs(h! - (next - lambda!)) < 1e-6);
  });
  // Karras runs from the smallest training sigma sqrt((1 − ᾱ_0) / ᾱ_0), ᾱ_0 = 1 − beta_0 with
  // beta_0 = 1e-4, both float32 as in diffusers (1 − ᾱ_0 keeps ᾱ_0's rounding: 1.00017e-4).
  const alphaBar0 = Math.fround(1 - Math.fround(1e-4));
  assert.ok(
    Math.abs(Number(rows[0]![2]) - Math.sqrt((1 - alphaBar0) / alphaBar0)) <
      1e-8,
  );
  const json = await cli([
    "schedule",
    "--steps",
    "10",
    "--format",
    "json",
    "--sigmas",
    "karras",
  ]);
  const parsed = JSON.parse(json.stdout) as Record<string, number | null>[];
  assert.deepEqual(
    parsed.map((r) =>
      [r.step, r.t ?? "", r.sigma, r.alpha_t, r.sigma_t, r.lambda, r.h].join(
        ",",
      )
    ),
    lines,
  );
});

Deno.test("cli schedule reads a model folder's scheduler/scheduler_config.json; flags win", async () => {
  const folder = `${tmp}/model`;
  await Deno.mkdir(`${folder}/scheduler`, { recursive: true });
  await Deno.writeTextFile(
    `${folder}/scheduler/scheduler_config.json`,
    JSON.stringify({
      _class_name: "PNDMScheduler",
      beta_schedule: "scaled_linear",
      beta_start: 0.00085,
      beta_end: 0.012,
      solver_order: 3,
    }),
  );
  const r = await cli([
    "schedule",
    folder,
    "--steps",
    "4",
    "--order",
    "1",
    "--direction",
    "forward",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /^DPMSolverMultistepScheduler: dpmsolver\+\+, order 1 .*scaled_linear betas.*, 4 steps\n/,
  );
  const table = r.stdout.trim().split("\n").slice(3);
  assert.equal(table.length, 5);
  assert.match(table[0]!, /^ {4}0 {4}999 /); // forward: noisiest first
  assert.match(table[4]!, /^ {4}4 {2}final {4}0\.0000e\+0 /); // final sigma zero
});

Deno.test("cli invert and sample write .npy files that round-trip Gaussian data", async () => {
  const input = `${tmp}/x0.npy`;
  const x0 = Tensor.from([-0.1, 0.2, 0.5, 0.65, 0.9, 1.1], [2, 3]);
  await Deno.writeFile(input, encodeNpy(x0));
  const flags = [
    "--model",
    "gaussian",
    "--sigmas",
    "karras",
    "--steps",
    "100",
    "--noise-level",
    "schedule",
  ];
  const inv = await cli(["invert", input, "-o", `${tmp}/noise.npy`, ...flags]);
  assert.equal(inv.code, 0, inv.stderr);
  assert.match(
    inv.stdout,
    new RegExp(`wrote ${tmp}/noise.npy: float32 \\[2, 3\\]`),
  );
  assert.equal(inv.stderr, ""); // no progress bar off a terminal
  const noise = decodeNpy(await Deno.readFile(`${tmp}/noise.npy`));
  assert.deepEqual(noise.shape, [2, 3]);
  // The ODE keeps the standardised value (x − alpha·mu) / sqrt(alpha²·s² + sigma²): from sigma
  // 0.01 to the noisiest training sigma (alpha 0.00635) that is a scale of about 1/0.3.
  const start = {
    alpha: 1 / Math.hypot(1, 0.0100005),
    sigma: 0.0100005 / Math.hypot(1, 0.0100005),
  };
  const scale = 1 / Math.hypot(start.alpha * 0.3, start.sigma);
  Array.from(noise.data).forEach((v, i) => {
    const z = (x0.data[i]! - start.alpha * 0.5) * scale;
    assert.ok(Math.abs(v - z) < 2e-2, `${v} vs ${z}`);
  });
  const back = await cli([
    "sample",
    `${tmp}/noise.npy`,
    "--output",
    `${tmp}/back.npy`,
    ...flags,
    "--set",
    "final_sigmas_type=sigma_min", // end where the inversion started
  ], true);
  assert.equal(back.code, 0, back.stderr);
  assert.match(back.stdout, /final sigma sigma_min/);
  // On a terminal: a progress bar with steps, elapsed time and rate.
  assert.match(
    back.stderr,
    /\rsample \[#{24}\] 100\/100 steps, \d+\.\d s, \d+\.\d steps\/s\n$/,
  );
  const x = decodeNpy(await Deno.readFile(`${tmp}/back.npy`));
  Array.from(x.data).forEach((v, i) =>
    assert.ok(Math.abs(v - x0.data[i]!) < 2e-3)
  );
});

Deno.test("cli roundtrip: the mean path of Gaussian data inverts exactly (constant x0 prediction)", async () => {
  // Along x_t = alpha_t·mu the ideal x0 prediction is mu at every noise level, and DPM-Solver++'s
  // exponential integrator is exact for a constant data prediction, whatever the order and steps.
  const input = `${tmp}/mean.npy`;
  const alpha0 = 1 / Math.hypot(1, Math.sqrt(1e-4 / (1 - 1e-4)));
  await Deno.writeFile(
    input,
    encodeNpy(Tensor.from(new Array(8).fill(alpha0 * 0.5))),
  );
  for (const order of ["1", "2", "3"]) {
    const r = await cli([
      "roundtrip",
      "--model",
      "gaussian",
      "--input",
      input,
      "--order",
      order,
      "--steps",
      "7",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [inversion, reconstruction] = [
      ...r.stdout.matchAll(/max \|error\| (\S+),/g),
    ].map((m) => Number(m[1]));
    // float32 rounding only (the same inputs off the mean path err by 1e-1)
    assert.ok(inversion! < 1e-5 && reconstruction! < 1e-5, r.stdout);
  }
  const mixture = await cli(["roundtrip", "--count", "64", "--steps", "10"]);
  assert.equal(mixture.code, 0, mixture.stderr);
  assert.match(
    mixture.stdout,
    /^Round trip on the built-in 'mixture' model: 64 samples drawn from the model \(TorchGenerator seed 0\)\n/,
  );
  assert.match(
    mixture.stdout,
    /inversion vs the exact ODE solution \(float64 RK4, 1000 steps in lambda\): max \|error\| \d\.\d{3}e[-+]\d+, RMS/,
  );
});

Deno.test("cli schedule --format json writes infinities as strings that Number() reads back", async () => {
  // The forward schedule's final sigma 0 has lambda = +Infinity and a last step h = +Infinity.
  const json = await cli([
    "schedule",
    "--direction",
    "forward",
    "--steps",
    "3",
    "--format",
    "json",
  ]);
  assert.equal(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as Record<string, number | string>[];
  assert.equal(rows.at(-1)!.sigma, 0);
  assert.equal(rows.at(-1)!.lambda, "Infinity");
  assert.equal(rows.at(-2)!.h, "Infinity");
  assert.equal(Number(rows.at(-1)!.lambda), Infinity);
  // The same rows as the csv, value for value.
  const csv = await cli([
    "schedule",
    "--direction",
    "forward",
    "--steps",
    "3",
    "--format",
    "csv",
  ]);
  const lines = csv.stdout.trim().split("\n").slice(1);
  assert.deepEqual(
    rows.map((r) =>
      [r.step, r.t ?? "", r.sigma, r.alpha_t, r.sigma_t, r.lambda, r.h]
        .map((v) => v === "" ? "" : Number(v)).join(",")
    ),
    lines,
  );
});

Deno.test("cli invert and sample refuse to overwrite the input, and say how to write float32 from float64", async () => {
  const input = `${tmp}/in.npy`;
  await Deno.writeFile(input, encodeNpy(Tensor.from([0.1, 0.2, 0.3])));
  const before = await Deno.readFile(input);
  for (const cmd of ["invert", "sample"]) {
    const r = await cli([cmd, input, "-o", input]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      new RegExp(
        `'--output' must not be the input file: '${input}' is '${input}', which would be overwritten`,
      ),
    );
    // The same file by another path.
    const other = await cli([
      cmd,
      input,
      "-o",
      `${tmp}/../${tmp.split("/").at(-1)}/in.npy`,
    ]);
    assert.equal(other.code, 2, other.stderr);
  }
  assert.deepEqual(await Deno.readFile(input), before);
  const folder = await cli(["invert", input, "-o", tmp]);
  assert.equal(folder.code, 2);
  assert.match(
    folder.stderr,
    /'--output' must be a file path: '.*' is a folder/,
  );
  // float64, NumPy's default dtype.
  const f8 = encodeNpy(Tensor.from([1, 2]));
  f8.set(new TextEncoder().encode("<f8"), f8.indexOf(0x3c));
  await Deno.writeFile(`${tmp}/f8.npy`, f8);
  const r = await cli(["invert", `${tmp}/f8.npy`, "-o", `${tmp}/out.npy`]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /dtype '<f8' is not supported: .*\(write float32 from NumPy with a\.astype\(np\.float32\)\)/,
  );
});

Deno.test("cli schedule | head -3 ends quietly with exit code 0 when the reader goes away", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      new URL("../cli.ts", import.meta.url).pathname,
      "schedule",
      "--steps",
      "1000",
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  // Read the first chunk, then close the pipe as `head` does.
  const reader = child.stdout.getReader();
  const first = await reader.read();
  assert.ok(!first.done && first.value.length > 0);
  await reader.cancel();
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
  ]);
  assert.equal(stderr, "");
  assert.equal(status.code, 0);
});
