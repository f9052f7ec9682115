/**
 * The WebGPU backend: the kernels as WGSL compute shaders on `navigator.gpu`, over
 * {@link WebGpuTensor}s that live in `GPUBuffer`s. A scheduler given WebGPU tensors steps them on
 * the device: each kernel call records its dispatches and submits them, with no readback and no
 * host work proportional to the tensor size. Results match the CPU backend's float32 operation
 * order (products are kept from fusing into FMAs).
 *
 * @module
 */
import { convertThenUpdate } from "../_convert.ts";
import { describe } from "../_describe.ts";
import { quantileRank } from "../_f32.ts";
import {
  checkHistory,
  checkSameShape,
  formatShape,
  internFrozen,
  isRowMajor,
  type Layout,
  permuteLayout,
  rowMajorStrides,
  sizeOf,
  sliceLayout,
} from "../_shape.ts";
import type { Kernels, ModelOutputConversion, TensorView } from "../kernels.ts";
import type { MultistepCoefficients } from "../solver.ts";
import { Tensor } from "../tensor.ts";
import {
  elementwiseShader,
  MAX_OPERANDS,
  MAX_RANK,
  PARAMS,
  PARAMS_BYTES,
  WORKGROUP_SIZE,
} from "./webgpu/_wgsl.ts";
import {
  axpbyDivBody,
  convertUpdateBody,
  copyBody,
  multistepBody,
} from "./webgpu/linear_combination.ts";
import {
  applyShader,
  applyUpdateShader,
  HIST_STRIDE,
  histogramShader,
  scanShader,
  STATE_STRIDE,
} from "./webgpu/threshold.ts";

/** Options of {@link requestWebGpuKernels} and {@link createWebGpuKernels}. */
export interface WebGpuKernelsOptions {
  /**
   * A device to run on, shared with the caller (e.g. ONNX Runtime Web's): it is not destroyed
   * by {@link WebGpuKernels.destroy}. By default a new device is requested.
   */
  device?: GPUDevice;
  /** Adapter preference when no `device` is given. @default {undefined} */
  powerPreference?: GPUPowerPreference;
  /**
   * Cap on workgroups per dispatch dimension, below the device limit (for testing the split
   * of large dispatches). @default {device.limits.maxComputeWorkgroupsPerDimension}
   */
  maxWorkgroupsPerDimension?: number;
  /**
   * Cap on the bytes one storage binding of a tensor spans, below the device limit (for testing
   * the split of large tensors; at least twice `minStorageBufferOffsetAlignment`; the
   * thresholding scratch buffers are not capped).
   * @default {device.limits.maxStorageBufferBindingSize}
   */
  maxStorageBufferBindingSize?: number;
}

/**
 * Thrown by {@link createWebGpuKernels} where WebGPU has no adapter or device; catch it to fall
 * back to the CPU.
 *
 * @example Fall back when there is no GPU, and stop after the device is gone
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { createWebGpuKernels, WebGpuDeviceLostError, WebGpuUnavailableError } from "@dpmsolver/scheduler/webgpu";
 * import assert from "node:assert/strict";
 *
 * try {
 *   const gpu = await createWebGpuKernels();
 *   const x = gpu.upload(Tensor.from([1, -2, 3, -4], [1, 4]));
 *   gpu.device.destroy(); // as a driver reset would
 *   await assert.rejects(x.read(), WebGpuDeviceLostError);
 *   gpu.destroy();
 * } catch (error) {
 *   if (!(error instanceof WebGpuUnavailableError)) throw error;
 * }
 * ```
 */
export class WebGpuUnavailableError extends Error {
  /** `"WebGpuUnavailableError"`. */
  override name = "WebGpuUnavailableError";
}

/**
 * Thrown by every WebGPU kernel call and readback once the device is lost (destroyed, or lost by
 * the driver): no result read back after the loss is returned, and CPU tensors are never written.
 * Create new kernels (and upload the inputs again) to go on, or fall back to the CPU.
 *
 * @example A destroyed device fails every later readback
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { createWebGpuKernels, WebGpuDeviceLostError, WebGpuUnavailableError } from "@dpmsolver/scheduler/webgpu";
 * import assert from "node:assert/strict";
 *
 * try {
 *   const gpu = await createWebGpuKernels();
 *   const x = gpu.upload(Tensor.from([1, -2, 3, -4], [1, 4]));
 *   gpu.device.destroy(); // as a driver reset would
 *   await assert.rejects(x.read(), WebGpuDeviceLostError);
 *   gpu.destroy();
 * } catch (error) {
 *   if (!(error instanceof WebGpuUnavailableError)) throw error;
 * }
 * ```
 */
export class WebGpuDeviceLostError extends Error {
  /** `"WebGpuDeviceLostError"`. */
  override name = "WebGpuDeviceLostError";
  /** `"destroyed"` or `"unknown"`, from `GPUDeviceLostInfo.reason`. */
  readonly reason: string;

