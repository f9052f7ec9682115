/**
 * The CPU backend: the kernels as plain loops over strided `Float32Array` views, each operation
 * rounded with `Math.fround`. It is the default backend and the reference for the others.
 *
 * @module
 */
import { f32, lerpF32, quantileRank } from "../_f32.ts";
import { checkHistory, checkSameShape, forEachRow, sizeOf } from "../_shape.ts";
import type { Kernels } from "../kernels.ts";
import type { MultistepCoefficients } from "../solver.ts";
import { Tensor } from "../tensor.ts";

function allContiguous(tensors: readonly Tensor[]): boolean {
  return tensors.every((t) => t.isContiguous());
}

/**
 * Runs `body(offsets, length, strides)` over the innermost rows of the operands, or once over
 * the whole flat range when every operand is contiguous.
 */
function rows(
  operands: readonly Tensor[],
  body: (
    offsets: ArrayLike<number>,
    length: number,
    strides: ArrayLike<number>,
  ) => void,
): void {
  const shape = operands[0]!.shape;
  if (allContiguous(operands)) {
    body(operands.map((t) => t.offset), sizeOf(shape), operands.map(() => 1));
    return;
  }
  const last = shape.length - 1;
  const length = last < 0 ? 1 : shape[last]!;
  const strides = operands.map((t) => (last < 0 ? 1 : t.strides[last]!));
  forEachRow(shape, operands, (offsets) => body(offsets, length, strides));
}

/** The CPU kernels. */
export class CpuKernels implements Kernels<Tensor> {
  readonly name = "cpu";
  #scratch = new Float32Array(0);

  owns(value: unknown): value is Tensor {
    return value instanceof Tensor;
  }

  empty(shape: readonly number[]): Tensor {
    return Tensor.zeros(shape);
  }

  copy(out: Tensor, x: Tensor): void {
    checkSameShape("copy", out, x);
    const od = out.data;
    const xd = x.data;
    rows([out, x], (o, n, s) => {
      for (
        let i = 0, po = o[0]!, px = o[1]!;
        i < n;
        i++, po += s[0]!, px += s[1]!
      ) od[po] = xd[px]!;
    });
  }

  axpbyDiv(
    out: Tensor,
    a: number,
    x: Tensor,
    b: number,
    y: Tensor | null,
    d: number,
  ): void {
    checkSameShape("axpbyDiv", out, x);
    const od = out.data;
    const xd = x.data;
    if (y === null) {
      rows([out, x], (o, n, s) => {
        for (
          let i = 0, po = o[0]!, px = o[1]!;
          i < n;
          i++, po += s[0]!, px += s[1]!
        ) {
          od[po] = f32(a * xd[px]!) / d;
        }
      });
      return;
    }
    checkSameShape("axpbyDiv", out, y);
    const yd = y.data;
    rows([out, x, y], (o, n, s) => {
      const so = s[0]!;
      const sx = s[1]!;
      const sy = s[2]!;
      for (
        let i = 0, po = o[0]!, px = o[1]!, py = o[2]!;
        i < n;
        i++, po += so, px += sx, py += sy
      ) {
        od[po] = f32(f32(a * xd[px]!) + f32(b * yd[py]!)) / d;
      }
    });
  }

  threshold(x: Tensor, ratio: number, maxValue: number): void {
    const batch = x.shape[0] ?? 1;
    const perItem = batch === 0 ? 0 : x.size / batch;
    if (perItem === 0) return;
    if (this.#scratch.length < perItem) {
      this.#scratch = new Float32Array(perItem);
    }
    const scratch = this.#scratch;
    for (let item = 0; item < batch; item++) {
      const row = x.shape.length === 0 ? x : x.slice(0, item, item + 1);
      let k = 0;
      let hasNaN = false;
      rows([row], (o, n, s) => {
        for (let i = 0, p = o[0]!; i < n; i++, p += s[0]!) {
          const v = Math.abs(row.data[p]!);
          if (v !== v) hasNaN = true;
          scratch[k++] = v;
        }
      });
      const level = hasNaN ? NaN : torchQuantile(scratch, perItem, ratio);
      // torch.clamp(s, min=1, max=sample_max_value) propagates NaN.
      const s = level !== level
        ? NaN
        : Math.min(Math.max(level, 1), f32(maxValue));
      const data = row.data;
      rows([row], (o, n, st) => {
        for (let i = 0, p = o[0]!; i < n; i++, p += st[0]!) {
          const v = data[p]!;
          data[p] = (v < -s ? -s : v > s ? s : v) / s;
        }
      });
    }
  }

  multistep(
    out: Tensor,
    sample: Tensor,
    history: readonly Tensor[],
    c: MultistepCoefficients,
    noise: Tensor | null,
  ): void {
    checkSameShape("multistep", out, sample);
    checkHistory("multistep", out, history, c.order, c.order);
    if (noise) checkSameShape("multistep", out, noise);
    const { a, b } = c;
    const od = out.data;
    const xd = sample.data;
    const m0d = history[0]!.data;
    if (c.order === 1) {
      rows([out, sample, history[0]!], (o, n, s) => {
        for (
          let i = 0, po = o[0]!, px = o[1]!, p0 = o[2]!;
          i < n;
          i++, po += s[0]!, px += s[1]!, p0 += s[2]!
        ) {
          od[po] = f32(a * xd[px]!) + f32(b * m0d[p0]!);
        }
      });
    } else if (c.order === 2) {
      const { c: cc, k0 } = c;
      const m1d = history[1]!.data;
      rows([out, sample, history[0]!, history[1]!], (o, n, s) => {
        for (
          let i = 0, po = o[0]!, px = o[1]!, p0 = o[2]!, p1 = o[3]!;
          i < n;
          i++, po += s[0]!, px += s[1]!, p0 += s[2]!, p1 += s[3]!
        ) {
          const m0 = m0d[p0]!;
          const d1 = f32(k0 * f32(m0 - m1d[p1]!));
          od[po] = f32(f32(a * xd[px]!) + f32(b * m0)) + f32(cc * d1);
        }
      });
    } else {
      const { c: cc, d, k0, k1, q, k2 } = c;
      const m1d = history[1]!.data;
      const m2d = history[2]!.data;
      rows([out, sample, history[0]!, history[1]!, history[2]!], (o, n, s) => {
        for (
          let i = 0, po = o[0]!, px = o[1]!, p0 = o[2]!, p1 = o[3]!, p2 = o[4]!;
          i < n;
          i++, po += s[0]!, px += s[1]!, p0 += s[2]!, p1 += s[3]!, p2 += s[4]!
        ) {
          const m0 = m0d[p0]!;
          const m1 = m1d[p1]!;
          const d10 = f32(k0 * f32(m0 - m1));
          const d11 = f32(k1 * f32(m1 - m2d[p2]!));
          const diff = f32(d10 - d11);
          const d1 = f32(d10 + f32(q * diff));
          const d2 = f32(k2 * diff);
          od[po] = f32(f32(f32(a * xd[px]!) + f32(b * m0)) + f32(cc * d1)) +
            f32(d * d2);
        }
      });
    }
    if (c.e !== 0 && noise) {
      const e = c.e;
      const nd = noise.data;
      rows([out, noise], (o, n, s) => {
        for (
          let i = 0, po = o[0]!, pn = o[1]!;
          i < n;
          i++, po += s[0]!, pn += s[1]!
        ) {
          od[po] = od[po]! + f32(e * nd[pn]!);
        }
      });
    }
  }
}

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
