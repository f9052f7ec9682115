/**
 * A strided float32 tensor: a view `(data, shape, strides, offset)` over a `Float32Array`.
 *
 * @module
 */
import { describe } from "./_describe.ts";
import {
  forEachRow,
  formatShape,
  internFrozen,
  isRowMajor,
  permuteLayout,
  rowMajorStrides,
  sizeOf,
  sliceLayout,
} from "./_shape.ts";

/**
 * A strided view over float32 data. Element `(i0, i1, …)` lives at
 * `data[offset + Σ strides[k]·ik]`; `slice`, `permute` and `reshape` of a contiguous tensor
 * return views that share `data`, only `contiguous()` (of a non-contiguous view), `clone()`
 * and `toFloat32Array()` copy.
 *
 * @example Views share data
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import assert from "node:assert/strict";
 *
 * const x = new Tensor(new Float32Array([0, 1, 2, 3, 4, 5]), [2, 3]);
 * const column = x.slice(1, 1, 2); // shape [2, 1], no copy
 * assert.deepEqual(Array.from(column.toFloat32Array()), [1, 4]);
 * const t = x.permute([1, 0]); // shape [3, 2], strides [1, 3]
 * assert.deepEqual(t.strides, [1, 3]);
 * t.set(9, 2, 1);
 * assert.equal(x.get(1, 2), 9);
 * ```
 */
export class Tensor {
  /** The underlying storage, shared by every view of it. */
  readonly data: Float32Array;
  /** Extent of each dimension. */
  readonly shape: readonly number[];
  /** Element step of each dimension in `data`. */
  readonly strides: readonly number[];
  /** Index in `data` of element `(0, 0, …)`. */
  readonly offset: number;
  /** Number of elements. */
  readonly size: number;

  /**
   * Wraps `data` without copying.
   *
   * @param data The float32 storage.
   * @param shape Extent of each dimension (non-negative integers).
   * @param strides Element step of each dimension; row-major by default.
   * @param offset Index of the first element in `data`; 0 by default.
   */
  constructor(
    data: Float32Array,
    shape: readonly number[],
    strides?: readonly number[],
    offset = 0,
  ) {
    if (!(data instanceof Float32Array)) {
      throw new TypeError(
        `Cannot create a Tensor as 'data' must be a Float32Array: current value is ${
          describe(data)
        }`,
      );
    }
    for (const n of shape) {
      if (!Number.isInteger(n) || n < 0) {
        throw new RangeError(
          `Cannot create a Tensor as 'shape' must hold non-negative integers: current value is ${
            formatShape(shape)
          }`,
        );
      }
    }
    const s = strides ?? rowMajorStrides(shape);
    if (s.length !== shape.length || !s.every(Number.isInteger)) {
      throw new RangeError(
        `Cannot create a Tensor as 'strides' must be ${shape.length} integers: current value is ${
          formatShape(s)
        }`,
      );
    }
    if (!Number.isInteger(offset) || offset < 0) {
      throw new RangeError(
        `Cannot create a Tensor as 'offset' must be a non-negative integer: current value is ${offset}`,
      );
    }
    const size = sizeOf(shape);
    if (size > 0) {
      let lo = offset;
      let hi = offset;
      shape.forEach((n, i) => {
        const span = (n - 1) * s[i]!;
        if (span < 0) lo += span;
        else hi += span;
      });
      if (lo < 0 || hi >= data.length) {
        throw new RangeError(
          `Cannot create a Tensor as shape ${formatShape(shape)} with strides ${
            formatShape(s)
          } and offset ${offset} reaches outside 'data' of length ${data.length}`,
        );
      }
    }
    this.data = data;
    this.shape = internFrozen(shape);
    this.strides = internFrozen(s);
    this.offset = offset;
    this.size = size;
  }

  /**
   * A new zero-filled contiguous tensor.
   *
   * @example
   * ```ts
   * import { Tensor } from "@dpmsolver/scheduler";
   * import assert from "node:assert/strict";
   * assert.equal(Tensor.zeros([2, 3]).size, 6);
   * ```
   */
  static zeros(shape: readonly number[]): Tensor {
    return new Tensor(new Float32Array(sizeOf(shape)), shape);
  }

