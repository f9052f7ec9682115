// Whether CPU tensors may share memory, for the fused kernels of the CPU and WebAssembly
// backends: a fused pass that reads an operand another of its outputs writes would see the
// written values, so such calls take the separate kernels.
import type { Tensor } from "../tensor.ts";

/** Whether two tensors may share memory (conservatively, for views that are not contiguous). */
export function overlaps(a: Tensor, b: Tensor): boolean {
  if (a.data.buffer !== b.data.buffer || a.size === 0 || b.size === 0) {
    return false;
  }
  const [aStart, aEnd] = extent(a);
  const [bStart, bEnd] = extent(b);
  return aStart < bEnd && bStart < aEnd;
}

/** Whether `t` may share memory with one of `others` (nulls skipped). */
export function overlapsAny(
  t: Tensor,
  others: readonly (Tensor | null)[],
): boolean {
  for (const other of others) {
    if (other !== null && overlaps(t, other)) return true;
  }
  return false;
}

// The byte range `t` may touch in its buffer: its elements when contiguous, else the whole view.
function extent(t: Tensor): [number, number] {
  if (t.isContiguous()) {
    const start = t.data.byteOffset + 4 * t.offset;
    return [start, start + 4 * t.size];
  }
  return [t.data.byteOffset, t.data.byteOffset + t.data.byteLength];
}
