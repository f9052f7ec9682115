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
import { readConfigFile } from "./_config_file.ts";
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
 * `resolve` lacks ignored. Errors name the file.
 */
export async function readPretrainedConfig<C extends SchedulerConfig>(
  resolve: ConfigResolver<C>,
  dir: string,
  options: FromPretrainedOptions,
): Promise<Readonly<C>> {
  const { config, file } = await readConfigFile(dir, options);
  return resolve(config, { ignoreUnknown: true, file });
}
