/**
 * Reading and writing NumPy `.npy` files of little-endian float32 and int32 arrays.
 *
 * @module
 */
import { formatShape, sizeOf } from "./_shape.ts";
import { Tensor } from "./tensor.ts";

/** An array read from a `.npy` file. */
export type NpyArray =
  | { dtype: "<f4"; shape: number[]; data: Float32Array }
  | { dtype: "<i4"; shape: number[]; data: Int32Array };

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/**
 * Parses `.npy` bytes (format 1.0–3.0, C order, dtype `<f4` or `<i4`).
 *
 * @param bytes The file's contents.
 * @param name The file's name, for error messages.
 * @throws {TypeError} A file that is not `.npy` (format 1.0–3.0), is truncated, has a malformed
 *   header (a shape that is not a tuple of non-negative integers included), is Fortran-ordered,
 *   or is of another dtype.
 *
 * @example
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { encodeNpy, decodeNpy } from "@dpmsolver/scheduler/npy";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeNpy(Tensor.from([1, 2, 3, 4], [2, 2]));
 * const back = decodeNpy(bytes);
 * assert.deepEqual(back.shape, [2, 2]);
 * assert.equal(back.data[3], 4);
 * ```
 */
export function decodeNpy(bytes: Uint8Array, name = "array.npy"): NpyArray {
  const fail = (why: string): never => {
    throw new TypeError(`Cannot read '${name}' as ${why}`);
  };
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) {
    fail("it is not a .npy file (no \\x93NUMPY magic)");
  }
  const major = bytes[6]!;
  if (major < 1 || major > 3) {
    fail(
      `its format version ${major}.${
        bytes[7]
      } is not supported: only 1.0, 2.0 and 3.0 are`,
    );
  }
  const headerStart = major === 1 ? 10 : 12;
  if (bytes.length < headerStart) fail("it is truncated inside its header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1
    ? view.getUint16(8, true)
    : view.getUint32(8, true);
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) fail("it is truncated inside its header");
  let header: string;
  try {
    header = new TextDecoder(major === 3 ? "utf-8" : "latin1", { fatal: true })
      .decode(bytes.subarray(headerStart, dataStart));
  } catch {
    return fail("its header is not valid UTF-8");
  }
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    fail(`its header is malformed: ${header.trim()}`);
  }
  if (fortran === "True") {
    fail("it is in Fortran order: only C order is supported");
  }
  if (descr !== "<f4" && descr !== "<i4") {
    fail(
      `its dtype '${descr}' is not supported: only '<f4' (float32) and '<i4' (int32) are${
        descr === "<f8"
          ? " (write float32 from NumPy with a.astype(np.float32))"
          : ""
      }`,
    );
  }
  const shape = parseShape(shapeText!);
  if (shape === null) {
    fail(
      `its shape '(${shapeText})' is malformed: expected a tuple of non-negative integers such as (2, 3), (3,) or ()`,
    );
  }
  const count = sizeOf(shape!);
  const needed = dataStart + count * 4;
  if (!Number.isSafeInteger(needed) || bytes.length < needed) {
    fail(
      `it is truncated: shape ${
        formatShape(shape!)
      } of ${descr} needs ${needed} bytes, the file has ${bytes.length}`,
    );
  }
  const copy = bytes.slice(dataStart, needed).buffer;
  return descr === "<f4"
    ? { dtype: "<f4", shape: shape!, data: new Float32Array(copy) }
    : { dtype: "<i4", shape: shape!, data: new Int32Array(copy) };
}

/**
 * The dimensions of a Python tuple's inside (`"2, 3"`, `"3,"`, `""`), or `null` unless each is a
 * non-negative integer literal and the commas are those of a tuple (a one-element tuple needs its
 * trailing comma, as Python writes it).
 */
function parseShape(text: string): number[] | null {
  const inside = text.trim();
  if (inside === "") return [];
  const parts = inside.split(",").map((s) => s.trim());
  if (parts.at(-1) === "") parts.pop();
  else if (parts.length === 1) return null; // "(3)" is not a tuple
  const shape: number[] = [];
  for (const part of parts) {
    if (!/^\d+$/.test(part)) return null;
    const n = Number(part);
    if (!Number.isSafeInteger(n)) return null;
    shape.push(n);
  }
  return shape;
}

