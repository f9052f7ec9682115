// The WebGPU chunk planner and thresholding plan without a device: pure layout arithmetic. Every
// plan is checked element by element against the operands' own layouts (offset + Σ stride·index),
// and against the binding limits it must fit.
import assert from "node:assert/strict";
import {
  type BindingLimits,
  bindingPlan,
  checkWindow,
  MAX_CHUNKS,
  type Operand,
  planChunks,
  shareWindows,
  span,
  spansOverlap,
  workgroups,
} from "../lib/backends/webgpu/_chunks.ts";
import { thresholdPlan } from "../lib/backends/webgpu/_threshold_plan.ts";
import { MAX_RANK } from "../lib/backends/webgpu/_wgsl.ts";
import {
  type Layout,
  permuteLayout,
  rowMajorStrides,
  sliceLayout,
} from "../lib/_shape.ts";

const LARGE: BindingLimits = {
  maxStorageBufferBindingSize: 2 ** 30,
  minStorageBufferOffsetAlignment: 256,
};

function contiguous(shape: number[], offset = 0): Layout {
  return { shape, strides: rowMajorStrides(shape), offset };
}

function operands(...layouts: Layout[]): Operand<string>[] {
  return layouts.map((l, k) => ({ ...l, buffer: `b${k}` }));
}

// The element index of row-major element i of `layout`.
function indexOf(layout: Layout, i: number): number {
  let index = layout.offset;
  for (let d = layout.shape.length - 1; d >= 0; d--) {
    const n = layout.shape[d]!;
    index += (i % n) * layout.strides[d]!;
    i = Math.floor(i / n);
  }
  return index;
}

// Every element of every operand, as each chunk's window addresses it, is the operand's own
// element; chunks cover the elements once, in order; windows are aligned and within the limit.
function assertPlanCovers(
  layouts: Operand<string>[],
  limits: BindingLimits,
  items = 0,
) {
  const plan = planChunks("test", layouts, limits, items);
  const size = layouts[0]!.shape.reduce((a, b) => a * b, 1);
  let next = 0;
  for (const chunk of plan.chunks) {
    assert.equal(chunk.base, next, "chunks in row-major order, no gaps");
    assert.equal(chunk.shape.length <= MAX_RANK, true);
    chunk.operands.forEach((bound, k) => {
      assert.equal(bound.buffer, layouts[k]!.buffer);
      assert.equal(bound.start % limits.minStorageBufferOffsetAlignment, 0);
      assert.ok(bound.bytes <= limits.maxStorageBufferBindingSize);
      const window = {
        shape: chunk.shape,
        strides: bound.strides,
        offset: bound.offset,
      };
      for (let j = 0; j < chunk.count; j++) {
        const local = indexOf(window, j);
        assert.ok(local >= 0 && (local + 1) * 4 <= bound.bytes, "in window");
        assert.equal(
          bound.start / 4 + local,
          indexOf(layouts[k]!, chunk.base + j),
          `operand ${k}, element ${chunk.base + j}`,
        );
      }
    });
    if (items > 0) {
      const perItem = size / items;
      assert.equal(chunk.base % perItem, 0, "whole items");
      assert.equal(chunk.count % perItem, 0, "whole items");
    }
    next += chunk.count;
  }
  assert.equal(next, size);
  return plan;
}

Deno.test("planChunks() merges contiguous operands into one flat chunk", () => {
  const plan = assertPlanCovers(
    operands(contiguous([2, 3, 4]), contiguous([2, 3, 4], 8)),
    LARGE,
  );
  assert.equal(plan.flat, true);
  assert.equal(plan.chunks.length, 1);
  assert.deepEqual(plan.chunks[0]!.shape, [24]);
  assert.deepEqual(plan.chunks[0]!.operands.map((o) => o.offset), [0, 8]);
});

