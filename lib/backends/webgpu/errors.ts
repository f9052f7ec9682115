/**
 * The errors of the WebGPU backend: no adapter (fall back to the CPU), a lost device, and a
 * kernel the device rejected (a shader that does not compile, a pipeline or a submit that fails
 * validation, memory the device cannot give).
 *
 * @module
 */

/**
 * Thrown by `createWebGpuKernels` where WebGPU has no adapter or device; catch it to fall back to
 * the CPU.
 *
 * @example Fall back to the CPU
 * ```ts
 * import { createWebGpuKernels, WebGpuUnavailableError } from "@dpmsolver/scheduler/webgpu";
 * import assert from "node:assert/strict";
 * try {
 *   (await createWebGpuKernels()).destroy();
 * } catch (error) {
 *   assert.ok(error instanceof WebGpuUnavailableError);
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
 * @example After the device is destroyed
 * ```ts
 * import { Tensor } from "@dpmsolver/scheduler";
 * import { createWebGpuKernels, WebGpuDeviceLostError } from "@dpmsolver/scheduler/webgpu";
 * import assert from "node:assert/strict";
 * const gpu = await createWebGpuKernels().catch(() => null);
 * if (gpu) {
 *   const x = gpu.upload(Tensor.from([1, 2]));
 *   gpu.device.destroy();
 *   await assert.rejects(() => x.read(), WebGpuDeviceLostError);
 * }
 * ```
 */
export class WebGpuDeviceLostError extends Error {
  /** `"WebGpuDeviceLostError"`. */
  override name = "WebGpuDeviceLostError";
  /** `"destroyed"` or `"unknown"`, from `GPUDeviceLostInfo.reason`. */
  readonly reason: string;

  /**
   * An error for a loss seen by `operation`.
   *
   * @param message What failed and what to do.
   * @param reason `GPUDeviceLostInfo.reason`.
   * @param options The cause, if any.
   */
  constructor(message: string, reason: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/**
 * Thrown by the next WebGPU kernel call or readback after the device rejected a kernel: its
 * shader did not compile (`getCompilationInfo()` errors), its pipeline or a submit failed
 * validation, or the device ran out of memory. WebGPU reports these asynchronously, so the
 * kernel call itself returns; the error is thrown by the next call, and `read()` waits for every
 * report before returning data, so no result of a failed kernel is ever read back. The kernels
 * then refuse all work (the tensors they wrote are not to be trusted): create new kernels, or
 * fall back to the CPU.
 *
 * @example What a caller sees
 * ```ts
 * import { WebGpuKernelError } from "@dpmsolver/scheduler/webgpu";
 * import assert from "node:assert/strict";
 * const error = new WebGpuKernelError("Cannot run copy as …", "copy_flat_wr", "validation");
 * assert.equal(error.name, "WebGpuKernelError");
 * assert.equal(error.kernel, "copy_flat_wr");
 * ```
 */
export class WebGpuKernelError extends Error {
  /** `"WebGpuKernelError"`. */
  override name = "WebGpuKernelError";
  /** The kernel the device rejected, e.g. `"threshold"` or a pipeline key `"threshold_apply_flat"`. */
  readonly kernel: string;
  /**
   * What rejected it: `"compilation"` (the shader), `"validation"`, `"out-of-memory"` or
   * `"internal"` (the error scope that caught it).
   */
  readonly kind: string;

  /**
   * An error naming the kernel the device rejected.
   *
   * @param message What failed and what to do.
   * @param kernel The kernel's name or pipeline key.
   * @param kind `"compilation"`, `"validation"`, `"out-of-memory"` or `"internal"`.
   * @param options The device's own error as the cause.
   */
  constructor(
    message: string,
    kernel: string,
    kind: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.kernel = kernel;
    this.kind = kind;
  }
}
