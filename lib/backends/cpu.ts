/**
 * The CPU backend: the kernels as plain loops over strided `Float32Array` views, each operation
 * rounded with `Math.fround`. It is the fallback where WebAssembly SIMD is missing and the
 * reference for the other backends. Contiguous operands take flat loops (one function per
 * kernel, typed arrays and offsets as arguments, so that the JIT compiles each to a tight loop);
 * strided views walk their innermost rows. A whole scheduler step is one fused pass
 * (`convertAndUpdate`, `thresholdAndUpdate`), as in the other backends.
 *
 * @module
 */
// The flat loops over contiguous operands live in cpu/_flat_loops.ts, torch.quantile by
// selection in cpu/_quantile.ts.
import { convertThenUpdate } from "../_convert.ts";
import { f32 } from "../_f32.ts";
import {
  checkFusedUpdate,
  checkHistory,
  checkSameShape,
  forEachRow,
  sizeOf,
} from "../_shape.ts";
import type { Kernels, ModelOutputConversion } from "../kernels.ts";
import type { MultistepCoefficients } from "../solver.ts";
import { Tensor } from "../tensor.ts";
import {
  axFlat,
  AXPBY,
  axpbyFlat,
  CLAMP,
  clampFlat,
  COPY,
  LOAD,
  updateFlat,
} from "./cpu/_flat_loops.ts";
import { torchQuantile } from "./cpu/_quantile.ts";
import { overlaps } from "./_overlap.ts";

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
    if (out.isContiguous() && x.isContiguous()) {
      // TypedArray#set copies as if through a temporary where the two overlap.
      out.data.set(x.data.subarray(x.offset, x.offset + x.size), out.offset);
      return;
    }
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
    if (y !== null) checkSameShape("axpbyDiv", out, y);
    if (
      out.isContiguous() && x.isContiguous() && (y === null || y.isContiguous())
    ) {
      if (y === null) {
        axFlat(out.data, out.offset, a, x.data, x.offset, d, out.size);
      } else {
        axpbyFlat(
          out.data,
          out.offset,
          a,
          x.data,
          x.offset,
          b,
          y.data,
          y.offset,
          d,
          out.size,
        );
      }
      return;
    }
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
    if (x.isContiguous()) {
      const data = x.data;
      for (let item = 0; item < batch; item++) {
        const at = x.offset + item * perItem;
        const s = this.#level(data, at, perItem, ratio, maxValue);
        clampFlat(data, at, s, perItem);
      }
      return;
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
    if (
      out.isContiguous() && sample.isContiguous() &&
      history.every((h, k) => k >= c.order || h.isContiguous()) &&
      (c.e === 0 || !noise || noise.isContiguous())
    ) {
      const h0 = history[0]!;
      const h1 = c.order >= 2 ? history[1]! : h0;
      const h2 = c.order >= 3 ? history[2]! : h0;
      updateFlat(
        c,
        out.data,
        out.offset,
        sample.data,
        sample.offset,
        LOAD,
        h0.data,
        h0.offset,
        h0.data,
        h0.offset,
        0,
        0,
        1,
        h0.data,
        h0.offset,
        h1.data,
        h1.offset,
        h2.data,
        h2.offset,
        c.e !== 0 && noise ? noise.data : null,
        noise ? noise.offset : 0,
        out.size,
      );
      return;
    }
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

  // Reductions for iterative solvers (exact inversion), accumulated in float64.
  maxAbs(x: Tensor): number {
    let max = 0;
    rows([x], (o, n, s) => {
      for (let i = 0, p = o[0]!; i < n; i++, p += s[0]!) {
        const v = Math.abs(x.data[p]!);
        if (v > max || v !== v) max = v; // NaN sticks
      }
    });
    return max;
  }

  dot(x: Tensor, y: Tensor): number {
    checkSameShape("dot", x, y);
    let sum = 0;
    rows([x, y], (o, n, s) => {
      for (
        let i = 0, px = o[0]!, py = o[1]!;
        i < n;
        i++, px += s[0]!, py += s[1]!
      ) sum += x.data[px]! * y.data[py]!;
    });
    return sum;
  }

  /**
   * Model-output conversion into `converted` and the update into `out` in one pass over
   * contiguous operands (see {@link Kernels.convertAndUpdate}); the separate kernels otherwise,
   * or when `converted` shares memory with another operand. The same bits either way.
   */
  convertAndUpdate(
    out: Tensor,
    converted: Tensor,
    sample: Tensor,
    modelOutput: Tensor,
    conversion: ModelOutputConversion,
    history: readonly Tensor[],
    c: MultistepCoefficients,
    noise: Tensor | null,
  ): void {
    const order = c.order;
    const noiseTerm = checkFusedUpdate(
      "convertAndUpdate",
      out,
      sample,
      converted,
      modelOutput,
      history,
      c,
      noise,
    );
    const withNoise = noiseTerm !== null;
    const m1 = order >= 2 ? history[0]! : converted;
    const m2 = order >= 3 ? history[1]! : converted;
    if (
      !(out.isContiguous() && converted.isContiguous() &&
        sample.isContiguous() && modelOutput.isContiguous() &&
        m1.isContiguous() && m2.isContiguous() &&
        (!withNoise || noiseTerm.isContiguous())) ||
      overlaps(converted, out) || overlaps(converted, sample) ||
      overlaps(converted, modelOutput) ||
      (order >= 2 && overlaps(converted, m1)) ||
      (order >= 3 && overlaps(converted, m2)) ||
      (withNoise && overlaps(converted, noiseTerm))
    ) {
      return convertThenUpdate(
        this,
        out,
        converted,
        sample,
        modelOutput,
        conversion,
        history,
        c,
        noise,
      );
    }
    const { form } = conversion;
    const sampleFirst = form === "sample-first";
    const [pt, qt] = sampleFirst
      ? [sample, modelOutput]
      : [modelOutput, sample];
    updateFlat(
      c,
      out.data,
      out.offset,
      sample.data,
      sample.offset,
      form === "copy" ? COPY : AXPBY,
      pt.data,
      pt.offset,
      qt.data,
      qt.offset,
      conversion.a,
      conversion.b,
      conversion.d,
      converted.data,
      converted.offset,
      m1.data,
      m1.offset,
      m2.data,
      m2.offset,
      withNoise ? noiseTerm.data : null,
      withNoise ? noiseTerm.offset : 0,
      out.size,
    );
  }

  /**
   * Dynamic thresholding of `x0` with the clamp and divide fused into the update (see
   * {@link Kernels.thresholdAndUpdate}): per item the quantile as {@link threshold} finds it,
   * then one pass that writes the thresholded `x0` and the update. Contiguous operands only;
   * the separate kernels otherwise. The same bits either way.
   */
  thresholdAndUpdate(
    out: Tensor,
    x0: Tensor,
    sample: Tensor,
    ratio: number,
    maxValue: number,
    history: readonly Tensor[],
    c: MultistepCoefficients,
    noise: Tensor | null,
  ): void {
    const order = c.order;
    const noiseTerm = checkFusedUpdate(
      "thresholdAndUpdate",
      out,
      sample,
      x0,
      null,
      history,
      c,
      noise,
    );
    const withNoise = noiseTerm !== null;
    const m1 = order >= 2 ? history[0]! : x0;
    const m2 = order >= 3 ? history[1]! : x0;
    const batch = x0.shape.length === 0 ? 1 : x0.shape[0]!;
    const perItem = batch === 0 ? 0 : x0.size / batch;
    if (
      perItem === 0 ||
      !(out.isContiguous() && x0.isContiguous() && sample.isContiguous() &&
        m1.isContiguous() && m2.isContiguous() &&
        (!withNoise || noiseTerm.isContiguous())) ||
      overlaps(x0, out) || overlaps(x0, sample) ||
      (order >= 2 && overlaps(x0, m1)) || (order >= 3 && overlaps(x0, m2)) ||
      (withNoise && overlaps(x0, noiseTerm))
    ) {
      this.threshold(x0, ratio, maxValue);
      this.multistep(out, sample, [x0, ...history].slice(0, order), c, noise);
      return;
    }
    const xd = x0.data;
    for (let item = 0; item < batch; item++) {
      const at = item * perItem;
      const s = this.#level(xd, x0.offset + at, perItem, ratio, maxValue);
      updateFlat(
        c,
        out.data,
        out.offset + at,
        sample.data,
        sample.offset + at,
        CLAMP,
        xd,
        x0.offset + at,
        xd,
        x0.offset + at,
        s,
        -s,
        s,
        xd,
        x0.offset + at,
        m1.data,
        m1.offset + at,
        m2.data,
        m2.offset + at,
        withNoise ? noiseTerm.data : null,
        withNoise ? noiseTerm.offset + at : 0,
        perItem,
      );
    }
  }

  // Dynamic thresholding's level of the contiguous item data[at:at + n]: the `ratio` quantile
  // of |x| clamped to [1, maxValue] as torch.clamp does (NaN when the item holds a NaN).
  #level(
    data: Float32Array,
    at: number,
    n: number,
    ratio: number,
    maxValue: number,
  ): number {
    if (this.#scratch.length < n) this.#scratch = new Float32Array(n);
    const scratch = this.#scratch;
    let hasNaN = false;
    for (let i = 0; i < n; i++) {
      const v = Math.abs(data[at + i]!);
      if (v !== v) hasNaN = true;
      scratch[i] = v;
    }
    const level = hasNaN ? NaN : torchQuantile(scratch, n, ratio);
    return level !== level ? NaN : Math.min(Math.max(level, 1), f32(maxValue));
  }
}
