/**
 * The built-in analytic models the CLI and the notebooks use, by name.
 *
 * @module
 */
import { GaussianData } from "./gaussian_data.ts";
import { GaussianMixture } from "./gaussian_mixture.ts";

/** Names of the {@link builtinAnalyticModel} models. */
export type BuiltinAnalyticModelName = "gaussian" | "mixture" | "mixture2d";

/** The names {@link builtinAnalyticModel} accepts. */
export const BUILTIN_ANALYTIC_MODELS: readonly BuiltinAnalyticModelName[] =
  Object.freeze(["gaussian", "mixture", "mixture2d"]);

/**
 * The analytic models the CLI, the notebook and the tests share:
 *
 * - `"gaussian"`: {@link GaussianData} with mean 0.5 and standard deviation 0.3, per element;
 * - `"mixture"`: a three-component 1-D {@link GaussianMixture} applied per element, weights
 *   0.3 / 0.5 / 0.2, means −1 / 0.25 / 1.5, standard deviations 0.2 / 0.3 / 0.15;
 * - `"mixture2d"`: a three-component isotropic 2-D mixture over the last axis (size 2), weights
 *   0.45 / 0.35 / 0.2, means (−1.2, −0.4) / (0.9, 0.8) / (0.6, −1.1), standard deviations
 *   0.2 / 0.3 / 0.15.
 *
 * @throws {RangeError} Another name.
 *
 * @example
 * ```ts
 * import { builtinAnalyticModel, GaussianMixture } from "@dpmsolver/scheduler/analytic";
 * import assert from "node:assert/strict";
 * const mixture = builtinAnalyticModel("mixture2d") as GaussianMixture;
 * assert.equal(mixture.dim, 2);
 * assert.equal(mixture.weights.length, 3);
 * ```
 */
export function builtinAnalyticModel(
  name: BuiltinAnalyticModelName,
): GaussianData | GaussianMixture {
  switch (name) {
    case "gaussian":
      return new GaussianData({ mean: 0.5, std: 0.3 });
    case "mixture":
      return new GaussianMixture({
        weights: [0.3, 0.5, 0.2],
        means: [-1, 0.25, 1.5],
        variances: [0.2 ** 2, 0.3 ** 2, 0.15 ** 2],
      });
    case "mixture2d":
      return new GaussianMixture({
        weights: [0.45, 0.35, 0.2],
        means: [[-1.2, -0.4], [0.9, 0.8], [0.6, -1.1]],
        variances: [0.2 ** 2, 0.3 ** 2, 0.15 ** 2],
      });
    default:
      throw new RangeError(
        `Cannot make a built-in analytic model as the name must be one of ${
          BUILTIN_ANALYTIC_MODELS.map((n) => `"${n}"`).join(", ")
        }: current value is "${name}"`,
      );
  }
}