Deno.test("planChunks() keeps the dimensions a strided view cannot merge", () => {
  const base = contiguous([2, 6, 4, 4]);
  const slice = sliceLayout(base, 1, 0, 3); // channels 0-2 of 6: rows of 48 floats, 96 apart
  const plan = assertPlanCovers(
    operands(contiguous([2, 3, 4, 4]), slice),
    LARGE,
  );
  assert.equal(plan.flat, false);
  assert.deepEqual(plan.chunks[0]!.shape, [2, 48]);
  assert.deepEqual(plan.chunks[0]!.operands[1]!.strides, [96, 1]);
  const permuted = permuteLayout(contiguous([7, 2, 5, 3]), [1, 3, 2, 0]);
  assertPlanCovers(operands(contiguous([2, 3, 5, 7]), permuted), LARGE);
});

Deno.test("planChunks() splits beyond maxStorageBufferBindingSize into aligned windows", () => {
  const limits = {
    maxStorageBufferBindingSize: 4096,
    minStorageBufferOffsetAlignment: 256,
  };
  // 2560 floats: a window spans at most (4096 − 252) / 4 + 1 = 961 rows of one float.
  const plan = assertPlanCovers(operands(contiguous([2, 4, 16, 20])), limits);
  assert.deepEqual(plan.chunks.map((c) => c.count), [961, 961, 638]);
  assert.deepEqual(plan.chunks[1]!.operands[0], {
    buffer: "b0",
    start: 3840,
    bytes: 3848,
    offset: 1,
    strides: [1],
  });
  // A channel slice of a doubled tensor: rows of 5 KiB, so the split goes one dimension deeper.
  const doubled = contiguous([2, 8, 16, 20]);
  const split = assertPlanCovers(
    operands(contiguous([2, 4, 16, 20]), sliceLayout(doubled, 1, 4, 8)),
    limits,
  );
  assert.ok(split.chunks.length > 3);
  // Whole batch items, and an item too large for one binding.
  assertPlanCovers(operands(contiguous([2, 4, 16, 20])), {
    ...limits,
    maxStorageBufferBindingSize: 8192,
  }, 2);
  assert.throws(
    () =>
      planChunks("threshold", operands(contiguous([2, 4, 16, 20])), limits, 2),
    (e: Error) =>
      e instanceof RangeError &&
      /^Cannot run threshold on shape \[2, 4, 16, 20\] as one batch item spans 5120 bytes: the device binds at most 4096 \(maxStorageBufferBindingSize\)$/
        .test(e.message),
  );
});

Deno.test("planChunks() throws past MAX_RANK merged dimensions and MAX_CHUNKS windows", () => {
  // Nine dimensions of 2, permuted so that none merges.
  const shape = Array(MAX_RANK + 1).fill(2);
  const reversed = permuteLayout(
    contiguous(shape),
    shape.map((_, i) => shape.length - 1 - i),
  );
  assert.throws(
    () => planChunks("copy", operands(contiguous(shape), reversed), LARGE),
    /needs 9 dimensions: at most 8 are supported/,
  );
  // 512-byte bindings hold 65 floats each: 8192 × 64 floats need 8066 windows.
  const tiny = {
    maxStorageBufferBindingSize: 512,
    minStorageBufferOffsetAlignment: 256,
  };
  assert.throws(
    () => planChunks("copy", operands(contiguous([2 * MAX_CHUNKS, 64])), tiny),
    (e: Error) =>
      e instanceof RangeError && /at most 4096 are supported/.test(e.message),
  );
});

Deno.test("span(), spansOverlap() and checkWindow() bound a layout's elements", () => {
  assert.deepEqual(span([3, 4], [10, 2], 5), [5, 31]);
  assert.deepEqual(span([0, 4], [10, 2], 5), [5, 11]);
  const a = sliceLayout(contiguous([4, 6]), 0, 0, 2);
  const b = sliceLayout(contiguous([4, 6]), 0, 2, 4);
  assert.equal(spansOverlap(a, b), false);
  assert.equal(spansOverlap(a, sliceLayout(contiguous([4, 6]), 0, 1, 3)), true);
  assert.equal(spansOverlap(contiguous([0]), a), false);
  checkWindow("wrap", [3, 4], [10, 2], 5, 160);
  assert.throws(
    () => checkWindow("wrap", [3, 4], [10, 2], 20, 160),
    /reaches outside its 40 floats/,
  );
  assert.throws(
    () => checkWindow("wrap", [3, 4], [10], 0, 160),
    /not a valid layout/,
  );
});

