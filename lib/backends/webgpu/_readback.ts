// Readback of the WebGPU kernels: the one point where the host waits for the device. A copy into
// a pooled staging buffer, a mapping, and the checks that make a failure an error, never data: a
// copy the device rejects (a wrapped buffer destroyed by its owner), a device lost on the way,
// and any kernel the device rejected before (every pending error report is awaited first).
import type { BufferPool } from "./_buffer_pool.ts";
import type { DeviceWatch } from "./_device_watch.ts";

const MAP_READ = 0x01; // GPUMapMode.READ

/** What a readback uses of the kernels. */
export interface ReadbackContext {
  readonly device: GPUDevice;
  readonly watch: DeviceWatch;
  readonly pool: BufferPool;
  /** Counts the submit. */
  submitted(): void;
}

/**
 * The `bytes` bytes of `buffer` from `byteOffset`, copied to the host. `afterSubmit` runs once
 * the copy is submitted (temporaries may go back to their pool).
 *
 * @throws {WebGpuKernelError} A kernel before the copy was rejected by the device.
 * @throws {WebGpuDeviceLostError} The device was lost before the data came back.
 * @throws {Error} The device rejected the copy, or the kernels were destroyed.
 */
export async function readBack(
  context: ReadbackContext,
  buffer: GPUBuffer,
  byteOffset: number,
  bytes: number,
  afterSubmit: () => void,
): Promise<Float32Array> {
  const { device, watch, pool } = context;
  const staging = pool.staging(bytes);
  device.pushErrorScope("validation");
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, bytes);
  device.queue.submit([encoder.finish()]);
  context.submitted();
  const scope = device.popErrorScope().catch(() => null);
  afterSubmit();
  let failure: Error | null = null;
  try {
    await staging.mapAsync(MAP_READ, 0, bytes);
  } catch (error) {
    failure = error as Error;
  }
  const rejected = await scope;
  // Every error report of the work before the copy, first: a kernel the device rejected wrote
  // nothing, and its output must not be read as data.
  try {
    await watch.settle("read a WebGPU tensor back");
  } catch (error) {
    if (failure === null) staging.unmap();
    throw error;
  }
  if (failure !== null || rejected !== null || watch.lost !== null) {
    if (failure === null) staging.unmap();
    throw await readFailure(device, watch, rejected ?? failure);
  }
  const data = new Float32Array(staging.getMappedRange(0, bytes).slice(0));
  staging.unmap();
  pool.releaseStaging(staging);
  return data;
}

// The error of a failed readback: the device loss when that is the cause (the lost promise
// settles just after the failed mapping), otherwise the device's own message.
async function readFailure(
  device: GPUDevice,
  watch: DeviceWatch,
  cause: GPUError | Error | null,
): Promise<Error> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const lost = watch.lost ?? await Promise.race([
    device.lost,
    new Promise<null>((done) => (timer = setTimeout(() => done(null), 1000))),
  ]);
  clearTimeout(timer);
  if (lost !== null) {
    watch.noteLost(lost);
    const error = watch.lostError("read a WebGPU tensor back", lost);
    if (cause) error.cause = cause;
    return error;
  }
  if (watch.destroyed) {
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
