/**
 * The WebGPU backend: the kernels as WGSL compute shaders on `navigator.gpu`, over
 * {@link WebGpuTensor}s that live in `GPUBuffer`s. A scheduler given WebGPU tensors steps them on
 * the device: each kernel call records its dispatches and submits them, with no readback and no
 * host work proportional to the tensor size. Results match the CPU backend's float32 operation
 * order (products are kept from fusing into FMAs); only the `dot` reduction differs, summing in
 * float32 where the CPU sums in float64. A kernel the device rejects (a shader that does
 * not compile, a pipeline or submit that fails validation, memory it cannot give) is never
 * silent: the next call or readback throws a {@link WebGpuKernelError} naming it, and `read()`
 * waits for every error report before returning data (see docs/webgpu.md).
 *
 * @module
 */
import { convertThenUpdate } from "../_convert.ts";
import { describe } from "../_describe.ts";
import {
  checkHistory,
  checkSameShape,
  rowMajorStrides,
  sizeOf,
} from "../_shape.ts";
import type { ModelOutputConversion } from "../kernels.ts";
import type { MultistepCoefficients } from "../solver.ts";
import { Tensor } from "../tensor.ts";
import { BufferPool, USAGE } from "./webgpu/_buffer_pool.ts";
import {
  type BindingLimits,
  bindingPlan,
  type Bound,
  checkWindow,
  type Chunk,
  planChunks,
  shareWindows,
  spansOverlap,
  workgroups,
} from "./webgpu/_chunks.ts";
import { DeviceWatch } from "./webgpu/_device_watch.ts";
import { PipelineCache } from "./webgpu/_pipelines.ts";
import { readBack, type ReadbackContext } from "./webgpu/_readback.ts";
import { thresholdPlan } from "./webgpu/_threshold_plan.ts";
import {
  Uniforms,
  writeChunk,
  writeUpdateCoefficients,
} from "./webgpu/_uniforms.ts";
import {
  bindingLayout,
  elementwiseShader,
  WORKGROUP_SIZE,
} from "./webgpu/_wgsl.ts";
import {
  WebGpuDeviceLostError,
  WebGpuKernelError,
  WebGpuUnavailableError,
} from "./webgpu/errors.ts";
import {
  axpbyDivBody,
  convertUpdateBody,
  copyBody,
  multistepBody,
} from "./webgpu/linear_combination.ts";
import {
  dotFinishShader,
  dotShader,
  dotValue,
  maxAbsShader,
  maxAbsValue,
  REDUCTION_GROUPS,
} from "./webgpu/reduction.ts";
import {
  applyShader,
  applyUpdateShader,
  HIST_STRIDE,
  histogramShader,
  scanShader,
  STATE_STRIDE,
} from "./webgpu/threshold.ts";
import {
  type WebGpuStorage,
  WebGpuTensor,
  type WebGpuTensorKernels,
} from "./webgpu/tensor.ts";

export {
  WebGpuDeviceLostError,
  WebGpuKernelError,
  type WebGpuStorage,
  WebGpuTensor,
  type WebGpuTensorKernels,
  WebGpuUnavailableError,
};

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