  /** An error for a device lost for `reason`. */
  constructor(message: string, reason: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/**
 * WebGPU kernels on a new device, or on `options.device`; `null` where WebGPU is missing or no
 * adapter exists. Never throws.
 *
 * @example Fall back to the CPU
 * ```ts
 * import { requestWebGpuKernels } from "@dpmsolver/scheduler/webgpu";
 * import { cpuKernels } from "../backend.ts";
 * import assert from "node:assert/strict";
 * const gpu = await requestWebGpuKernels();
 * assert.ok((gpu ?? cpuKernels).name === "webgpu" || gpu === null);
 * gpu?.destroy();
 * ```
 */
export async function requestWebGpuKernels(
  options: WebGpuKernelsOptions = {},
): Promise<WebGpuKernels | null> {
  try {
    return await createWebGpuKernels(options);
  } catch {
    return null;
  }
}

/**
 * WebGPU kernels on a new device, or on `options.device`.
 *
 * @throws {WebGpuUnavailableError} WebGPU is missing, or no adapter or device is available.
 *
 * @example Kernels on the default adapter, or the CPU
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { createWebGpuKernels, WebGpuDeviceLostError, WebGpuUnavailableError } from "@dpmsolver/scheduler/webgpu";
 * import assert from "node:assert/strict";
 *
 * try {
 *   const gpu = await createWebGpuKernels();
 *   const x = gpu.upload(Tensor.from([1, -2, 3, -4], [1, 4]));
 *   gpu.device.destroy(); // as a driver reset would
 *   await assert.rejects(x.read(), WebGpuDeviceLostError);
 *   gpu.destroy();
 * } catch (error) {
 *   if (!(error instanceof WebGpuUnavailableError)) throw error;
 * }
 * ```
 */
export async function createWebGpuKernels(
  options: WebGpuKernelsOptions = {},
): Promise<WebGpuKernels> {
  if (options.device) return new WebGpuKernels(options.device, options);
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) {
    throw new WebGpuUnavailableError(
      "Cannot create WebGPU kernels as navigator.gpu is missing: use the CPU kernels",
    );
  }
  let device: GPUDevice;
  try {
    const adapter = await gpu.requestAdapter(
      options.powerPreference
        ? { powerPreference: options.powerPreference }
        : undefined,
    );
    if (!adapter) throw new Error("requestAdapter() returned null");
    device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
      },
    });
  } catch (error) {
    throw new WebGpuUnavailableError(
      `Cannot create WebGPU kernels as no adapter or device is available: ${
        (error as Error).message
      }`,
      { cause: error },
    );
  }
  return new WebGpuKernels(device, { ...options, ownsDevice: true });
}

/**
 * The buffer behind one or more views of a {@link WebGpuTensor}, and whether the backend
 * allocated it (and pools it on release).
 */
export interface WebGpuStorage {
  /** The device buffer. */
  buffer: GPUBuffer;
  /** Whether the backend allocated it (and pools it on release). */
  owned: boolean;
  /** Whether it went back to the pool (its views may no longer be used). */
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
 *
 * const gpu = await requestWebGpuKernels();
 * if (gpu !== null) {
 *   const x = gpu.upload(Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]));
 *   const row = x.slice(0, 1, 2);
 *   assert.deepEqual(row.shape, [1, 3]);
 *   assert.deepEqual(Array.from((await gpu.read(row)).toFloat32Array()), [4, 5, 6]);
 *   gpu.destroy();
 * }
 * ```
 */
export class WebGpuTensor implements TensorView<WebGpuTensor> {
  /** The kernels this tensor belongs to (read by `kernelsFor`). */
  readonly kernels: WebGpuKernels;
  /** Extent of each dimension. */
  readonly shape: readonly number[];
  /** Element step of each dimension in the buffer. */
  readonly strides: readonly number[];
  /** Index (in floats) of element `(0, 0, …)` in the buffer. */
  readonly offset: number;
  /** Number of elements. */
  readonly size: number;
  readonly #storage: WebGpuStorage;

  /** @internal Use {@link WebGpuKernels.upload}, `wrap` or `empty`. */
  constructor(
    kernels: WebGpuKernels,
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

  /** Reads the elements back into a new CPU {@link Tensor} (see {@link WebGpuKernels.read}). */
  read(): Promise<Tensor> {
    return this.kernels.read(this);
  }

  /** Releases the buffer (see {@link WebGpuKernels.release}). */
  release(): void {
    this.kernels.release(this);
  }
}

/** Counters of what the backend has done, to check that steady-state stepping allocates nothing. */
export interface WebGpuStats {
  /** `createBuffer` calls (storage, staging and uniform buffers). */
  buffersCreated: number;
  /** Compute pipelines compiled (one per kernel key). */
  pipelines: number;
  /** Command buffers submitted. */
  submits: number;
  /** Compute dispatches recorded. */
  dispatches: number;
}

// One operand as a kernel binds it: the buffer range and the view's layout relative to it.
interface Bound {
  buffer: GPUBuffer;
  start: number;
  bytes: number;
  offset: number;
  strides: readonly number[];
}

// One dispatch's share of an element-wise pass: a box of the merged layout (consecutive rows along
// one dimension, every dimension after it whole), so its elements are `count` consecutive ones in
// row-major order from `base`; each operand binds only the window the box touches.
interface Chunk {
  base: number;
  count: number;
  shape: readonly number[];
  operands: readonly Bound[];
}

interface Dispatch {
  pipeline: string;
  operands: readonly Bound[];
  groups: readonly [number, number];
}

const STORAGE_USAGE = 0x80; // GPUBufferUsage.STORAGE, without touching the global where WebGPU is missing
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const MAP_READ = 0x01;
const UNIFORM = 0x40;
const MAX_DISPATCHES = 9; // threshold: 4 × (histogram, scan) + apply, unsplit
/** Most dispatches one pass over a tensor is split into (binding windows × rows). */
const MAX_CHUNKS = 4096;

/**
 * The kernels on a `GPUDevice`, plus the tensor plumbing: upload, wrap, read back, release.
 * Pipelines are compiled once per kernel key; shapes, strides, offsets and coefficients go in a
 * uniform block, so every step reuses the same pipelines. Buffers of released tensors and of
 * readbacks are pooled by size, so a loop that releases (or passes `out`) creates no buffers
 * in steady state.
 *
 * @example Step on the device
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, Tensor } from "@dpmsolver/scheduler";
 * import { requestWebGpuKernels } from "@dpmsolver/scheduler/webgpu";
 * import assert from "node:assert/strict";
 * const gpu = await requestWebGpuKernels();
 * if (gpu) {
 *   const scheduler = new DPMSolverMultistepInverseScheduler();
 *   scheduler.setTimesteps(10);
 *   let sample = gpu.upload(Tensor.from([0.5, -0.25, 1, 0], [1, 1, 2, 2]));
 *   for (const t of scheduler.timesteps) {
 *     const eps = gpu.upload(Tensor.from([0.1, 0.2, 0.3, 0.4], [1, 1, 2, 2]));
 *     const next = scheduler.step(eps, t, sample).prevSample;
 *     eps.release();
 *     sample.release();
 *     sample = next;
 *   }
 *   assert.equal((await sample.read()).size, 4);
 *   gpu.destroy();
 * }
 * ```
 */
