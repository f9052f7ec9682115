// Shape helpers shared by the tensor types and the kernels.

/** Row-major strides for `shape`, built from the last axis back. */
export function rowMajorStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = stride;
    stride *= shape[i]!;
  }
  return strides;
}

// Frozen shapes and strides by value: equal ones are one array, so that `sameShape` is mostly
// an identity test (V8 reads the elements of frozen arrays slowly, and a scheduler step compares
// shapes several times). Bounded: past the cap, arrays are frozen copies, compared by element.
const interned = new Map<string, readonly number[]>();
const MAX_INTERNED = 4096;

/** A frozen array equal to `values`: the same one for equal values (up to a cap). */
export function internFrozen(values: readonly number[]): readonly number[] {
  const key = values.join(",");
  let frozen = interned.get(key);
  if (frozen === undefined) {
    frozen = Object.freeze([...values]);
    if (interned.size < MAX_INTERNED) interned.set(key, frozen);
  }
  return frozen;
}

/** Number of elements of `shape`. */
export function sizeOf(shape: readonly number[]): number {
  let size = 1;
  for (const n of shape) size *= n;
  return size;
}

/** Whether two shapes are equal. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  // Equal shapes are usually one interned array; else a plain loop (`every` over the frozen
  // arrays is slow).
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `[2, 4, 64, 64]`, as shapes print in error messages. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Checks that a kernel's operand has the shape of its output.
 *
 * @throws {TypeError} The shapes differ.
 */
export function checkSameShape(
  name: string,
  out: { readonly shape: readonly number[] },
  other: { readonly shape: readonly number[] },
): void {
  if (!sameShape(out.shape, other.shape)) {
    throw new TypeError(
      `Cannot run ${name} as the operands' shapes differ: ${
        formatShape(out.shape)
      } and ${formatShape(other.shape)}`,
    );
  }
}

/**
 * Checks that an order-`order` update's `history` has the `needed` entries it reads, each of
 * `out`'s shape.
 *
 * @throws {TypeError} Too few entries, or a shape differs.
 */
export function checkHistory(
  name: string,
  out: { readonly shape: readonly number[] },
  history: readonly { readonly shape: readonly number[] }[],
  needed: number,
  order: number,
): void {
  if (history.length < needed) {
    throw new TypeError(
      `Cannot run ${name} as an order-${order} update needs ${needed} ${
        needed === 1 ? "entry" : "entries"
      } in 'history': current count is ${history.length}`,
    );
  }
  for (let k = 0; k < needed; k++) checkSameShape(name, out, history[k]!);
}

/**
 * Checks the operands of a fused step (`convertAndUpdate`, `thresholdAndUpdate`): `sample`,
 * `x` and `y` (when not null) in order, then the `order - 1` entries of `history` the update reads, then the noise when the
 * update adds it, each of `out`'s shape. Returns that noise (`noise` when `c.e` is not 0), else
 * null. The operands are separate parameters so that the check allocates nothing per step.
 *
 * @throws {TypeError} Too few history entries, or a shape differs.
 */
export function checkFusedUpdate<
  T extends { readonly shape: readonly number[] },
>(
  name: string,
  out: T,
  sample: T,
  x: T,
  y: T | null,
  history: readonly T[],
  c: { readonly order: number; readonly e: number },
  noise: T | null,
): T | null {
  checkSameShape(name, out, sample);
  checkSameShape(name, out, x);
  if (y !== null) checkSameShape(name, out, y);
  checkHistory(name, out, history, c.order - 1, c.order);
  if (c.e === 0 || noise === null) return null;
  checkSameShape(name, out, noise);
  return noise;
}

/** Whether (shape, strides) lays the elements out row-major without gaps. */
export function isRowMajor(
  shape: readonly number[],
  strides: readonly number[],
): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const n = shape[i]!;
    if (n !== 1 && strides[i] !== expected) return false;
    expected *= n;
  }
  return true;
}

/** A strided layout: what the kernels need to address an operand. */
export interface Layout {
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}

/**
 * Calls `row(offsets)` once per innermost row of `shape`, in row-major order, with the element
 * offset of the row's first element in each operand; the caller walks the row with each
 * operand's last stride. A 0-d shape is one row of length 1.
 */
export function forEachRow(
  shape: readonly number[],
  operands: readonly Layout[],
  row: (offsets: Int32Array | number[]) => void,
): void {
  const rank = shape.length;
  const count = operands.length;
  const offsets = operands.map((o) => o.offset);
  if (rank <= 1) {
    if (sizeOf(shape) > 0) row(offsets);
    return;
  }
  if (sizeOf(shape) === 0) return;
  const index = new Array<number>(rank - 1).fill(0);
  for (;;) {
    row(offsets);
    let d = rank - 2;
    for (; d >= 0; d--) {
      index[d]!++;
      for (let k = 0; k < count; k++) offsets[k]! += operands[k]!.strides[d]!;
      if (index[d]! < shape[d]!) break;
      for (let k = 0; k < count; k++) {
        offsets[k]! -= operands[k]!.strides[d]! * shape[d]!;
      }
      index[d] = 0;
    }
    if (d < 0) return;
  }
}

/**
 * The layout of the view `[start, end)` along `dim` of `layout` (same strides, shifted offset).
 *
 * @throws {RangeError} A dimension or range outside the layout.
 */
export function sliceLayout(
  layout: Layout,
  dim: number,
  start: number,
  end: number,
): Layout {
  const rank = layout.shape.length;
  if (!Number.isInteger(dim) || dim < 0 || dim >= rank) {
    throw new RangeError(
      `Cannot slice as 'dim' must be an integer in [0, ${rank}): current value is ${dim}`,
    );
  }
  const n = layout.shape[dim]!;
  if (
    !Number.isInteger(start) || !Number.isInteger(end) || start < 0 ||
    end > n || start > end
  ) {
    throw new RangeError(
      `Cannot slice as [start, end) must lie within [0, ${n}] of dimension ${dim}: current value is [${start}, ${end})`,
    );
  }
  const shape = [...layout.shape];
  shape[dim] = end - start;
  return {
    shape,
    strides: layout.strides,
    offset: layout.offset + start * layout.strides[dim]!,
  };
}

/**
 * The layout with dimensions reordered: result dimension k is `layout`'s `dims[k]`.
 *
 * @throws {RangeError} `dims` is not a permutation of the dimensions.
 */
export function permuteLayout(layout: Layout, dims: readonly number[]): Layout {
  const rank = layout.shape.length;
  const sorted = [...dims].sort((a, b) => a - b);
  if (dims.length !== rank || !sorted.every((d, i) => d === i)) {
    throw new RangeError(
      `Cannot permute as 'dims' must be a permutation of 0..${
        rank - 1
      }: current value is ${formatShape(dims)}`,
    );
  }
  return {
    shape: dims.map((d) => layout.shape[d]!),
    strides: dims.map((d) => layout.strides[d]!),
    offset: layout.offset,
  };
}
