/**
 * {@link WebGpuTensor}: a strided float32 view over a `GPUBuffer`, made by the WebGPU kernels
 * (`upload`, `wrap`, `empty`) and read back or released through them.
 *
 * @module
 */
import {
  formatShape,
  internFrozen,
  isRowMajor,
  type Layout,
  permuteLayout,
  sizeOf,
  sliceLayout,
} from "../../_shape.ts";
import type { Kernels, TensorView } from "../../kernels.ts";
import type { Tensor } from "../../tensor.ts";

/**
 * What a {@link WebGpuTensor} needs of the kernels it belongs to (`WebGpuKernels` implements it):
 * the kernel interface, its device, readback and release.
 */
export interface WebGpuTensorKernels extends Kernels<WebGpuTensor> {
  /** The device the tensors' buffers live on. */
  readonly device: GPUDevice;
  /** Reads a tensor back into a new contiguous CPU tensor. */
  read(tensor: WebGpuTensor): Promise<Tensor>;
  /** Gives a tensor's buffer back. */
  release(tensor: WebGpuTensor): void;
}

/**
 * The buffer behind one or more views of a {@link WebGpuTensor}, and whether the backend
 * allocated it (and pools it on release).
 */
export interface WebGpuStorage {
  /** The buffer. */
  buffer: GPUBuffer;
  /** Whether the kernels allocated it (then `release` pools it; else it is only forgotten). */
  owned: boolean;
  /** Whether it was released: every view of it is then unusable. */
  released: boolean;
}

/**
 * A strided float32 view over a `GPUBuffer`: element `(i0, i1, …)` is float
 * `offset + Σ strides[k]·ik` of the buffer. Views made by `slice` share the buffer.
 *
 * @example Views share the device buffer
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { requestWebGpuKernels } from "@dpmsolver/scheduler/webgpu";
 * import assert from "node:assert/strict";
 * const gpu = await requestWebGpuKernels();
 * if (gpu) {
 *   const x = gpu.upload(Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]));
 *   const column = x.permute([1, 0]).slice(0, 1, 2);
 *   assert.deepEqual(column.shape, [1, 2]);
 *   assert.deepEqual(Array.from((await column.read()).toFloat32Array()), [2, 5]);
 *   x.release();
 *   gpu.destroy();
 * }
 * ```
 */
export class WebGpuTensor implements TensorView<WebGpuTensor> {
  /** The kernels this tensor belongs to (read by `kernelsFor`). */
  readonly kernels: WebGpuTensorKernels;
  /** Extent of each dimension. */
  readonly shape: readonly number[];
  /** Element step of each dimension in the buffer. */
  readonly strides: readonly number[];
  /** Index (in floats) of element `(0, 0, …)` in the buffer. */
  readonly offset: number;
  /** Number of elements. */
  readonly size: number;
  readonly #storage: WebGpuStorage;

  /** @internal Use `WebGpuKernels.upload`, `wrap` or `empty`. */
  constructor(
    kernels: WebGpuTensorKernels,
    storage: WebGpuStorage,
    shape: readonly number[],
    strides: readonly number[],
    offset: number,
  ) {
    this.kernels = kernels;
    this.#storage = storage;
    this.shape = internFrozen(shape);
    this.strides = internFrozen(strides);
    this.offset = offset;
    this.size = sizeOf(shape);
  }

  /** The underlying buffer. @throws {Error} After `release()`. */
  get buffer(): GPUBuffer {
    if (this.#storage.released) {
      throw new Error(
        `Cannot use a WebGPU tensor of shape ${
          formatShape(this.shape)
        } as its buffer was released`,
      );
    }
    return this.#storage.buffer;
  }

  /** @internal */
  get storage(): WebGpuStorage {
    return this.#storage;
  }

  /** A view of `[start, end)` along `dim` (no copy). */
  slice(
    dim: number,
    start: number,
    end: number = this.shape[dim]!,
  ): WebGpuTensor {
    return this.#withLayout(sliceLayout(this, dim, start, end));
  }

  /** A view with the dimensions reordered: result dimension k is this tensor's `dims[k]`. */
  permute(dims: readonly number[]): WebGpuTensor {
    return this.#withLayout(permuteLayout(this, dims));
  }

  // Another view of the same buffer.
  #withLayout({ shape, strides, offset }: Layout): WebGpuTensor {
    return new WebGpuTensor(
      this.kernels,
      this.#storage,
      shape,
      strides,
      offset,
    );
  }

  /** Whether the elements are laid out row-major without gaps. */
  isContiguous(): boolean {
    return isRowMajor(this.shape, this.strides);
  }

  /** Reads the elements back into a new CPU {@link Tensor} (see `WebGpuKernels.read`). */
  read(): Promise<Tensor> {
    return this.kernels.read(this);
  }

  /** Releases the buffer (see `WebGpuKernels.release`). */
  release(): void {
    this.kernels.release(this);
  }
}
