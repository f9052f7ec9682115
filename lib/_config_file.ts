/**
 * `scheduler_config.json` files: parsing JSON as Python's `json` writes it (with `NaN` and
 * `Infinity` tokens), reading a model folder's config, and writing one as diffusers does.
 *
 * @module
 */
import type { FromPretrainedOptions } from "./config.ts";
import { show } from "./_describe.ts";

/** Parses JSON as Python's `json` writes it, accepting the `NaN`, `Infinity` and `-Infinity` tokens. */
export function parseConfigJson(
  text: string,
  file = "config",
): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(
      replaceNonFiniteTokens(text, false),
      (_key, value) =>
        typeof value === "string" && value.startsWith(NON_FINITE_MARK)
          ? Number(value.slice(NON_FINITE_MARK.length))
          : value,
    );
  } catch (error) {
    throw new SyntaxError(
      `Cannot read '${file}' as it is not valid JSON: ${
        (error as Error).message
      }`,
    );
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new TypeError(
      `Cannot read '${file}' as it must hold a JSON object: current value is ${
        show(parsed)
      }`,
    );
  }
  return parsed as Record<string, unknown>;
}

/**
 * Reads and parses `scheduler_config.json` from `dir` (or `dir/subfolder`), as the schedulers'
 * `fromPretrained` do. Errors name the file.
 */
export async function readConfigFile(
  dir: string,
  options: FromPretrainedOptions = {},
): Promise<{ config: Record<string, unknown>; file: string }> {
  const file = [dir, options.subfolder, "scheduler_config.json"].filter(Boolean)
    .join("/");
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new Error(
      `Cannot read the scheduler config '${file}': ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return { config: parseConfigJson(text, file), file };
}

/**
 * Reads a config from `path`: a `scheduler_config.json` itself, or a model folder holding one
 * directly or in `scheduler/` (a pipeline's layout). Errors name the path.
 */
export async function readConfigPath(
  path: string,
): Promise<{ config: Record<string, unknown>; file: string }> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw new Error(
      `Cannot read the config '${path}': ${
        (error as Error).message
      } (expected a scheduler_config.json or a model folder holding one)`,
    );
  }
  if (!info.isDirectory) {
    return {
      config: parseConfigJson(await Deno.readTextFile(path), path),
      file: path,
    };
  }
  const subfolders = [undefined, "scheduler"];
  const files = subfolders.map((sub) =>
    [path, sub, "scheduler_config.json"].filter(Boolean).join("/")
  );
  for (let i = 0; i < files.length; i++) {
    if (await Deno.stat(files[i]!).then((f) => f.isFile, () => false)) {
      const subfolder = subfolders[i];
      return await readConfigFile(path, subfolder ? { subfolder } : {});
    }
  }
  throw new Error(
    `Cannot find a scheduler config in the folder '${path}': expected ${
      files.map((f) => `'${f}'`).join(" or ")
    }`,
  );
}

/**
 * Writes `config` to `dir/scheduler_config.json` (creating `dir` if missing), as diffusers
 * writes it.
 */
export async function writeConfigFile(
  dir: string,
  config: Record<string, unknown>,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/scheduler_config.json`,
    stringifyConfig(config),
  );
}

/** Serialises a config as diffusers writes it: sorted keys, 2-space indent, `-Infinity` tokens. */
export function stringifyConfig(config: Record<string, unknown>): string {
  const sorted = Object.fromEntries(
    Object.keys(config).sort().map((k) => [k, config[k]]),
  );
  const text = JSON.stringify(
    sorted,
    (_key, value) =>
      typeof value === "number" && !Number.isFinite(value)
        ? `${NON_FINITE_MARK}${value}`
        : value,
    2,
  );
  return replaceNonFiniteTokens(text, true) + "\n";
}

const NON_FINITE_MARK = "\u0000nonfinite:";

// Swaps bare NaN/Infinity tokens (outside strings) for marked strings, or back.
function replaceNonFiniteTokens(text: string, toTokens: boolean): string {
  if (toTokens) {
    return text.replace(/"\\u0000nonfinite:(-?Infinity|NaN)"/g, "$1");
  }
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i] ?? "";
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    const token = /^(-?Infinity|NaN)/.exec(text.slice(i, i + 9))?.[0];
    if (token) {
      out += JSON.stringify(`${NON_FINITE_MARK}${token}`);
      i += token.length - 1;
    } else {
      out += c;
    }
  }
  return out;
}