  /**
   * A contiguous tensor holding `values` (copied and rounded to float32) in row-major order.
   *
   * @example
   * ```ts
   * import { Tensor } from "@dpmsolver/scheduler";
   * import assert from "node:assert/strict";
   * assert.equal(Tensor.from([1, 2, 3, 4], [2, 2]).get(1, 0), 3);
   * ```
   */
  static from(
    values: ArrayLike<number>,
    shape: readonly number[] = [values.length],
  ): Tensor {
    if (values.length !== sizeOf(shape)) {
      throw new RangeError(
        `Cannot create a Tensor as 'shape' ${formatShape(shape)} holds ${
          sizeOf(shape)
        } elements: current length of 'values' is ${values.length}`,
      );
    }
    return new Tensor(Float32Array.from(values), shape);
  }

  /** Index in `data` of the element at `indices` (`offset + Σ strides[k]·indices[k]`). */
  index(...indices: number[]): number {
    if (indices.length !== this.shape.length) {
      throw new RangeError(
        `Cannot index as 'indices' must have ${this.shape.length} entries: current value is ${
          formatShape(indices)
        }`,
      );
    }
    let at = this.offset;
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      if (!Number.isInteger(i) || i < 0 || i >= this.shape[k]!) {
        throw new RangeError(
          `Cannot index as index ${i} of dimension ${k} is outside [0, ${
            this.shape[k]
          })`,
        );
      }
      at += i * this.strides[k]!;
    }
    return at;
  }

  /** The element at `indices`. */
  get(...indices: number[]): number {
    return this.data[this.index(...indices)]!;
  }

  /** Writes `value` at `indices` (through to every view of the same data). */
  set(value: number, ...indices: number[]): void {
    this.data[this.index(...indices)] = value;
  }

  /** Whether the elements are laid out row-major without gaps, so `data` can be walked flat. */
  isContiguous(): boolean {
    return isRowMajor(this.shape, this.strides);
  }

  /**
   * The same elements as a view of another shape (one entry may be -1). A contiguous tensor is
   * reshaped without copying; a non-contiguous one is copied first, as torch's `reshape` does.
   */
  reshape(shape: readonly number[]): Tensor {
    const known = shape.filter((n) => n !== -1);
    const inferred = shape.length - known.length;
    const knownSize = sizeOf(known);
    const resolved = inferred === 1 && knownSize > 0
      ? shape.map((n) => (n === -1 ? this.size / knownSize : n))
      : [...shape];
    if (
      inferred > 1 || sizeOf(resolved) !== this.size ||
      !resolved.every(Number.isInteger)
    ) {
      throw new RangeError(
        `Cannot reshape as 'shape' ${
          formatShape(shape)
        } does not hold ${this.size} elements of shape ${
          formatShape(this.shape)
        }`,
      );
    }
    const base = this.contiguous();
    return new Tensor(base.data, resolved, undefined, base.offset);
  }

  /** A view with the dimensions reordered: result dimension k is this tensor's `dims[k]`. */
  permute(dims: readonly number[]): Tensor {
    const { shape, strides, offset } = permuteLayout(this, dims);
    return new Tensor(this.data, shape, strides, offset);
  }

  /** A view of `[start, end)` along dimension `dim` (no copy). */
  slice(dim: number, start: number, end: number = this.shape[dim]!): Tensor {
    const { shape, strides, offset } = sliceLayout(this, dim, start, end);
    return new Tensor(this.data, shape, strides, offset);
  }

  /** This tensor if it is contiguous, else a row-major copy. */
  contiguous(): Tensor {
    return this.isContiguous() ? this : this.clone();
  }

  /** A contiguous copy. */
  clone(): Tensor {
    return new Tensor(this.toFloat32Array(), this.shape);
  }

  /** A row-major copy of the elements. */
  toFloat32Array(): Float32Array {
    const out = new Float32Array(this.size);
    if (this.isContiguous()) {
      out.set(this.data.subarray(this.offset, this.offset + this.size));
      return out;
    }
    const rank = this.shape.length;
    const inner = this.shape[rank - 1]!;
    const innerStride = this.strides[rank - 1]!;
    let k = 0;
    forEachRow(this.shape, [this], (offsets) => {
      for (let i = 0, at = offsets[0]!; i < inner; i++, at += innerStride) {
        out[k++] = this.data[at]!;
      }
    });
    return out;
  }
}