interface Dispatch {
  pipeline: string;
  /** The storage bindings' access, `w` or `r` each (the pipeline's layout). */
  layout: string;
  operands: readonly Bound<GPUBuffer>[];
  groups: readonly [number, number];
}

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
export class WebGpuKernels implements WebGpuTensorKernels {
  readonly name = "webgpu";
  /** The device the kernels run on. */
  readonly device: GPUDevice;
  readonly #ownsDevice: boolean;
  readonly #maxGroups: number;
  readonly #limits: BindingLimits;
  readonly #watch: DeviceWatch;
  readonly #buffers: BufferPool;
  readonly #pipelines: PipelineCache;
  readonly #uniforms: Uniforms;
  #scratch: {
    hist: GPUBuffer;
    rows: number;
    bound: readonly [Bound<GPUBuffer>, Bound<GPUBuffer>];
  } | null = null;
  readonly #counts = { submits: 0, dispatches: 0 };

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
    this.#watch = new DeviceWatch(device);
    this.#maxGroups = Math.min(
      device.limits.maxComputeWorkgroupsPerDimension,
      options.maxWorkgroupsPerDimension ?? Infinity,
    );
    this.#limits = {
      maxStorageBufferBindingSize: Math.min(
        device.limits.maxStorageBufferBindingSize,
        Math.max(
          options.maxStorageBufferBindingSize ?? Infinity,
          2 * device.limits.minStorageBufferOffsetAlignment,
        ),
      ),
      minStorageBufferOffsetAlignment:
        device.limits.minStorageBufferOffsetAlignment,
    };
    this.#buffers = new BufferPool(device, this.#watch);
    this.#pipelines = new PipelineCache(device, this.#watch);
    this.#uniforms = new Uniforms(
      this.#buffers,
      () => this.#pipelines.clearBindGroups(),
    );
  }

  /** What the backend has done so far (a copy). */
  get stats(): WebGpuStats {
    return {
      buffersCreated: this.#buffers.created,
      pipelines: this.#pipelines.compiled,
      ...this.#counts,
    };
  }

  owns(value: unknown): value is WebGpuTensor {
    return value instanceof WebGpuTensor && value.kernels === this;
  }

  /** A new contiguous tensor (contents unspecified), from the pool when a buffer fits. */
  empty(shape: readonly number[]): WebGpuTensor {
    this.#alive("allocate a WebGPU tensor");
    const buffer = this.#buffers.storage(sizeOf(shape) * 4);
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
    if ((buffer.usage & USAGE.STORAGE) === 0) {
      throw new TypeError(
        `Cannot wrap a GPUBuffer as its usage must include GPUBufferUsage.STORAGE: current usage is ${buffer.usage}`,
      );
    }
    const strides = layout.strides ?? rowMajorStrides(shape);
    const offset = layout.offset ?? 0;
    checkWindow("wrap a GPUBuffer", shape, strides, offset, buffer.size);
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
    const data = await readBack(
      this.#readbackContext(),
      source.buffer,
      source.offset * 4,
      size * 4,
      () => temporary?.release(),
    );
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
      this.#buffers.releaseStorage(storage.buffer);
    }
  }

  /**
   * Destroys every buffer this backend created (pooled or still held by tensors) and, if it
   * requested the device itself, the device. Wrapped buffers and a shared device are left alone.
   */
  destroy(): void {
    this.#watch.destroy();
    this.#buffers.destroyAll();
    this.#pipelines.clearBindGroups();
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
      2,
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
    // The apply pass binds `out` as u32 words (see webgpu/threshold.ts), so it cannot lend its
    // binding to an input in its buffer, nor can x0 share one: an input in the buffer of `out` or
    // `x0` takes the separate kernels too.
    const plan = bindingPlan([x0, out, ...operands], 2);
    if (aliased || plan.shared.some((j) => j >= 0)) {
      this.threshold(x0, ratio, maxValue);
      this.multistep(out, sample, [x0, ...history], c, noise);
      return;
    }
    if (out.size === 0) return;
    const inputs = plan.access.slice(2);
    this.#thresholdThenApply(
      name,
      [x0, out, ...operands],
      ratio,
      maxValue,
      (flat) =>
        this.#pipelines.pipeline(
          `threshold_update_o${c.order}${withNoise ? "_noise" : ""}_${
            flat ? "flat" : "strided"
          }_${inputs}`,
          `wwww${inputs}`,
          () => applyUpdateShader(flat, c.order, withNoise, inputs),
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
        this.#pipelines.pipeline(
          `threshold_apply_${flat ? "flat" : "strided"}`,
          "www",
          () => applyShader(flat),
        ),
      () => {},
    );
  }

  /**
   * `max |x|` over every element (NaN if any element is NaN; 0 for an empty tensor), computed
   * on the device and read back as one scalar: the CPU kernel's value bit for bit (an integer
   * maximum over the bits of |x|, see webgpu/reduction.ts).
   */
  maxAbs(x: WebGpuTensor): Promise<number> {
    this.#check("maxAbs", x);
    if (x.size === 0) return Promise.resolve(0);
    const view = planChunks("maxAbs", [x], this.#limits);
    const pipeline = this.#pipelines.pipeline(
      `maxabs_${view.flat ? "flat" : "strided"}`,
      "rw",
      () => maxAbsShader(view.flat),
    );
    const result = this.#buffers.storage(4);
    const params = this.#uniforms.clear(view.chunks.length);
    this.#run(
      "maxAbs",
      view.chunks.map((chunk, slot) => {
        writeChunk(params(slot), chunk);
        return {
          pipeline,
          layout: "rw",
          operands: [chunk.operands[0]!, wholeBuffer(result)],
          groups: [this.#reductionGroups(chunk.count), 1],
        };
      }),
      [result],
    );
    return this.#readWords(result, 1, [])
      .then((words) => maxAbsValue(words[0]!));
  }

  /**
   * `Σ x·y` over every element (0 for empty tensors), computed on the device in float32 (products
   * rounded to float32, added in a tree; see webgpu/reduction.ts) and read back as one scalar.
   * Not the CPU kernel's float64 sum: the error is at most γ_n·Σ|x·y| (γ_n = n·u / (1 − n·u),
   * u = 2⁻²⁴, n elements) while no product or partial sum leaves float32's normal range. NaN and
   * infinities come out as the CPU's: NaN for a NaN operand, ∞·0, or infinities of both signs.
   */
  dot(x: WebGpuTensor, y: WebGpuTensor): Promise<number> {
    this.#check("dot", x);
    this.#check("dot", y);
    checkSameShape("dot", x, y);
    if (x.size === 0) return Promise.resolve(0);
    const view = planChunks("dot", [x, y], this.#limits);
    const key = view.flat ? "flat" : "strided";
    const pipeline = this.#pipelines.pipeline(
      `dot_${key}`,
      "rrww",
      () => dotShader(view.flat),
    );
    const finish = this.#pipelines.pipeline(
      "dot_finish",
      "rw",
      dotFinishShader,
    );
    const groups = view.chunks.map((c) => this.#reductionGroups(c.count));
    const partials = groups.reduce((a, b) => a + b, 0);
    const partial = this.#buffers.storage(partials * 4);
    const result = this.#buffers.storage(8);
    const scratch = [wholeBuffer(partial), wholeBuffer(result)] as const;
    const params = this.#uniforms.clear(view.chunks.length + 1);
    let first = 0;
    const dispatches: Dispatch[] = view.chunks.map((chunk, slot) => {
      const block = params(slot);
      writeChunk(block, chunk);
      block.meta[3] = first;
      first += groups[slot]!;
      return {
        pipeline,
        layout: "rrww",
        operands: [...chunk.operands, ...scratch],
        groups: [groups[slot]!, 1],
      };
    });
    params(dispatches.length).meta[0] = partials;
    dispatches.push({
      pipeline: finish,
      layout: "rw",
      operands: scratch,
      groups: [1, 1],
    });
    this.#run("dot", dispatches, [result]);
    return this.#readWords(result, 2, [partial])
      .then((words) => dotValue(words[0]!, words[1]!));
  }

  // Workgroups of a reduction over `count` elements: one per WORKGROUP_SIZE elements, at most
  // REDUCTION_GROUPS (each thread strides through the rest).
  #reductionGroups(count: number): number {
    return Math.min(
      Math.ceil(count / WORKGROUP_SIZE),
      REDUCTION_GROUPS,
      this.#maxGroups,
    );
  }

  // The first `count` words of a reduction's `result` buffer, read back; `result` and the
  // `temporaries` go back to the pool once the copy is submitted.
  async #readWords(
    result: GPUBuffer,
    count: number,
    temporaries: readonly GPUBuffer[],
  ): Promise<Uint32Array> {
    const data = await readBack(
      this.#readbackContext(),
      result,
      0,
      count * 4,
      () => {
        for (const b of [result, ...temporaries]) {
          this.#buffers.releaseStorage(b);
        }
      },
    );
    return new Uint32Array(data.buffer, data.byteOffset, count);
  }

  #readbackContext(): ReadbackContext {
    return {
      device: this.device,
      watch: this.#watch,
      pool: this.#buffers,
      submitted: () => this.#counts.submits++,
    };
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

  // Dynamic thresholding of `tensors[0]` (checked, not empty), in one submit: the radix select
  // of the threshold plan, then per chunk of `tensors` the apply pass from `applyPipeline` (given
  // the layout), which reads the scratch bindings after the first operand, coef 9–11 from the
  // plan and whatever else `setCoef` writes.
  #thresholdThenApply(
    name: string,
    tensors: readonly WebGpuTensor[],
    ratio: number,
    maxValue: number,
    applyPipeline: (flat: boolean) => string,
    setCoef: (coef: Float32Array) => void,
  ): void {
    const x = tensors[0]!;
    const batch = x.shape[0] ?? 1;
    const items = planChunks(name, [x], this.#limits, batch);
    const plan = thresholdPlan(
      name,
      x.shape,
      ratio,
      maxValue,
      items.chunks,
      this.#maxGroups,
    );
    const view = planChunks(name, tensors, this.#limits);
    // x0 and the scratch buffers, then `out` (written) and the operands as their buffers allow.
    const applyLayout = tensors.length === 1
      ? "www"
      : `wwww${bindingPlan(tensors, 2).access.slice(2)}`;
    const scratch = this.#thresholdScratch(batch);
    const key = items.flat ? "flat" : "strided";
    const histogram = this.#pipelines.pipeline(
      `threshold_hist_${key}`,
      "www",
      () => histogramShader(items.flat),
    );
    const scan = this.#pipelines.pipeline(
      `threshold_scan_${key}`,
      "www",
      () => scanShader(items.flat),
    );
    const apply = applyPipeline(view.flat);
    const params = this.#uniforms.clear(plan.steps.length + view.chunks.length);
    const dispatches: Dispatch[] = plan.steps.map((step, slot) => {
      const block = params(slot);
      writeChunk(block, step.chunk);
      block.meta.set([plan.perItem, step.pass, plan.below, plan.above], 3);
      return {
        pipeline: step.kind === "histogram" ? histogram : scan,
        layout: "www",
        operands: [step.chunk.operands[0]!, ...scratch.bound],
        groups: step.groups,
      };
    });
    for (const chunk of view.chunks) {
      const block = params(dispatches.length);
      writeChunk(block, chunk);
      block.meta[3] = plan.perItem;
      setCoef(block.coef);
      block.coef.set(plan.coef, 9);
      const [bound0, ...rest] = chunk.operands;
      dispatches.push({
        pipeline: apply,
        layout: applyLayout,
        operands: [bound0!, ...scratch.bound, ...rest],
        groups: this.#groups(chunk.count),
      });
    }
    this.#run(name, dispatches, [scratch.hist]);
  }

  // Element-wise kernel over `out`, then `inputs` (all of out's shape; the first `writable - 1`
  // of them written too): one dispatch per chunk of the chunk planner, all in one submit. An
  // input aliasing a written operand is read through that operand's binding.
  #elementwise(
    name: string,
    out: WebGpuTensor,
    inputs: readonly WebGpuTensor[],
    body: string,
    setCoef: (coef: Float32Array) => void,
    writable = 1,
  ): void {
    this.#check(name, out);
    for (const t of inputs) {
      this.#check(name, t);
      checkSameShape(name, out, t);
    }
    if (out.size === 0) return;
    const operands = [out, ...inputs];
    const view = planChunks(name, operands, this.#limits);
    const plan = bindingPlan(operands, writable);
    const layout = bindingLayout(plan);
    const key = `${name}_${view.flat ? "flat" : "strided"}_${plan.access}${
      plan.shared.some((j) => j >= 0) ? `_shared${plan.shared.join(",")}` : ""
    }`;
    const pipeline = this.#pipelines.pipeline(
      key,
      layout,
      () => elementwiseShader(operands.length, view.flat, body, plan),
    );
    const params = this.#uniforms.clear(view.chunks.length);
    const limit = this.#limits.maxStorageBufferBindingSize;
    this.#run(
      name,
      view.chunks.map((planned: Chunk<GPUBuffer>, slot) => {
        const { chunk, bindings } = shareWindows(planned, plan.shared, limit);
        const block = params(slot);
        writeChunk(block, chunk);
        setCoef(block.coef);
        return {
          pipeline,
          layout,
          operands: bindings,
          groups: this.#groups(chunk.count),
        };
      }),
    );
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

  #alive(operation: string): void {
    this.#watch.alive(operation);
  }

  #groups(count: number): [number, number] {
    return workgroups(count, WORKGROUP_SIZE, this.#maxGroups);
  }

  // Writes the uniform blocks, records the dispatches in one compute pass and submits, in a
  // validation scope of its own: a dispatch the device rejects (a wrapped buffer its owner
  // destroyed, an invalid pipeline) fails `name` at the next call or readback.
  #run(
    name: string,
    dispatches: readonly Dispatch[],
    clear: readonly GPUBuffer[] = [],
  ): void {
    this.#watch.scoped(name, () => {
      this.#uniforms.write(this.device.queue);
      const encoder = this.device.createCommandEncoder();
      for (const buffer of clear) encoder.clearBuffer(buffer);
      const pass = encoder.beginComputePass();
      dispatches.forEach((d, slot) => {
        pass.setPipeline(this.#pipelines.get(d.pipeline));
        pass.setBindGroup(
          0,
          this.#pipelines.bindGroup(
            d.layout,
            this.#uniforms.binding(slot),
            d.operands,
          ),
        );
        pass.dispatchWorkgroups(d.groups[0], d.groups[1]);
        this.#counts.dispatches++;
      });
      pass.end();
      this.device.queue.submit([encoder.finish()]);
      this.#counts.submits++;
    }, ["validation"]);
  }

  // The thresholding's scratch buffers for `rows` batch items (grown, never shrunk), bound whole.
  #thresholdScratch(rows: number) {
    if (!this.#scratch || this.#scratch.rows < rows) {
      if (this.#scratch) {
        // Submitted work that reads them still completes.
        this.#buffers.destroy(this.#scratch.hist);
        this.#buffers.destroy(this.#scratch.bound[1].buffer);
      }
      const hist = this.#buffers.create(
        rows * HIST_STRIDE * 4,
        USAGE.STORAGE | USAGE.COPY_DST,
      );
      const state = this.#buffers.create(
        rows * STATE_STRIDE * 4,
        USAGE.STORAGE,
      );
      this.#scratch = {
        hist,
        rows,
        bound: [wholeBuffer(hist), wholeBuffer(state)],
      };
    }
    return this.#scratch;
  }
}

function wholeBuffer(buffer: GPUBuffer): Bound<GPUBuffer> {
  return { buffer, start: 0, bytes: buffer.size, offset: 0, strides: [] };
}

// Whether two tensors may share memory: the same buffer and overlapping element spans.
function overlaps(a: WebGpuTensor, b: WebGpuTensor): boolean {
  return a.storage.buffer === b.storage.buffer && spansOverlap(a, b);
}
