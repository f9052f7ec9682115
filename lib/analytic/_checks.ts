// The argument checks the analytic models share.
import type { AlphaSigma } from "../noise_schedule.ts";

export function checkPredictionType(type: string): void {
  if (type !== "epsilon" && type !== "sample" && type !== "v_prediction") {
    throw new RangeError(
      `Cannot run the analytic model as 'prediction_type' must be "epsilon", "sample" or "v_prediction": current value is "${type}"`,
    );
  }
}

export function checkLevel(
  { alphaT, sigmaT }: AlphaSigma,
  operation: string,
): void {
  if (
    !(alphaT > 0 && Number.isFinite(alphaT) && sigmaT >= 0 &&
      Number.isFinite(sigmaT))
  ) {
    throw new RangeError(
      `Cannot ${operation} as the noise level needs alpha_t > 0 and sigma_t >= 0: current values are ${alphaT} and ${sigmaT}`,
    );
  }
}

export function checkLength(length: number, dim: number): void {
  if (length % dim !== 0) {
    throw new TypeError(
      `Cannot run the analytic model as the number of values must be a multiple of its dimension ${dim}: current value is ${length}`,
    );
  }
}
