// The chunk planner of the WebGPU kernels: pure layout arithmetic, testable without a device.
// An element-wise pass over strided operands merges the dimensions every operand walks
// contiguously, then cuts the merged layout into chunks (one dispatch each) whose binding windows
// (aligned to minStorageBufferOffsetAlignment) fit maxStorageBufferBindingSize.
import { formatShape, type Layout, sizeOf } from "../../_shape.ts";
import { MAX_RANK } from "./_wgsl.ts";

/** Most dispatches one pass over a tensor is split into (binding windows × rows). */
export const MAX_CHUNKS = 4096;

/** A strided operand: its layout in floats, and the buffer it lives in (opaque here). */
export interface Operand<B> extends Layout {
  readonly buffer: B;
}

/** The device limits a plan must fit. */
export interface BindingLimits {
  /** Bytes a storage binding may span. */
  readonly maxStorageBufferBindingSize: number;
  /** Bytes a binding's start must be a multiple of. */
  readonly minStorageBufferOffsetAlignment: number;
}

/**
 * One operand as a dispatch binds it: the byte range `[start, start + bytes)` of its buffer, and
 * its layout relative to that window (offset in floats from `start`, strides of the merged shape).
 */
export interface Bound<B> {
  buffer: B;
  start: number;
  bytes: number;
  offset: number;
  strides: readonly number[];
}

/**
 * One dispatch's share of an element-wise pass: a box of the merged layout (consecutive rows along
 * one dimension, every dimension after it whole), so its elements are `count` consecutive ones in
 * row-major order from `base`; each operand binds only the window the box touches.
 */
export interface Chunk<B> {
  base: number;
  count: number;
  shape: readonly number[];
  operands: readonly Bound<B>[];
}

/** A pass's chunks; `flat` when every operand is contiguous along one merged dimension. */
export interface ChunkPlan<B> {
  flat: boolean;
  chunks: Chunk<B>[];
}

/**
 * The operands' merged layout (dimensions that every operand walks contiguously are merged,
 * size-1 dimensions dropped), cut into chunks whose binding windows fit `limits`: one chunk when
 * every operand's whole range fits, otherwise boxes of consecutive rows along the outermost
 * dimension where one row fits (every dimension after it whole). With `items` > 0, chunks hold
 * whole items of the first dimension (the thresholding's batch items), and an item too large for
 * one binding throws. The operands have the first one's shape.
 *
 * @throws {RangeError} The merged layout needs more than {@link MAX_RANK} dimensions, a batch
 * item exceeds a binding, or the split needs more than {@link MAX_CHUNKS} windows.
 */
