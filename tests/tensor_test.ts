import assert from "node:assert/strict";
import { Tensor } from "../mod.ts";

function iota(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => i);
}

Deno.test("Tensor() defaults to row-major strides and offset 0", () => {
  const t = new Tensor(iota(24), [2, 3, 4]);
  assert.deepEqual(t.strides, [12, 4, 1]);
  assert.equal(t.offset, 0);
  assert.equal(t.size, 24);
  assert.ok(t.isContiguous());
  assert.equal(t.get(1, 2, 3), 23);
});

Deno.test("shape and strides are frozen, and equal ones are one array", () => {
  const a = new Tensor(iota(6), [2, 3]);
  const b = Tensor.zeros([2, 3]);
  assert.ok(Object.isFrozen(a.shape) && Object.isFrozen(a.strides));
  assert.throws(() => (a.shape as number[])[0] = 3, TypeError);
  // The scheduler compares shapes several times per step: equal shapes compare by reference.
  assert.equal(a.shape, b.shape);
  assert.equal(a.strides, b.strides);
  assert.notEqual(a.shape, a.permute([1, 0]).shape);
  assert.deepEqual(a.permute([1, 0]).shape, [3, 2]);
});

Deno.test("slice() is a view: metadata, values, and writes reach the parent", () => {
  const t = new Tensor(iota(24), [2, 3, 4]);
  const s = t.slice(1, 1, 3); // shape [2, 2, 4]
  assert.deepEqual(s.shape, [2, 2, 4]);
  assert.deepEqual(s.strides, [12, 4, 1]);
  assert.equal(s.offset, 4);
  assert.equal(s.data, t.data);
  assert.ok(!s.isContiguous());
  // Row-major elements of t[:, 1:3, :]: 4..11 and 16..23.
  assert.deepEqual(Array.from(s.toFloat32Array()), [
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
  ]);
  s.set(-1, 1, 0, 2);
  assert.equal(t.get(1, 1, 2), -1);
});

Deno.test("permute() is a view with permuted strides", () => {
  const t = new Tensor(iota(6), [2, 3]);
  const p = t.permute([1, 0]);
  assert.deepEqual(p.shape, [3, 2]);
  assert.deepEqual(p.strides, [1, 3]);
  assert.deepEqual(Array.from(p.toFloat32Array()), [0, 3, 1, 4, 2, 5]);
  p.set(42, 2, 0);
  assert.equal(t.get(0, 2), 42);
});

Deno.test("reshape() views a contiguous tensor and copies a strided one", () => {
  const t = new Tensor(iota(12), [3, 4]);
  const r = t.reshape([2, -1]);
  assert.deepEqual(r.shape, [2, 6]);
  assert.equal(r.data, t.data);
  const strided = t.permute([1, 0]).reshape([12]);
  assert.notEqual(strided.data, t.data);
  assert.deepEqual(Array.from(strided.toFloat32Array()), [
    0,
    4,
    8,
    1,
    5,
    9,
    2,
    6,
    10,
    3,
    7,
    11,
  ]);
  assert.throws(() => t.reshape([5, -1]), RangeError);
});

Deno.test("contiguous() returns the tensor itself when already contiguous, else a copy", () => {
  const t = new Tensor(iota(6), [2, 3]);
  assert.equal(t.contiguous(), t);
  const c = t.slice(1, 0, 2).contiguous();
  assert.ok(c.isContiguous());
  assert.deepEqual(Array.from(c.toFloat32Array()), [0, 1, 3, 4]);
});

Deno.test("Tensor() rejects non-Float32 data and views outside the data", () => {
  assert.throws(
    () => new Tensor(new Float64Array(4) as unknown as Float32Array, [4]),
    {
      name: "TypeError",
      message: /'data' must be a Float32Array: current value is Float64Array/,
    },
  );
  assert.throws(() => new Tensor(new Float32Array(4), [5]), RangeError);
  assert.throws(
    () => new Tensor(new Float32Array(4), [2, 2], [2, 1], 1),
    RangeError,
  );
  assert.throws(() => new Tensor(new Float32Array(4), [2, -2]), RangeError);
});
