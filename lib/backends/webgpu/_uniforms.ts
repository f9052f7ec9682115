// The uniform blocks of the WebGPU kernels: one block per dispatch of a submit (coefficients,
// shape, strides, offsets; layout in _wgsl.ts), written on the host into one ArrayBuffer and
// uploaded with the submit. Shapes, strides and coefficients live here rather than in the shader
// code, so every step reuses the same pipelines.
import type { MultistepCoefficients } from "../../solver.ts";
import type { BufferPool } from "./_buffer_pool.ts";
import { USAGE } from "./_buffer_pool.ts";
import type { Chunk } from "./_chunks.ts";
import { MAX_OPERANDS, MAX_RANK, PARAMS, PARAMS_BYTES } from "./_wgsl.ts";

/** Blocks the uniform buffer holds at first: a thresholding pass, unsplit. */
const INITIAL_BLOCKS = 9; // 4 × (histogram, scan) + apply

/** Typed views of one uniform block's fields. */
export interface ParamsBlock {
  coef: Float32Array;
  meta: Uint32Array;
  shape: Uint32Array;
  strides: Int32Array;
  offsets: Uint32Array;
}

/** The uniform buffer and its host copy. */
export class Uniforms {
  readonly #pool: BufferPool;
  readonly #onReplace: () => void;
  #params = new ArrayBuffer(PARAMS_BYTES * INITIAL_BLOCKS);
  #buffer: GPUBuffer;
  #used = 0;

  /**
   * @param pool Creates the buffer (and destroys it when it grows).
   * @param onReplace Called when the buffer is replaced by a larger one (bind groups go stale).
   */
  constructor(pool: BufferPool, onReplace: () => void) {
    this.#pool = pool;
    this.#onReplace = onReplace;
    this.#buffer = pool.create(
      PARAMS_BYTES * INITIAL_BLOCKS,
      USAGE.UNIFORM | USAGE.COPY_DST,
    );
  }

  /**
   * Zeroed blocks for `count` dispatches, as typed views per field. The buffer grows (to a power
   * of two of blocks) when a split pass needs more blocks than it holds.
   */
  clear(count: number): (slot: number) => ParamsBlock {
    if (count * PARAMS_BYTES > this.#params.byteLength) {
      let blocks = this.#params.byteLength / PARAMS_BYTES;
      while (blocks < count) blocks *= 2;
      this.#params = new ArrayBuffer(blocks * PARAMS_BYTES);
      this.#pool.destroy(this.#buffer); // submitted work that reads it still completes
      this.#buffer = this.#pool.create(
        blocks * PARAMS_BYTES,
        USAGE.UNIFORM | USAGE.COPY_DST,
      );
      this.#onReplace();
    }
    new Uint8Array(this.#params, 0, count * PARAMS_BYTES).fill(0);
    this.#used = count;
    return (slot) => paramsBlock(this.#params, slot);
  }

  /** The binding of block `slot`. */
  binding(slot: number): { buffer: GPUBuffer; offset: number; size: number } {
    return {
      buffer: this.#buffer,
      offset: slot * PARAMS_BYTES,
      size: PARAMS_BYTES,
    };
  }

  /**
   * Uploads the blocks of the last {@link clear}. `queue.writeBuffer` is ordered with submits,
   * so earlier submitted work still sees its own blocks.
   */
  write(queue: GPUQueue): void {
    queue.writeBuffer(
      this.#buffer,
      0,
      this.#params,
      0,
      this.#used * PARAMS_BYTES,
    );
  }
}

function paramsBlock(buffer: ArrayBuffer, slot: number): ParamsBlock {
  const base = slot * PARAMS_BYTES;
  const words = (at: number) => base + at * 4;
  return {
    coef: new Float32Array(buffer, words(PARAMS.coef), 12),
    meta: new Uint32Array(buffer, words(PARAMS.meta), 8),
    shape: new Uint32Array(buffer, words(PARAMS.shape), MAX_RANK),
    strides: new Int32Array(
      buffer,
      words(PARAMS.strides),
      MAX_OPERANDS * MAX_RANK,
    ),
    offsets: new Uint32Array(buffer, words(PARAMS.offsets), 8),
  };
}

/**
 * The layout of one chunk into a uniform block: count, rank, shape, strides and offsets, and in
 * meta 7 the row-major index of its first element (the thresholding's item of element i is
 * (i + meta 7) / perItem).
 */
export function writeChunk<B>(block: ParamsBlock, chunk: Chunk<B>): void {
  block.shape.set(chunk.shape);
  chunk.operands.forEach((o, k) => {
    block.strides.set(o.strides, k * MAX_RANK);
    block.offsets[k] = o.offset;
  });
  block.meta[0] = chunk.count;
  block.meta[1] = chunk.shape.length;
  block.meta[7] = chunk.base;
}

/** Coef 0–8 of the update bodies: the multistep coefficients in the order the WGSL reads them. */
export function writeUpdateCoefficients(
  coef: Float32Array,
  c: MultistepCoefficients,
): void {
  coef.set([c.a, c.b, c.c, c.d, c.e, c.k0, c.k1, c.q, c.k2]);
}