Deno.test("workgroups() fills x up to the limit, then rows along y", () => {
  assert.deepEqual(workgroups(4010, 256, 4), [4, 4]);
  assert.deepEqual(workgroups(100, 256, 65535), [1, 1]);
  assert.deepEqual(workgroups(256 * 70000, 256, 65535), [65535, 2]);
  assert.throws(
    () => workgroups(256 * 17, 256, 4),
    /at most 4096 fit one dispatch/,
  );
});

Deno.test("thresholdPlan() has torch.quantile's ranks and four rounds of histogram then scan", () => {
  const chunks =
    planChunks("threshold", operands(contiguous([2, 5])), LARGE, 2).chunks;
  // torch.quantile over 5 elements: rank = ratio · 4, interpolating between floor and ceil.
  const half = thresholdPlan("threshold", [2, 5], 0.5, 2, chunks, 65535);
  assert.deepEqual([half.perItem, half.below, half.above], [5, 2, 2]);
  assert.deepEqual(half.coef, [0, 1, 2]);
  const q = thresholdPlan("threshold", [2, 5], 0.875, 1.5, chunks, 65535);
  assert.deepEqual([q.below, q.above], [3, 4]);
  assert.deepEqual(q.coef, [0.5, 0.5, 1.5]);
  assert.deepEqual(
    q.steps.map((s) => `${s.kind}${s.pass}`),
    [
      "histogram0",
      "scan0",
      "histogram1",
      "scan1",
      "histogram2",
      "scan2",
      "histogram3",
      "scan3",
    ],
  );
  assert.deepEqual(q.steps[0]!.groups, [1, 2]);
  assert.deepEqual(q.steps[1]!.groups, [2, 1]);
  assert.throws(
    () => thresholdPlan("threshold", [5, 2], 0.5, 2, chunks, 4),
    /batch size must be at most 4 on this device: current value is 5/,
  );
});

Deno.test("bindingPlan() binds a written buffer writable everywhere, every operand there through one binding", () => {
  const item = (i: number) => sliceLayout(contiguous([4, 64]), 0, i, i + 1);
  // out = item 0 of buffer A; x aliases out; y is item 1 of A; z in buffer B; w aliases z.
  const a = [item(0), item(0), item(1)].map((l) => ({ ...l, buffer: "A" }));
  const b = [item(2), item(2)].map((l) => ({ ...l, buffer: "B" }));
  const plan = bindingPlan<string>;
  assert.deepEqual(plan([...a, ...b], 1), {
    access: "wwwrr",
    shared: [-1, 0, 0, -1, -1],
  });
  // Neighbours of 16 floats: disjoint elements, but one 256-byte alignment block.
  const small = (i: number) => ({
    ...sliceLayout(contiguous([4, 16]), 0, i, i + 1),
    buffer: "A",
  });
  assert.deepEqual(plan([small(0), small(1), small(2)], 1).shared, [-1, 0, 0]);
  assert.deepEqual(plan([small(0), { ...item(3), buffer: "C" }], 1), {
    access: "wr",
    shared: [-1, -1],
  });
});

Deno.test("shareWindows() widens a binding over the operands sharing it, offsets relative to it", () => {
  const limits = {
    maxStorageBufferBindingSize: 1 << 20,
    minStorageBufferOffsetAlignment: 256,
  };
  // out: floats 64…127 of A; x: floats 96…159 (overlapping).
  const out = { ...contiguous([64], 64), buffer: "A" };
  const x = { ...contiguous([64], 96), buffer: "A" };
  const [chunk] = planChunks("t", [out, x], limits).chunks;
  const { chunk: merged, bindings } = shareWindows(chunk!, [-1, 0], 1 << 20);
  assert.equal(bindings.length, 1);
  assert.deepEqual(bindings[0], { ...merged.operands[0] });
  const [o, s] = merged.operands;
  assert.equal(o!.start, s!.start);
  assert.equal(o!.start / 4 + o!.offset, 64);
  assert.equal(s!.start / 4 + s!.offset, 96);
  assert.ok(o!.start + o!.bytes >= 160 * 4);
  assert.throws(
    () => shareWindows(chunk!, [-1, 0], 256),
    /in one window of \d+ bytes: the device binds at most 256/,
  );
});