export function planChunks<B>(
  name: string,
  tensors: readonly Operand<B>[],
  limits: BindingLimits,
  items = 0,
): ChunkPlan<B> {
  const shape: number[] = [];
  const strides: number[][] = tensors.map(() => []);
  tensors[0]!.shape.forEach((n, d) => {
    if (n === 1) return;
    const last = shape.length - 1;
    if (
      last >= 0 &&
      tensors.every((t, k) => strides[k]![last] === t.strides[d]! * n)
    ) {
      shape[last]! *= n;
      tensors.forEach((t, k) => (strides[k]![last] = t.strides[d]!));
      return;
    }
    shape.push(n);
    tensors.forEach((t, k) => strides[k]!.push(t.strides[d]!));
  });
  if (shape.length > MAX_RANK) {
    throw new RangeError(
      `Cannot run a WebGPU kernel on shape ${
        formatShape(tensors[0]!.shape)
      } as its strided layout needs ${shape.length} dimensions: at most ${MAX_RANK} are supported (make the tensors contiguous)`,
    );
  }
  const flat = shape.length <= 1 && strides.every((s) => (s[0] ?? 1) === 1);
  const align = limits.minStorageBufferOffsetAlignment;
  const limit = limits.maxStorageBufferBindingSize;
  const buffers = tensors.map((t) => t.buffer);
  // Operand k's window for the box `sub` of dimensions d… whose first element is at `offset`.
  const window = (
    k: number,
    sub: readonly number[],
    d: number,
    offset: number,
  ): Bound<B> => {
    const s = strides[k]!.slice(d);
    const [lo, hi] = span(sub, s, offset);
    const start = Math.floor((lo * 4) / align) * align;
    return {
      buffer: buffers[k]!,
      start,
      bytes: Math.max((hi + 1) * 4 - start, 4),
      offset: offset - start / 4,
      strides: s,
    };
  };
  const size = sizeOf(shape);
  const whole = tensors.map((t, k) => window(k, shape, 0, t.offset));
  if (whole.every((o) => o.bytes <= limit)) {
    return {
      flat,
      chunks: [{ base: 0, count: size, shape, operands: whole }],
    };
  }
  // Rows of dimension d one chunk may hold: a window spans at most its floats plus the
  // alignment slack below its first one.
  const rowsAt = (d: number): number => {
    let rows = shape[d]!;
    strides.forEach((s) => {
      let reach = 1;
      for (let j = d + 1; j < shape.length; j++) {
        reach += (shape[j]! - 1) * Math.abs(s[j]!);
      }
      const room = limit - (align - 4) - reach * 4;
      const step = Math.abs(s[d]!);
      if (room < 0) rows = 0;
      else if (step > 0) {
        rows = Math.min(rows, Math.floor(room / (4 * step)) + 1);
      }
    });
    return rows;
  };
  let d = 0;
  let rows = rowsAt(0);
  if (items > 0) {
    const unit = shape[0]! / items;
    rows = Math.floor(rows / unit) * unit;
    if (rows === 0) {
      const item = window(
        0,
        [unit, ...shape.slice(1)],
        0,
        tensors[0]!.offset,
      );
      throw new RangeError(
        `Cannot run ${name} on shape ${
          formatShape(tensors[0]!.shape)
        } as one batch item spans ${item.bytes} bytes: the device binds at most ${limit} (maxStorageBufferBindingSize)`,
      );
    }
  } else {
    while (rows === 0) rows = rowsAt(++d);
  }
  const inner = shape.slice(d + 1);
  const rowSize = sizeOf(inner);
  const outer = sizeOf(shape.slice(0, d));
  const count = outer * Math.ceil(shape[d]! / rows);
  if (count > MAX_CHUNKS) {
    throw new RangeError(
      `Cannot run ${name} on shape ${
        formatShape(tensors[0]!.shape)
      } as its bindings would need ${count} windows of at most ${limit} bytes (maxStorageBufferBindingSize): at most ${MAX_CHUNKS} are supported (make the tensors contiguous)`,
    );
  }
  const chunks: Chunk<B>[] = [];
  for (let o = 0; o < outer; o++) {
    // The offset of each operand at outer index o (row-major over dimensions 0…d-1).
    const offsets = tensors.map((t) => t.offset);
    for (let j = d - 1, rest = o; j >= 0; j--) {
      const index = rest % shape[j]!;
      rest = Math.floor(rest / shape[j]!);
      strides.forEach((s, k) => (offsets[k]! += index * s[j]!));
    }
    for (let r = 0; r < shape[d]!; r += rows) {
      const n = Math.min(rows, shape[d]! - r);
      const sub = [n, ...inner];
      chunks.push({
        base: (o * shape[d]! + r) * rowSize,
        count: n * rowSize,
        shape: sub,
        operands: tensors.map((_, k) =>
          window(k, sub, d, offsets[k]! + r * strides[k]![d]!)
        ),
      });
    }
  }
  return { flat, chunks };
}

/** Lowest and highest element index a layout touches. */
export function span(
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): [number, number] {
  let lo = offset;
  let hi = offset;
  shape.forEach((n, i) => {
    const reach = (Math.max(n, 1) - 1) * strides[i]!;
    if (reach < 0) lo += reach;
    else hi += reach;
  });
  return [lo, hi];
}

/** Whether two non-empty layouts in one buffer touch a common element span. */
export function spansOverlap(a: Layout, b: Layout): boolean {
  if (sizeOf(a.shape) === 0 || sizeOf(b.shape) === 0) return false;
  const [aLo, aHi] = span(a.shape, a.strides, a.offset);
  const [bLo, bHi] = span(b.shape, b.strides, b.offset);
  return aLo <= bHi && bLo <= aHi;
}

/**
 * Workgroups of `workgroupSize` threads for `count` elements: along x up to `maxGroups`, then
 * rows along y.
 *
 * @throws {RangeError} More than `maxGroups²` workgroups.
 */
