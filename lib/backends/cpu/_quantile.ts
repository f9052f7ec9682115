// torch.quantile for the CPU backend's dynamic thresholding: the two order statistics around
// the quantile's rank found by selection (quickselect) instead of a sort.
import { f32, lerpF32, quantileRank } from "../../_f32.ts";

/**
 * `torch.quantile(values[0:n], q)` with linear interpolation, found by selection instead of a
 * sort. Reorders `values`.
 */
export function torchQuantile(
  values: Float32Array,
  n: number,
  q: number,
): number {
  const rank = quantileRank(q, n);
  const below = Math.trunc(rank);
  const weight = f32(rank - below);
  const low = select(values, n, below);
  let high = low;
  if (weight !== 0) {
    // After selecting `below`, the next order statistic is the minimum of what lies above it.
    high = Infinity;
    for (let i = below + 1; i < n; i++) {
      if (values[i]! < high) high = values[i]!;
    }
  }
  return lerpF32(low, high, weight);
}

// Quickselect (Hoare partition, median of three): after it, values[k] holds the k-th smallest
// of values[0:n], everything before is ≤ it and everything after ≥ it.
function select(values: Float32Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! < values[lo]!) swap(values, mid, lo);
    if (values[hi]! < values[lo]!) swap(values, hi, lo);
    if (values[hi]! < values[mid]!) swap(values, hi, mid);
    const pivot = values[mid]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        swap(values, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return values[k]!;
}

function swap(values: Float32Array, i: number, j: number): void {
  const t = values[i]!;
  values[i] = values[j]!;
  values[j] = t;
}
