/**
 * NumPy `.npy` files (`@dpmsolver/scheduler/npy`): little-endian float32 and int32 arrays, as
 * bytes or files, and as `Tensor`s.
 *
 * @example Round trip a tensor through `.npy` bytes
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { decodeNpy, encodeNpy } from "@dpmsolver/scheduler/npy";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeNpy(Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]));
 * const array = decodeNpy(bytes);
 * assert.deepEqual(array.shape, [2, 3]);
 * assert.deepEqual(Array.from(array.data), [1, 2, 3, 4, 5, 6]);
 * ```
 *
 * @module
 */
export * from "./lib/npy.ts";