export function workgroups(
  count: number,
  workgroupSize: number,
  maxGroups: number,
): [number, number] {
  const total = Math.ceil(count / workgroupSize);
  const x = Math.min(total, maxGroups);
  const y = Math.ceil(total / x);
  if (y > maxGroups) {
    throw new RangeError(
      `Cannot run a WebGPU kernel on ${count} elements: at most ${
        maxGroups ** 2 * workgroupSize
      } fit one dispatch`,
    );
  }
  return [x, y];
}

/**
 * The Tensor constructor's checks for a view over a buffer of `bytes` bytes: integer sizes,
 * strides and offset, every element inside the buffer.
 *
 * @throws {RangeError} An invalid layout, or one reaching outside the buffer.
 */
export function checkWindow(
  operation: string,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  bytes: number,
): void {
  const floats = Math.floor(bytes / 4);
  if (
    !shape.every((n) => Number.isInteger(n) && n >= 0) ||
    strides.length !== shape.length || !strides.every(Number.isInteger) ||
    !Number.isInteger(offset) || offset < 0
  ) {
    throw new RangeError(
      `Cannot ${operation} as shape ${formatShape(shape)}, strides ${
        formatShape(strides)
      } and offset ${offset} are not a valid layout`,
    );
  }
  const [lo, hi] = span(shape, strides, offset);
  if (sizeOf(shape) > 0 && (lo < 0 || hi >= floats)) {
    throw new RangeError(
      `Cannot ${operation} as shape ${formatShape(shape)} with strides ${
        formatShape(strides)
      } and offset ${offset} reaches outside its ${floats} floats`,
    );
  }
}

/**
 * How a pass binds its operands, under WebGPU's rules: within one dispatch a buffer is bound
 * either read-only everywhere, or writable everywhere with no two bindings overlapping (binding
 * windows start at aligned offsets, so even disjoint views can overlap). `access` has one letter
 * per operand: `w` (read-write: one of the first `writable` operands, which are written, or in a
 * buffer one of them is in) or `r` (read-only). `shared[k]` is the earlier operand whose binding
 * operand k reads through, or -1 for a binding of its own: in a written buffer, every operand
 * goes through the binding of the first one there (`out` aliasing an input element for element,
 * views side by side in one buffer), whose window covers them all.
 */
export interface BindingPlan {
  access: string;
  shared: number[];
}

/** The {@link BindingPlan} of `operands`, the first `writable` of them written. */
export function bindingPlan<B>(
  operands: readonly { readonly buffer: B }[],
  writable: number,
): BindingPlan {
  const written = new Set(operands.slice(0, writable).map((o) => o.buffer));
  let access = "";
  const shared = operands.map((t, k) => {
    const w = k < writable || written.has(t.buffer);
    access += w ? "w" : "r";
    return w ? operands.findIndex((o) => o.buffer === t.buffer) : -1;
  }).map((first, k) => (first === k ? -1 : first));
  return { access, shared };
}

/**
 * `chunk` with each bound operand's window widened to cover the operands that share its binding
 * (`shared` of a {@link BindingPlan}), every operand's offset made relative to its bound window,
 * and the bindings of the dispatch: the operands that are not shared, in order.
 *
 * @throws {RangeError} A widened window beyond `maxBinding` bytes.
 */
export function shareWindows<B>(
  chunk: Chunk<B>,
  shared: readonly number[],
  maxBinding: number,
): { chunk: Chunk<B>; bindings: Bound<B>[] } {
  if (shared.every((w) => w < 0)) {
    return { chunk, bindings: chunk.operands as Bound<B>[] };
  }
  const operands = chunk.operands.map((o) => ({ ...o }));
  operands.forEach((_, w) => {
    const members = operands.filter((_, k) => k === w || shared[k] === w);
    if (members.length === 1) return;
    const lo = Math.min(...members.map((m) => m.start));
    const hi = Math.max(...members.map((m) => m.start + m.bytes));
    if (hi - lo > maxBinding) {
      throw new RangeError(
        `Cannot bind an operand and the inputs it aliases in one window of ${
          hi - lo
        } bytes: the device binds at most ${maxBinding} (maxStorageBufferBindingSize)`,
      );
    }
    for (const m of members) {
      m.offset += (m.start - lo) / 4;
      m.start = lo;
      m.bytes = hi - lo;
    }
  });
  return {
    chunk: { ...chunk, operands },
    bindings: operands.filter((_, k) => shared[k]! < 0),
  };
}
