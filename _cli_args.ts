// Command-line parsing shared by cli.ts and the digits demo: node:util's parseArgs, with its
// errors rewritten in the house form ('--steps' must be …: current value is …), negative numbers
// accepted as option values, a suggestion for a mistyped option, and number checks.
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A bad command line: printed as one `error:` line with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * `parseArgs` in strict mode, with errors that name the option and what was expected. A value
 * that starts with a dash is taken as the option's value when it reads as a number
 * (`--steps -3`), so that the range check, not the parser, says what is wrong.
 */
export function parseOptions<T extends Options>(
  args: readonly string[],
  options: T,
  allowPositionals: boolean,
) {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const name = /^--([^=]+)$/.exec(arg)?.[1] ??
      (/^-([^-])$/.exec(arg)?.[1] &&
        Object.keys(options).find((k) => options[k]!.short === arg.slice(1)));
    if (
      name && options[name]?.type === "string" && next !== undefined &&
      /^-(\d|\.\d|Infinity\b)/.test(next)
    ) {
      joined.push(`--${name}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  try {
    return parseArgs({ args: joined, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError(rewrite(error as Error, Object.keys(options)));
  }
}

/** node:util's parse errors in one line each, with a suggestion for an unknown option. */
function rewrite(error: Error, known: string[]): string {
  const message = error.message;
  const unknown = /^Unknown option '(-{1,2})([^']*)'/.exec(message);
  if (unknown) {
    const [, dashes, name] = unknown;
    const guess = closest(name!, known);
    return `unknown option '${dashes}${name}'${
      guess === undefined
        ? `: expected one of ${known.map((k) => `--${k}`).join(", ")}`
        : `: did you mean '--${guess}'?`
    }`;
  }
  const missing = /^Option '(?:-\w, )?(--[^ ']+)[^']*' argument missing/.exec(
    message,
  );
  if (missing) return `'${missing[1]}' needs a value: none given`;
  const noValue =
    /^Option '(?:-\w, )?(--[^ ']+)[^']*' does not take an argument/.exec(
      message,
    );
  if (noValue) return `'${noValue[1]}' takes no value`;
  const positional = /^Unexpected argument '([^']*)'/.exec(message);
  if (positional) {
    return `unexpected argument '${
      positional[1]
    }': this command takes options only`;
  }
  return message.split("\n")[0]!;
}

/**
 * The known name closest to `name` by edit distance (insertions, deletions, substitutions and
 * swaps of neighbours), if it is within a third of the longer name's length (at least 1).
 */
export function closest(
  name: string,
  known: readonly string[],
): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    const limit = Math.max(
      1,
      Math.floor(Math.max(name.length, candidate.length) / 3),
    );
    if (d <= limit && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const d = Array.from(
    { length: a.length + 1 },
    (_, i) => Array.from({ length: b.length + 1 }, (_, j) => i === 0 ? j : i),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(
        d[i - 1]![j]! + 1,
        d[i]![j - 1]! + 1,
        d[i - 1]![j - 1]! + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** An integer option in [min, max], or `fallback` when it is not given. */
export function intOption(
  flag: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(
      `'--${flag}' must be an integer in [${min}, ${
        max === Number.MAX_SAFE_INTEGER ? "∞" : max
      }]: current value is '${value}'`,
    );
  }
  return n;
}

/**
 * A number option in the interval `range` (each end open or closed, `Infinity` for none), or
 * `fallback` when it is not given.
 */
export function numberOption(
  flag: string,
  value: string | undefined,
  fallback: number,
  range: { min: number; max: number; minOpen?: boolean },
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  const { min, max, minOpen = false } = range;
  if (
    value.trim() === "" || !Number.isFinite(n) ||
    (minOpen ? n <= min : n < min) || n > max
  ) {
    throw new UsageError(
      `'--${flag}' must be a number in ${minOpen ? "(" : "["}${min}, ${
        max === Infinity ? "∞)" : `${max}]`
      }: current value is '${value}'`,
    );
  }
  return n;
}