/**
 * Encodes a tensor (float32) or an `Int32Array` (1-D) as `.npy` bytes that `numpy.load` reads.
 *
 * @example
 * ```ts
 * import { encodeNpy } from "@dpmsolver/scheduler/npy";
 * import assert from "node:assert/strict";
 * const bytes = encodeNpy(new Int32Array([1, 2, 3]));
 * assert.equal(bytes.length % 64, 12 % 64);
 * ```
 */
export function encodeNpy(array: Tensor | Int32Array): Uint8Array {
  const isInt = array instanceof Int32Array;
  const shape = isInt ? [array.length] : [...array.shape];
  const payload = isInt ? array : array.toFloat32Array();
  const shapeText = shape.length === 1
    ? `(${shape[0]},)`
    : `(${shape.join(", ")})`;
  let header = `{'descr': '${
    isInt ? "<i4" : "<f4"
  }', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad so that the data starts on a 64-byte boundary, ending the header with a newline.
  const unpadded = 10 + header.length + 1;
  header += " ".repeat((64 - (unpadded % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + header.length + payload.byteLength);
  out.set(MAGIC);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(
    new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength),
    10 + header.length,
  );
  return out;
}

/**
 * Reads a `.npy` file (see {@link decodeNpy}); errors name the file.
 *
 * @example Write a tensor and read it back
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { readNpy, readNpyTensor, writeNpy } from "@dpmsolver/scheduler/npy";
 * import assert from "node:assert/strict";
 *
 * const path = `${await Deno.makeTempDir()}/x.npy`;
 * await writeNpy(path, Tensor.from([1, 2, 3, 4], [2, 2]));
 * assert.deepEqual((await readNpy(path)).shape, [2, 2]);
 * assert.deepEqual(Array.from((await readNpyTensor(path)).toFloat32Array()), [1, 2, 3, 4]);
 * await Deno.remove(path);
 * ```
 */
export async function readNpy(path: string | URL): Promise<NpyArray> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw new Error(`Cannot read '${path}': ${(error as Error).message}`, {
      cause: error,
    });
  }
  return decodeNpy(bytes, String(path));
}

/**
 * Reads a float32 `.npy` file as a {@link Tensor}.
 *
 * @example Write a tensor and read it back
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { readNpy, readNpyTensor, writeNpy } from "@dpmsolver/scheduler/npy";
 * import assert from "node:assert/strict";
 *
 * const path = `${await Deno.makeTempDir()}/x.npy`;
 * await writeNpy(path, Tensor.from([1, 2, 3, 4], [2, 2]));
 * assert.deepEqual((await readNpy(path)).shape, [2, 2]);
 * assert.deepEqual(Array.from((await readNpyTensor(path)).toFloat32Array()), [1, 2, 3, 4]);
 * await Deno.remove(path);
 * ```
 */
export async function readNpyTensor(path: string | URL): Promise<Tensor> {
  const array = await readNpy(path);
  if (array.dtype !== "<f4") {
    throw new TypeError(
      `Cannot read '${path}' as a Tensor as its dtype is '${array.dtype}', not '<f4'`,
    );
  }
  return new Tensor(array.data, array.shape);
}

/**
 * Writes a tensor or an `Int32Array` as a `.npy` file.
 *
 * @example Write a tensor and read it back
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { readNpy, readNpyTensor, writeNpy } from "@dpmsolver/scheduler/npy";
 * import assert from "node:assert/strict";
 *
 * const path = `${await Deno.makeTempDir()}/x.npy`;
 * await writeNpy(path, Tensor.from([1, 2, 3, 4], [2, 2]));
 * assert.deepEqual((await readNpy(path)).shape, [2, 2]);
 * assert.deepEqual(Array.from((await readNpyTensor(path)).toFloat32Array()), [1, 2, 3, 4]);
 * await Deno.remove(path);
 * ```
 */
export async function writeNpy(
  path: string | URL,
  array: Tensor | Int32Array,
): Promise<void> {
  await Deno.writeFile(path, encodeNpy(array));
}