export class WebGpuKernels implements Kernels<WebGpuTensor> {
  readonly name = "webgpu";
  /** The device the kernels run on. */
  readonly device: GPUDevice;
  readonly #ownsDevice: boolean;
  readonly #maxGroups: number;
  readonly #maxBinding: number;
  readonly #pipelines = new Map<string, GPUComputePipeline>();
  readonly #layouts = new Map<number, GPUBindGroupLayout>();
  readonly #bindGroups = new Map<string, GPUBindGroup>();
  readonly #bufferIds = new WeakMap<GPUBuffer, number>();
  readonly #pool = new Map<number, GPUBuffer[]>();
  readonly #stagingPool = new Map<number, GPUBuffer[]>();
  readonly #created = new Set<GPUBuffer>();
  #uniforms: GPUBuffer;
  #params = new ArrayBuffer(PARAMS_BYTES * MAX_DISPATCHES);
  #scratch: { hist: GPUBuffer; state: GPUBuffer; rows: number } | null = null;
  #nextId = 0;
  #lost: GPUDeviceLostInfo | null = null;
  #destroyed = false;
  readonly #stats: WebGpuStats = {
    buffersCreated: 0,
    pipelines: 0,
    submits: 0,
    dispatches: 0,
  };

  /**
   * Kernels on `device` (not destroyed by `destroy()` unless `ownsDevice`).
   *
   * @param device The device, e.g. one shared with the model runtime.
   * @param options `maxWorkgroupsPerDimension`; `ownsDevice` makes `destroy()` destroy the device.
   */
  constructor(
    device: GPUDevice,
    options: WebGpuKernelsOptions & { ownsDevice?: boolean } = {},
  ) {
    this.device = device;
    this.#ownsDevice = options.ownsDevice ?? false;
    this.#maxGroups = Math.min(
      device.limits.maxComputeWorkgroupsPerDimension,
      options.maxWorkgroupsPerDimension ?? Infinity,
    );
    this.#maxBinding = Math.min(
      device.limits.maxStorageBufferBindingSize,
      Math.max(
        options.maxStorageBufferBindingSize ?? Infinity,
        2 * device.limits.minStorageBufferOffsetAlignment,
      ),
    );
    this.#uniforms = this.#createBuffer(
      PARAMS_BYTES * MAX_DISPATCHES,
      UNIFORM | COPY_DST,
    );
    device.lost.then((info) => (this.#lost ??= info));
  }

  /** What the backend has done so far (a copy). */
  get stats(): WebGpuStats {
    return { ...this.#stats };
  }

  owns(value: unknown): value is WebGpuTensor {
    return value instanceof WebGpuTensor && value.kernels === this;
  }

  /** A new contiguous tensor (contents unspecified), from the pool when a buffer fits. */
  empty(shape: readonly number[]): WebGpuTensor {
    this.#alive("allocate a WebGPU tensor");
    const bytes = pooledSize(sizeOf(shape) * 4);
    const buffer = this.#pool.get(bytes)?.pop() ??
      this.#createBuffer(bytes, STORAGE_USAGE | COPY_SRC | COPY_DST);
    return new WebGpuTensor(
      this,
      { buffer, owned: true, released: false },
      shape,
      rowMajorStrides(shape),
      0,
    );
  }

  /** Copies a CPU tensor to a new device tensor (a non-contiguous one is made contiguous first). */
  upload(tensor: Tensor): WebGpuTensor {
    if (!(tensor instanceof Tensor)) {
      throw new TypeError(
        `Cannot upload as 'tensor' must be a Tensor: current value is ${
          describe(tensor)
        }`,
      );
    }
    this.#alive("upload a tensor");
    const out = this.empty(tensor.shape);
    const source = tensor.contiguous();
    if (source.size > 0) {
      this.device.queue.writeBuffer(
        out.buffer,
        0,
        source.data as Float32Array<ArrayBuffer>,
        source.offset,
        source.size,
      );
    }
    return out;
  }

  /**
   * A view over an existing buffer (float32 elements, e.g. a model runtime's output), without
   * copying. The buffer needs `STORAGE` usage (and `COPY_SRC` to be read back); it stays the
   * caller's: `release` forgets it but does not destroy it.
   *
   * @throws {TypeError} A buffer without `STORAGE` usage.
   * @throws {RangeError} A view reaching outside the buffer.
   */
  wrap(
    buffer: GPUBuffer,
    shape: readonly number[],
    layout: { strides?: readonly number[]; offset?: number } = {},
  ): WebGpuTensor {
    this.#alive("wrap a GPUBuffer");
    if ((buffer.usage & STORAGE_USAGE) === 0) {
      throw new TypeError(
        `Cannot wrap a GPUBuffer as its usage must include GPUBufferUsage.STORAGE: current usage is ${buffer.usage}`,
      );
    }
    const strides = layout.strides ?? rowMajorStrides(shape);
    const offset = layout.offset ?? 0;
    // The Tensor constructor's checks, on a stand-in of the buffer's length.
    const floats = Math.floor(buffer.size / 4);
    if (
      !shape.every((n) => Number.isInteger(n) && n >= 0) ||
      strides.length !== shape.length || !strides.every(Number.isInteger) ||
      !Number.isInteger(offset) || offset < 0
    ) {
      throw new RangeError(
        `Cannot wrap a GPUBuffer as shape ${formatShape(shape)}, strides ${
          formatShape(strides)
        } and offset ${offset} are not a valid layout`,
      );
    }
    const [lo, hi] = span(shape, strides, offset);
    if (sizeOf(shape) > 0 && (lo < 0 || hi >= floats)) {
      throw new RangeError(
        `Cannot wrap a GPUBuffer as shape ${formatShape(shape)} with strides ${
          formatShape(strides)
        } and offset ${offset} reaches outside its ${floats} floats`,
      );
    }
    return new WebGpuTensor(
      this,
      { buffer, owned: false, released: false },
      shape,
      strides,
      offset,
    );
  }

  /**
   * Reads a tensor back into a new contiguous CPU {@link Tensor}: the one point where the host
   * waits for the device. A non-contiguous view is gathered on the device first.
   *
   * @throws {WebGpuDeviceLostError} The device was lost before the data came back.
   * @throws {Error} The device rejected the copy (e.g. a wrapped buffer was destroyed).
   */
  async read(tensor: WebGpuTensor): Promise<Tensor> {
    this.#check("read", tensor);
    const size = tensor.size;
    if (size === 0) return Tensor.zeros(tensor.shape);
    let source = tensor;
    let temporary: WebGpuTensor | null = null;
    if (!tensor.isContiguous()) {
      temporary = this.empty(tensor.shape);
      this.copy(temporary, tensor);
      source = temporary;
    }
    const bytes = size * 4;
    const pooled = pooledSize(bytes);
    const staging = this.#stagingPool.get(pooled)?.pop() ??
      this.#createBuffer(pooled, MAP_READ | COPY_DST);
    // A copy the device rejects (a wrapped buffer destroyed by its owner) or a device lost on
    // the way would leave stale staging memory: both are errors, never data.
    this.device.pushErrorScope("validation");
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(
      source.buffer,
      source.offset * 4,
      staging,
      0,
      bytes,
    );
    this.#submit(encoder);
    const scope = this.device.popErrorScope().catch(() => null);
    temporary?.release();
    let failure: Error | null = null;
    try {
      await staging.mapAsync(MAP_READ, 0, bytes);
    } catch (error) {
      failure = error as Error;
    }
    const rejected = await scope;
    if (failure !== null || rejected !== null || this.#lost !== null) {
      if (failure === null) staging.unmap();
      throw await this.#readFailure(rejected ?? failure);
    }
    const data = new Float32Array(staging.getMappedRange(0, bytes).slice(0));
    staging.unmap();
    pushTo(this.#stagingPool, pooled, staging);
    return new Tensor(data, tensor.shape);
  }

  /**
   * Gives a tensor's buffer back: a buffer this backend allocated returns to its pool (for the
   * next `empty`), a wrapped one is only forgotten. Every view of the buffer becomes unusable.
   * Work already submitted that reads the buffer is unaffected.
   */
  release(tensor: WebGpuTensor): void {
    const storage = tensor.storage;
    if (storage.released) return;
    storage.released = true;
    if (storage.owned) {
      pushTo(this.#pool, storage.buffer.size, storage.buffer);
    }
  }

  /**
   * Destroys every buffer this backend created (pooled or still held by tensors) and, if it
   * requested the device itself, the device. Wrapped buffers and a shared device are left alone.
   */
  destroy(): void {
    this.#destroyed = true;
    for (const buffer of this.#created) buffer.destroy();
    this.#created.clear();
    this.#pool.clear();
    this.#stagingPool.clear();
    this.#bindGroups.clear();
    this.#scratch = null;
    if (this.#ownsDevice) this.device.destroy();
  }

  copy(out: WebGpuTensor, x: WebGpuTensor): void {
    this.#elementwise("copy", out, [x], copyBody, () => {});
  }

  axpbyDiv(
    out: WebGpuTensor,
    a: number,
    x: WebGpuTensor,
    b: number,
    y: WebGpuTensor | null,
    d: number,
  ): void {
    const inputs = y === null ? [x] : [x, y];
    this.#elementwise(
      `axpbydiv_${inputs.length}`,
      out,
      inputs,
      axpbyDivBody(y !== null),
      (coef) => {
        coef[0] = a;
        coef[1] = b;
        coef[2] = d;
      },
    );
  }

  multistep(
    out: WebGpuTensor,
    sample: WebGpuTensor,
    history: readonly WebGpuTensor[],
    c: MultistepCoefficients,
    noise: WebGpuTensor | null,
  ): void {
    checkHistory("multistep", out, history, c.order, c.order);
    const withNoise = c.e !== 0 && noise !== null;
    const inputs = [sample, ...history.slice(0, c.order)];
    if (withNoise) inputs.push(noise);
    this.#elementwise(
      `multistep_o${c.order}${withNoise ? "_noise" : ""}`,
      out,
      inputs,
      multistepBody(c.order, withNoise),
      (coef) => writeUpdateCoefficients(coef, c),
    );
  }

  /**
   * Model-output conversion into `converted` and the multistep update into `out` in one
   * dispatch (see {@link Kernels.convertAndUpdate}): the same bits as `axpbyDiv` (or `copy`)
   * then `multistep`, reading the sample and model output once and never reading `converted`
   * back: 4 arrays moved instead of 6 at order 1, 5 instead of 7 at order 2, 6 instead of 8 at
   * order 3 (plus the noise).
   * Takes the separate kernels (two dispatches) when `converted` shares memory with another
   * operand.
   */
  convertAndUpdate(
    out: WebGpuTensor,
    converted: WebGpuTensor,
    sample: WebGpuTensor,
    modelOutput: WebGpuTensor,
    conversion: ModelOutputConversion,
    history: readonly WebGpuTensor[],
    c: MultistepCoefficients,
    noise: WebGpuTensor | null,
  ): void {
    const { operands, withNoise, aliased } = this.#fusedUpdate(
      "convertAndUpdate",
      out,
      converted,
      history,
      c,
      [sample, modelOutput],
      noise,
    );
    if (aliased) {
      return convertThenUpdate(
        this,
        out,
        converted,
        sample,
        modelOutput,
        conversion,
        history,
        c,
        noise,
      );
    }
    const copy = conversion.form === "copy";
    this.#elementwise(
      `convert_${conversion.form}_o${c.order}${withNoise ? "_noise" : ""}`,
      out,
      [converted, ...operands],
      convertUpdateBody(conversion.form, c.order, withNoise),
      (coef) => {
        writeUpdateCoefficients(coef, c);
        coef.set(
          copy ? [1, 0, 1] : [conversion.a, conversion.b, conversion.d],
          9,
        );
      },
    );
  }

  /**
   * Dynamic thresholding of `x0` with its last pass fused into the multistep update (see
   * {@link Kernels.thresholdAndUpdate}): the radix select of {@link threshold}, then one pass
   * that writes the thresholded `x0` and the update into `out`, all in one submit. The same bits
   * as `threshold` then `multistep`. Takes them separately when `x0` shares memory with another
   * operand.
   */
  thresholdAndUpdate(
    out: WebGpuTensor,
    x0: WebGpuTensor,
    sample: WebGpuTensor,
    ratio: number,
    maxValue: number,
    history: readonly WebGpuTensor[],
    c: MultistepCoefficients,
    noise: WebGpuTensor | null,
  ): void {
    const name = "thresholdAndUpdate";
    const { operands, withNoise, aliased } = this.#fusedUpdate(
      name,
      out,
      x0,
      history,
      c,
      [sample],
      noise,
    );
    if (aliased) {
      this.threshold(x0, ratio, maxValue);
      this.multistep(out, sample, [x0, ...history], c, noise);
      return;
    }
    if (out.size === 0) return;
    this.#thresholdThenApply(
      name,
      [x0, out, ...operands],
      ratio,
      maxValue,
      (flat) =>
        this.#pipeline(
          `threshold_update_o${c.order}${withNoise ? "_noise" : ""}_${
            flat ? "flat" : "strided"
          }`,
          operands.length + 4,
          () => applyUpdateShader(flat, c.order, withNoise),
        ),
      (coef) => writeUpdateCoefficients(coef, c),
    );
  }

  threshold(x: WebGpuTensor, ratio: number, maxValue: number): void {
    this.#check("threshold", x);
    if (x.size === 0) return;
    this.#thresholdThenApply(
      "threshold",
      [x],
      ratio,
      maxValue,
      (flat) =>
        this.#pipeline(
          `threshold_apply_${flat ? "flat" : "strided"}`,
          3,
          () => applyShader(flat),
        ),
      () => {},
    );
  }

  // The checked operands of a fused update after `out` and `x0` (not included): `inputs`, the
  // history the order reads, and the noise when the coefficients read it (`withNoise`).
  // `aliased`: `x0` shares memory with `out` or an operand, so the fused pass would read what it
  // writes and the caller runs the separate kernels instead.
  #fusedUpdate(
    name: string,
    out: WebGpuTensor,
    x0: WebGpuTensor,
    history: readonly WebGpuTensor[],
    c: MultistepCoefficients,
    inputs: readonly WebGpuTensor[],
    noise: WebGpuTensor | null,
  ): { operands: WebGpuTensor[]; withNoise: boolean; aliased: boolean } {
    checkHistory(name, out, history, c.order - 1, c.order);
    const withNoise = c.e !== 0 && noise !== null;
    const operands = [...inputs, ...history.slice(0, c.order - 1)];
    if (withNoise) operands.push(noise);
    for (const t of [out, x0, ...operands]) {
      this.#check(name, t);
      checkSameShape(name, out, t);
    }
    const aliased = [out, ...operands].some((t) => overlaps(x0, t));
    return { operands, withNoise, aliased };
  }

  // Dynamic thresholding of `tensors[0]` (checked, not empty), in one submit: the radix select of
  // `#selection`, then per chunk of `tensors` the apply pass from `applyPipeline` (given the
  // layout), which reads the scratch bindings after the first operand, coef 9–11 from the
  // selection and whatever else `setCoef` writes.
  #thresholdThenApply(
    name: string,
    tensors: readonly WebGpuTensor[],
    ratio: number,
    maxValue: number,
    applyPipeline: (flat: boolean) => string,
    setCoef: (coef: Float32Array) => void,
  ): void {
    const view = this.#bind(name, tensors);
    const select = this.#selection(
      name,
      tensors[0]!,
      ratio,
      maxValue,
      view.chunks.length,
    );
    const pipeline = applyPipeline(view.flat);
    for (const chunk of view.chunks) {
      const block = select.params(select.dispatches.length);
      writeChunk(block, chunk);
      block.meta[3] = select.perItem;
      setCoef(block.coef);
      block.coef.set(select.coef, 9);
      const [bound0, ...rest] = chunk.operands;
      select.dispatches.push({
        pipeline,
        operands: [bound0!, ...select.scratch, ...rest],
        groups: this.#groups(chunk.count),
      });
    }
    this.#run(select.dispatches, [select.scratch[0].buffer]);
  }

  // The radix select of dynamic thresholding: its dispatches (4 rounds of a histogram per window
  // of whole batch items, then a scan), uniform blocks for them and the `applies` dispatches of
  // the apply pass, the scratch bindings and the apply pass's coef 9–11. `x` is checked and not
  // empty.
  #selection(
    name: string,
    x: WebGpuTensor,
    ratio: number,
    maxValue: number,
    applies: number,
  ) {
    const batch = x.shape[0] ?? 1;
    const perItem = x.size / batch;
    if (batch > this.#maxGroups) {
      throw new RangeError(
        `Cannot run ${name} as the batch size must be at most ${this.#maxGroups} on this device: current value is ${batch}`,
      );
    }
    // torch.quantile's rank and weight depend only on the sizes: host scalars.
    const rank = quantileRank(ratio, perItem);
    const below = Math.trunc(rank);
    const weight = Math.fround(rank - below);
    const above = weight === 0 ? below : below + 1;
    const view = this.#bind(name, [x], batch);
    const scratch = this.#thresholdScratch(batch);
    const scratchBound = [
      wholeBuffer(scratch.hist),
      wholeBuffer(scratch.state),
    ] as const;
    const key = view.flat ? "flat" : "strided";
    const perRowGroups = Math.min(
      Math.ceil(perItem / WORKGROUP_SIZE),
      this.#maxGroups,
      1024,
    );
    const histogram = this.#pipeline(
      `threshold_hist_${key}`,
      3,
      () => histogramShader(view.flat),
    );
    const scan = this.#pipeline(
      `threshold_scan_${key}`,
      3,
      () => scanShader(view.flat),
    );
    const dispatches: Dispatch[] = [];
    const params = this.#clearParams(
      4 * (view.chunks.length + 1) + applies,
    );
    const meta = (chunk: Chunk, pass: number) => {
      const block = params(dispatches.length);
      writeChunk(block, chunk);
      block.meta.set([perItem, pass, below, above], 3);
      return [chunk.operands[0]!, ...scratchBound];
    };
    for (let pass = 0; pass < 4; pass++) {
      for (const chunk of view.chunks) {
        dispatches.push({
          pipeline: histogram,
          operands: meta(chunk, pass),
          groups: [perRowGroups, chunk.count / perItem],
        });
      }
      // The scan reads only the scratch buffers: any window of x will do.
      dispatches.push({
        pipeline: scan,
        operands: meta(view.chunks[0]!, pass),
        groups: [batch, 1],
      });
    }
    return {
      dispatches,
      params,
      perItem,
      scratch: scratchBound,
      coef: [weight, Math.fround(1 - weight), Math.fround(maxValue)],
    };
  }

  // Element-wise kernel over out and inputs (all of out's shape): one dispatch per chunk of
  // `#bind`, all in one submit.
  #elementwise(
    name: string,
    out: WebGpuTensor,
    inputs: readonly WebGpuTensor[],
    body: string,
    setCoef: (coef: Float32Array) => void,
  ): void {
    this.#check(name, out);
    for (const t of inputs) {
      this.#check(name, t);
      checkSameShape(name, out, t);
    }
    if (out.size === 0) return;
    const operands = [out, ...inputs];
    const view = this.#bind(name, operands);
    const key = `${name}_${view.flat ? "flat" : "strided"}`;
    const pipeline = this.#pipeline(
      key,
      operands.length,
      () => elementwiseShader(operands.length, view.flat, body),
    );
    const params = this.#clearParams(view.chunks.length);
    this.#run(view.chunks.map((chunk, slot) => {
      const block = params(slot);
      writeChunk(block, chunk);
      setCoef(block.coef);
      return {
        pipeline,
        operands: chunk.operands,
        groups: this.#groups(chunk.count),
      };
    }));
  }

  // The operands' merged layout (dimensions that every operand walks contiguously are merged,
  // size-1 dimensions dropped), cut into chunks whose binding windows (aligned to
  // minStorageBufferOffsetAlignment) fit the binding limit: one chunk when every operand's whole
  // range fits, otherwise boxes of consecutive rows along the outermost dimension where one row
  // fits (every dimension after it whole). With `items` > 0, chunks hold whole items of the first
  // dimension (the thresholding's batch items) and an item too large for one binding throws.
  #bind(name: string, tensors: readonly WebGpuTensor[], items = 0) {
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
    const align = this.device.limits.minStorageBufferOffsetAlignment;
    const limit = this.#maxBinding;
    const buffers = tensors.map((t) => t.buffer);
    // Operand k's window for the box `sub` of dimensions d… whose first element is at `offset`.
    const window = (
      k: number,
      sub: readonly number[],
      d: number,
      offset: number,
    ): Bound => {
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
    const chunks: Chunk[] = [];
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

  #check(operation: string, tensor: WebGpuTensor): void {
    this.#alive(`run ${operation}`);
    if (!this.owns(tensor)) {
      throw new TypeError(
        `Cannot ${operation} as an operand is not a tensor of these WebGPU kernels: current value is ${
          describe(tensor)
        }`,
      );
    }
    void tensor.buffer; // throws once released
  }

  // Throws once the device is lost or these kernels destroyed: work recorded then would be
  // dropped by the device without a word.
  #alive(operation: string): void {
    if (this.#lost !== null) throw this.#lostError(operation, this.#lost);
    if (this.#destroyed) {
      throw new Error(
        `Cannot ${operation} as these WebGPU kernels were destroyed: create new ones`,
      );
    }
  }

  #lostError(
    operation: string,
    info: GPUDeviceLostInfo,
  ): WebGpuDeviceLostError {
    return new WebGpuDeviceLostError(
      `Cannot ${operation} as the WebGPU device was lost (reason: ${info.reason}${
        info.message ? `, "${info.message}"` : ""
      }): create new kernels on a new device, or fall back to the CPU`,
      info.reason,
    );
  }

  // The error of a failed readback: the device loss when that is the cause (the lost promise
  // settles just after the failed mapping), otherwise the device's own message.
  async #readFailure(
    cause: GPUError | Error | null,
  ): Promise<Error> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const lost = this.#lost ?? await Promise.race([
      this.device.lost,
      new Promise<null>((done) => (timer = setTimeout(() => done(null), 1000))),
    ]);
    clearTimeout(timer);
    if (lost !== null) {
      this.#lost ??= lost;
      const error = this.#lostError("read a WebGPU tensor back", lost);
      if (cause) error.cause = cause;
      return error;
    }
    if (this.#destroyed) {
      return new Error(
        "Cannot read a WebGPU tensor back as these WebGPU kernels were destroyed",
        { cause },
      );
    }
    return new Error(
      `Cannot read a WebGPU tensor back as the device rejected the copy: ${
        cause?.message ?? "unknown error"
      }`,
      { cause },
    );
  }

  // Workgroups for `count` elements: along x up to the limit, then rows along y.
  #groups(count: number): [number, number] {
    const total = Math.ceil(count / WORKGROUP_SIZE);
    const x = Math.min(total, this.#maxGroups);
    const y = Math.ceil(total / x);
    if (y > this.#maxGroups) {
      throw new RangeError(
        `Cannot run a WebGPU kernel on ${count} elements: at most ${
          this.#maxGroups ** 2 * WORKGROUP_SIZE
        } fit one dispatch`,
      );
    }
    return [x, y];
  }

  #pipeline(
    key: string,
    storageBindings: number,
    code: () => string,
  ): string {
    if (!this.#pipelines.has(key)) {
      const module = this.device.createShaderModule({
        label: key,
        code: code(),
      });
      this.#pipelines.set(
        key,
        this.device.createComputePipeline({
          label: key,
          layout: this.device.createPipelineLayout({
            bindGroupLayouts: [this.#layout(storageBindings)],
          }),
          compute: { module, entryPoint: "main" },
        }),
      );
      this.#stats.pipelines++;
    }
    return key;
  }

  #layout(storageBindings: number): GPUBindGroupLayout {
    let layout = this.#layouts.get(storageBindings);
    if (!layout) {
      const entries: GPUBindGroupLayoutEntry[] = [{
        binding: 0,
        visibility: 4, // GPUShaderStage.COMPUTE
        buffer: { type: "uniform" },
      }];
      for (let k = 1; k <= storageBindings; k++) {
        entries.push({
          binding: k,
          visibility: 4,
          buffer: { type: "storage" },
        });
      }
      layout = this.device.createBindGroupLayout({ entries });
      this.#layouts.set(storageBindings, layout);
    }
    return layout;
  }

  // Bind groups are cached by (slot, operand ranges): a steady loop creates none.
  #bindGroup(slot: number, operands: readonly Bound[]): GPUBindGroup {
    const key = `${slot}|${
      operands.map((o) => `${this.#id(o.buffer)}:${o.start}:${o.bytes}`).join(
        ",",
      )
    }`;
    let group = this.#bindGroups.get(key);
    if (!group) {
      if (this.#bindGroups.size >= 1024) this.#bindGroups.clear();
      group = this.device.createBindGroup({
        layout: this.#layout(operands.length),
        entries: [
          {
            binding: 0,
            resource: {
              buffer: this.#uniforms,
              offset: slot * PARAMS_BYTES,
              size: PARAMS_BYTES,
            },
          },
          ...operands.map((o, k) => ({
            binding: k + 1,
            resource: { buffer: o.buffer, offset: o.start, size: o.bytes },
          })),
        ],
      });
      this.#bindGroups.set(key, group);
    }
    return group;
  }

  #id(buffer: GPUBuffer): number {
    let id = this.#bufferIds.get(buffer);
    if (id === undefined) {
      id = this.#nextId++;
      this.#bufferIds.set(buffer, id);
    }
    return id;
  }

  // Zeroed uniform blocks for `count` dispatches, as typed views per field. The uniform buffer
  // grows (once, to a power of two of blocks) when a split pass needs more blocks than it holds.
  #clearParams(count: number): (slot: number) => ParamsBlock {
    if (count * PARAMS_BYTES > this.#params.byteLength) {
      let blocks = this.#params.byteLength / PARAMS_BYTES;
      while (blocks < count) blocks *= 2;
      this.#params = new ArrayBuffer(blocks * PARAMS_BYTES);
      this.#created.delete(this.#uniforms);
      this.#uniforms.destroy(); // submitted work that reads it still completes
      this.#uniforms = this.#createBuffer(
        blocks * PARAMS_BYTES,
        UNIFORM | COPY_DST,
      );
      this.#bindGroups.clear();
    }
    new Uint8Array(this.#params, 0, count * PARAMS_BYTES).fill(0);
    this.#paramsUsed = count;
    return (slot) => paramsBlock(this.#params, slot);
  }
  #paramsUsed = 0;

  // Writes the uniform blocks, records the dispatches in one compute pass and submits. The
  // uniform buffer is rewritten by every call: queue.writeBuffer is ordered with submits, so
  // earlier submitted work still sees its own blocks.
  #run(
    dispatches: readonly Dispatch[],
    clear: readonly GPUBuffer[] = [],
  ): void {
    const { queue } = this.device;
    queue.writeBuffer(
      this.#uniforms,
      0,
      this.#params,
      0,
      this.#paramsUsed * PARAMS_BYTES,
    );
    const encoder = this.device.createCommandEncoder();
    for (const buffer of clear) encoder.clearBuffer(buffer);
    const pass = encoder.beginComputePass();
    dispatches.forEach((d, slot) => {
      pass.setPipeline(this.#pipelines.get(d.pipeline)!);
      pass.setBindGroup(0, this.#bindGroup(slot, d.operands));
      pass.dispatchWorkgroups(d.groups[0], d.groups[1]);
      this.#stats.dispatches++;
    });
    pass.end();
    this.#submit(encoder);
  }

  #submit(encoder: GPUCommandEncoder): void {
    this.device.queue.submit([encoder.finish()]);
    this.#stats.submits++;
  }

  #thresholdScratch(rows: number): { hist: GPUBuffer; state: GPUBuffer } {
    if (!this.#scratch || this.#scratch.rows < rows) {
      for (const old of [this.#scratch?.hist, this.#scratch?.state]) {
        if (!old) continue;
        this.#created.delete(old);
        old.destroy(); // submitted work that reads it still completes
      }
      this.#scratch = {
        hist: this.#createBuffer(
          rows * HIST_STRIDE * 4,
          STORAGE_USAGE | COPY_DST,
        ),
        state: this.#createBuffer(rows * STATE_STRIDE * 4, STORAGE_USAGE),
        rows,
      };
    }
    return this.#scratch;
  }

  #createBuffer(size: number, usage: number): GPUBuffer {
    const buffer = this.device.createBuffer({ size, usage });
    this.#created.add(buffer);
    this.#stats.buffersCreated++;
    return buffer;
  }
}

interface ParamsBlock {
  coef: Float32Array;
  meta: Uint32Array;
  shape: Uint32Array;
  strides: Int32Array;
  offsets: Uint32Array;
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

// The layout of one chunk into a uniform block: count, rank, shape, strides and offsets, and in
// meta 7 the row-major index of its first element (the thresholding's item of element i is
// (i + meta 7) / perItem).
function writeChunk(block: ParamsBlock, chunk: Chunk): void {
  block.shape.set(chunk.shape);
  chunk.operands.forEach((o, k) => {
    block.strides.set(o.strides, k * MAX_RANK);
    block.offsets[k] = o.offset;
  });
  block.meta[0] = chunk.count;
  block.meta[1] = chunk.shape.length;
  block.meta[7] = chunk.base;
}

// Coef 0–8 of the update bodies: the multistep coefficients in the order the WGSL reads them.
function writeUpdateCoefficients(
  coef: Float32Array,
  c: MultistepCoefficients,
): void {
  coef.set([c.a, c.b, c.c, c.d, c.e, c.k0, c.k1, c.q, c.k2]);
}

function wholeBuffer(buffer: GPUBuffer): Bound {
  return { buffer, start: 0, bytes: buffer.size, offset: 0, strides: [] };
}

// Lowest and highest element index a layout touches.
function span(
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

// Whether two tensors may share memory: the same buffer and overlapping element spans.
function overlaps(a: WebGpuTensor, b: WebGpuTensor): boolean {
  if (a.storage.buffer !== b.storage.buffer || a.size === 0 || b.size === 0) {
    return false;
  }
  const [aLo, aHi] = span(a.shape, a.strides, a.offset);
  const [bLo, bHi] = span(b.shape, b.strides, b.offset);
  return aLo <= bHi && bLo <= aHi;
}

// Pool buckets: sizes rounded up to 256 bytes (at least 256).
function pooledSize(bytes: number): number {
  return Math.max(256, Math.ceil(bytes / 256) * 256);
}

function pushTo(
  pool: Map<number, GPUBuffer[]>,
  key: number,
  buffer: GPUBuffer,
) {
  const list = pool.get(key);
  if (list) list.push(buffer);
  else pool.set(key, [buffer]);
}
