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

Deno.test("readNpy() names a missing file", async () => {
  await assert.rejects(
    () => readNpy("/nonexistent/a.npy"),
    /Cannot read '\/nonexistent\/a.npy'/,
  );
});
