import assert from "node:assert/strict";
import { Tensor } from "../mod.ts";
import { decodeNpy, encodeNpy, readNpy } from "../npy.ts";

Deno.test("encodeNpy() writes a header numpy reads, and decodeNpy() reads it back", () => {
  const t = Tensor.from([1.5, -2, 3, 4, 5, 6], [2, 3]);
  const bytes = encodeNpy(t);
  const header = new TextDecoder().decode(
    bytes.subarray(10, 10 + (bytes[8]! | (bytes[9]! << 8))),
  );
  assert.match(
    header,
    /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/,
  );
  assert.equal((10 + header.length) % 64, 0);
  const back = decodeNpy(bytes);
  assert.deepEqual(back.shape, [2, 3]);
  assert.deepEqual(Array.from(back.data), [1.5, -2, 3, 4, 5, 6]);
  assert.deepEqual(
    decodeNpy(encodeNpy(new Int32Array([7, 8]))).data,
    new Int32Array([7, 8]),
  );
});

Deno.test("decodeNpy() names the file and the problem for bad input", () => {
  const good = encodeNpy(Tensor.from([1, 2, 3]));
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array([1, 2, 3]), /'x.npy' as it is not a .npy file/],
    [
      good.subarray(0, good.length - 2),
      /'x.npy' as it is truncated: shape \[3\] of <f4 needs/,
    ],
    [
      (() => {
        const b = good.slice();
        b.set(new TextEncoder().encode("<f8"), b.indexOf(0x3c)); // '<' of '<f4'
        return b;
      })(),
      /dtype '<f8' is not supported/,
    ],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(() => decodeNpy(bytes, "x.npy"), {
      name: "TypeError",
      message,
    });
  }
});

/** A valid float32 file of `values`, its header's shape text replaced by `shape`. */
function withShape(shape: string, values = [1, 2, 3]): Uint8Array {
  const good = encodeNpy(Tensor.from(values));
  const header = new TextDecoder().decode(good.subarray(10, 10 + good[8]!));
  const edited = header.replace(/\(\d+,\)/, shape);
  const padded = edited.trimEnd().padEnd(header.length - 1) + "\n";
  assert.equal(padded.length, header.length);
  const bytes = good.slice();
  bytes.set(new TextEncoder().encode(padded), 10);
  return bytes;
}

Deno.test("decodeNpy() refuses shapes that are not tuples of non-negative integers", () => {
  for (
    const shape of [
      "(-1, 3)",
      "(3, 'a')",
      "(2,, 3)",
      "(1e9,)",
      "(3)",
      "(1.5,)",
      "(,)",
      "(3, -0)",
      "(99999999999999999999,)",
    ]
  ) {
    assert.throws(() => decodeNpy(withShape(shape), "x.npy"), {
      name: "TypeError",
      message:
        `Cannot read 'x.npy' as its shape '${shape}' is malformed: expected a tuple of non-negative integers such as (2, 3), (3,) or ()`,
    });
  }
  // Well-formed but larger than the data: truncated, with the bytes it would need.
  assert.throws(() => decodeNpy(withShape("(1000000000,)"), "x.npy"), {
    name: "TypeError",
    message:
      /^Cannot read 'x.npy' as it is truncated: shape \[1000000000\] of <f4 needs 4000000128 bytes, the file has 140$/,
  });
  // What NumPy writes: (), (0,), (3,), (1, 3) with or without the trailing comma.
  assert.deepEqual(decodeNpy(withShape("()", [7])).shape, []);
  assert.deepEqual(decodeNpy(withShape("(0,)")).shape, [0]);
  assert.deepEqual(decodeNpy(withShape("(1, 3)")).shape, [1, 3]);
  assert.deepEqual(decodeNpy(withShape("(1, 3,)")).shape, [1, 3]);
  assert.deepEqual(decodeNpy(withShape("( 3 , )")).shape, [3]);
});

Deno.test("decodeNpy() refuses unknown format versions and says how to write float32 from float64", () => {
  const bytes = encodeNpy(Tensor.from([1, 2]));
  bytes[6] = 4;
  assert.throws(() => decodeNpy(bytes, "x.npy"), {
    name: "TypeError",
    message:
      "Cannot read 'x.npy' as its format version 4.0 is not supported: only 1.0, 2.0 and 3.0 are",
  });
  const f8 = encodeNpy(Tensor.from([1, 2]));
  f8.set(new TextEncoder().encode("<f8"), f8.indexOf(0x3c));
  assert.throws(() => decodeNpy(f8, "x.npy"), {
    message: /dtype '<f8' is not supported: .*a\.astype\(np\.float32\)/,
  });
});

Deno.test("readNpy() names a missing file", async () => {
  await assert.rejects(
    () => readNpy("/nonexistent/a.npy"),
    /Cannot read '\/nonexistent\/a.npy'/,
  );
});
