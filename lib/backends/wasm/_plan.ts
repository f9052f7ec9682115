// What a WebAssembly call can take, decided before it runs: float32 coefficients (else the
// TypeScript kernels compute what the module cannot), the order statistics of thresholding's
// quantile, and whether blocks in the module's memory overlap.
import { f32, quantileRank } from "../../_f32.ts";
import type { MultistepCoefficients } from "../../solver.ts";
import type { Tensor } from "../../tensor.ts";

// The smallest item the sampled quantile takes (wasm/kernels.ts: 8 · 2^10).
export const SAMPLED_MIN = 8 << 10;

// Whether `v` is a float32 value (or NaN), so that the module computes what f32() does.
export function isF32(v: number): boolean {
  return Math.fround(v) === v || v !== v;
}

// Whether the coefficients an update uses are float32 values.
export function coefficientsF32(
  c: MultistepCoefficients,
  withNoise: boolean,
): boolean {
  return isF32(c.a) && isF32(c.b) && isF32(c.c) && isF32(c.d) &&
    isF32(c.k0) && isF32(c.k1) && isF32(c.q) && isF32(c.k2) &&
    (!withNoise || isF32(c.e));
}

// Where torch.quantile(|x_item|, ratio) lies per item of dimension 0: between order statistics
// `below` and `below + 1`, at `weight`; null where the ranks fall outside the item.
export interface QuantileRanks {
  batch: number;
  perItem: number;
  below: number;
  weight: number;
}

export function quantileRanks(x: Tensor, ratio: number): QuantileRanks | null {
  const batch = x.shape.length === 0 ? 1 : x.shape[0]!;
  const perItem = batch === 0 ? 0 : x.size / batch;
  if (perItem === 0) return { batch, perItem, below: 0, weight: 0 };
  const rank = quantileRank(ratio, perItem);
  const below = Math.trunc(rank);
  const weight = f32(rank - below);
  const inside = below >= 0 && below < perItem &&
    (weight === 0 || below + 1 < perItem);
  return inside ? { batch, perItem, below, weight } : null;
}

// Whether the `bytes`-long blocks at byte pointers `p` and `q` overlap.
export function clash(p: number, q: number, bytes: number): boolean {
  return p < q + bytes && q < p + bytes;
}
