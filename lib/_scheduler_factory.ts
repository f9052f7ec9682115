/**
 * What the schedulers' `fromConfig` and `fromPretrained` share: reading another scheduler's
 * config, whose keys this one lacks are ignored (as diffusers' `from_config`).
 *
 * @module
 */
import type {
  ConfigSource,
  FromPretrainedOptions,
  SchedulerConfig,
} from "./config.ts";
import { parseConfigJson, readConfigFile } from "./_config_file.ts";
import { denoFileSystem } from "./_deno.ts";
import { describe } from "./_describe.ts";

/** A scheduler's config resolver: `resolveConfig` or `resolveMultistepConfig`. */
export type ConfigResolver<C extends SchedulerConfig> = (
  partial: Record<string, unknown>,
  options: { ignoreUnknown?: boolean } & ConfigSource,
) => Readonly<C>;

/** `fromConfig`'s config: `config` with `overrides` winning, keys `resolve` lacks ignored. */
export function resolveForeignConfig<C extends SchedulerConfig>(
  resolve: ConfigResolver<C>,
  config: Record<string, unknown>,
  overrides: Partial<C>,
): Readonly<C> {
  for (const [name, value] of [["config", config], ["overrides", overrides]]) {
    // `{ ...null }` is `{}`: without this check `fromConfig(null)` would give the defaults.
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new TypeError(
        `Cannot create the scheduler from a config as '${name}' must be an object of diffusers config keys: current value is ${
          describe(value)
        }`,
      );
    }
  }
  return resolve({ ...config, ...overrides }, { ignoreUnknown: true });
}

/**
 * `fromPretrained`'s config: `scheduler_config.json` in `dir` (or `dir/subfolder`), keys
 * `resolve` lacks ignored. `dir` is a folder (read with Deno's file system) or an http(s) URL of a
 * model repository's root (fetched: `<url>/<subfolder>/scheduler_config.json`, as on the
 * Hugging Face Hub `https://huggingface.co/<repo>/resolve/main`). Errors name the file.
 */
export async function readPretrainedConfig<C extends SchedulerConfig>(
  resolve: ConfigResolver<C>,
  dir: string,
  options: FromPretrainedOptions,
): Promise<Readonly<C>> {
  if (typeof dir !== "string") {
    throw new TypeError(
      `Cannot read a pretrained config as 'dir' must be a folder path or an http(s) URL string: current value is ${
        dir === null ? "null" : typeof dir
      }`,
    );
  }
  if (/^https?:\/\//i.test(dir)) {
    const url = [
      dir.replace(/\/+$/, ""),
      options.subfolder,
      "scheduler_config.json",
    ]
      .filter(Boolean).join("/");
    return resolve(await fetchConfig(url), { ignoreUnknown: true, file: url });
  }
  denoFileSystem(
    `read the scheduler config in '${dir}'`,
    "pass fromPretrained an http(s) URL of the model's folder, or the parsed JSON to fromConfig",
  );
  const { config, file } = await readConfigFile(dir, options);
  return resolve(config, { ignoreUnknown: true, file });
}

async function fetchConfig(url: string): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(
      `Cannot fetch the scheduler config '${url}': ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(
      `Cannot fetch the scheduler config '${url}': HTTP ${response.status} ${response.statusText}`,
    );
  }
  return parseConfigJson(await response.text(), url);
}
