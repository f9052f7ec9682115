// The digits demo's command line (examples/digits.ts), run as a user runs it (`deno task demo`):
// every bad option is refused before any work with one `error:` line and exit code 2, and
// `--help` lists every option with its default and range. No model runs here.
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);

async function demo(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["task", "demo", ...args],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return {
    code,
    stdout: text(stdout),
    // Without the task runner's own "Task demo …" line.
    stderr: text(stderr).split("\n").filter((l) => !l.startsWith("Task "))
      .join("\n"),
  };
}

const HINT = " \\(run 'deno task demo --help' for the options\\)\n$";

Deno.test("deno task demo refuses bad options before any work, in one line, with exit code 2", async () => {
  const cases: [string[], string][] = [
    [
      ["--count", "5", "--edits", "2"],
      "'--rows' defaults to 6, more than '--count 5': give '--rows' in \\[1, 5\\] or a larger '--count'",
    ],
    [
      ["--count", "1000"],
      "'--count' must be an integer in \\[1, 297\\]: current value is '1000'",
    ],
    [
      ["--count", "0"],
      "'--count' must be an integer in \\[1, 297\\]: current value is '0'",
    ],
    [
      ["--steps", "abc"],
      "'--steps' must be an integer in \\[1, 1000\\]: current value is 'abc'",
    ],
    [
      ["--steps", "-3"],
      "'--steps' must be an integer in \\[1, 1000\\]: current value is '-3'",
    ],
    [
      ["--bogus"],
      "unknown option '--bogus': expected one of --count, --edits, --rows, --steps, --guidance, --strength, --out, --help",
    ],
    [["--stepz", "3"], "unknown option '--stepz': did you mean '--steps'\\?"],
    [
      ["--edits", "60"],
      "'--edits' must be an integer in \\[1, 50\\]: current value is '60'",
    ],
    [
      ["--strength", "0"],
      "'--strength' must be a number in \\(0, 1\\]: current value is '0'",
    ],
    [
      ["--guidance", "0.5"],
      "'--guidance' must be a number in \\[1, ∞\\): current value is '0.5'",
    ],
    [["--out"], "'--out' needs a value: none given"],
    [
      ["--out", "examples"],
      "'--out' must be a file path: 'examples' is a folder",
    ],
  ];
  for (const [args, message] of cases) {
    const { code, stdout, stderr } = await demo(...args);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.equal(stdout, "", args.join(" "));
    assert.match(stderr, new RegExp(`^error: ${message}${HINT}`));
  }
});

Deno.test("deno task demo --help lists every option with its default and range", async () => {
  const { code, stdout } = await demo("--help");
  assert.equal(code, 0);
  for (
    const line of [
      /--count N +held-out digits .*1 to 297 \(default 50\)/,
      /--edits N +.*1 to --count \(default 20\)/,
      /--rows N +.*1 to --count \(default 6\)/,
      /--steps N +.*1 to 1000 \(default 50\)/,
      /--guidance G +.*>= 1 \(default 3\)/,
      /--strength S +.*\(0, 1\] \(default 0.3\)/,
      /-o, --out FILE +.*default out\/digits.png/,
    ]
  ) {
    assert.match(stdout, line);
  }
});
