// The plan of dynamic thresholding on the device, as pure arithmetic: torch.quantile's two ranks
// and weight (host scalars, from the sizes alone) and the radix select's dispatches (four rounds
// of a histogram per window of whole batch items, then a scan), before the apply pass.
import type { Chunk } from "./_chunks.ts";
import { WORKGROUP_SIZE } from "./_wgsl.ts";

/** One dispatch of the radix select: which shader, which round, over which window. */
export interface SelectionStep<B> {
  kind: "histogram" | "scan";
  /** The round, 0…3: which 8 bits of |x| it fixes. */
  pass: number;
  /** The window bound (any window for the scan, which reads only the scratch buffers). */
  chunk: Chunk<B>;
  groups: readonly [number, number];
}

/** What the kernels need to record a thresholding pass. */
export interface ThresholdPlan<B> {
  /** Elements per batch item (dimension 0). */
  perItem: number;
  /** The 0-based ranks of the two order statistics torch.quantile interpolates between. */
  below: number;
  above: number;
  /** coef 9–11 of the apply pass: the interpolation weight, 1 − weight, sample_max_value. */
  coef: readonly [number, number, number];
  /** The select's dispatches in order. */
  steps: SelectionStep<B>[];
}

/**
 * The thresholding plan of a tensor of `shape` (not empty) whose windows of whole batch items
 * are `chunks` (from `planChunks(…, items = batch)`).
 *
 * @throws {RangeError} A batch larger than `maxGroups` (one workgroup row per item).
 */
export function thresholdPlan<B>(
  name: string,
  shape: readonly number[],
  ratio: number,
  maxValue: number,
  chunks: readonly Chunk<B>[],
  maxGroups: number,
): ThresholdPlan<B> {
  const batch = shape[0] ?? 1;
  const size = shape.reduce((a, b) => a * b, 1);
  const perItem = size / batch;
  if (batch > maxGroups) {
    throw new RangeError(
      `Cannot run ${name} as the batch size must be at most ${maxGroups} on this device: current value is ${batch}`,
    );
  }
  // torch.quantile's rank and weight depend only on the sizes, in float32 as torch computes them.
  const rank = Math.fround(Math.fround(ratio) * (perItem - 1));
  const below = Math.trunc(rank);
  const weight = Math.fround(rank - below);
  const above = weight === 0 ? below : below + 1;
  const perRowGroups = Math.min(
    Math.ceil(perItem / WORKGROUP_SIZE),
    maxGroups,
    1024,
  );
  const steps: SelectionStep<B>[] = [];
  for (let pass = 0; pass < 4; pass++) {
    for (const chunk of chunks) {
      steps.push({
        kind: "histogram",
        pass,
        chunk,
        groups: [perRowGroups, chunk.count / perItem],
      });
    }
    steps.push({ kind: "scan", pass, chunk: chunks[0]!, groups: [batch, 1] });
  }
  return {
    perItem,
    below,
    above,
    coef: [weight, Math.fround(1 - weight), Math.fround(maxValue)],
    steps,
  };
}
