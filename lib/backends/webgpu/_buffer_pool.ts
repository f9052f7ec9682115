// The buffers of one set of WebGPU kernels: every buffer they create (so `destroy` frees them
// all), and pools by size of released storage buffers and of readback staging buffers, so a loop
// that releases (or passes `out`) creates no buffers in steady state.
import type { DeviceWatch } from "./_device_watch.ts";

/** GPUBufferUsage flags, without touching the global where WebGPU is missing. */
export const USAGE = {
  MAP_READ: 0x01,
  COPY_SRC: 0x04,
  COPY_DST: 0x08,
  UNIFORM: 0x40,
  STORAGE: 0x80,
} as const;

/** Pool buckets: sizes rounded up to 256 bytes (at least 256). */
export function pooledSize(bytes: number): number {
  return Math.max(256, Math.ceil(bytes / 256) * 256);
}

/** Creates, pools and destroys the kernels' buffers. */
export class BufferPool {
  /** `createBuffer` calls so far. */
  created = 0;
  readonly #device: GPUDevice;
  readonly #watch: DeviceWatch;
  readonly #live = new Set<GPUBuffer>();
  readonly #storage = new Map<number, GPUBuffer[]>();
  readonly #staging = new Map<number, GPUBuffer[]>();

  constructor(device: GPUDevice, watch: DeviceWatch) {
    this.#device = device;
    this.#watch = watch;
  }

  /** A new buffer, destroyed with the others; an out-of-memory or invalid creation fails the kernels. */
  create(size: number, usage: number): GPUBuffer {
    const buffer = this.#watch.scoped(
      "createBuffer",
      () => this.#device.createBuffer({ size, usage }),
      ["out-of-memory", "validation"],
    );
    this.#live.add(buffer);
    this.created++;
    return buffer;
  }

  /** A storage buffer of at least `bytes` (read-write, copyable), from the pool when one fits. */
  storage(bytes: number): GPUBuffer {
    const size = pooledSize(bytes);
    return this.#storage.get(size)?.pop() ??
      this.create(size, USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST);
  }

  /** Gives a storage buffer from {@link storage} back to the pool. */
  releaseStorage(buffer: GPUBuffer): void {
    pushTo(this.#storage, buffer.size, buffer);
  }

  /** A mappable staging buffer of at least `bytes`, from the pool when one fits. */
  staging(bytes: number): GPUBuffer {
    const size = pooledSize(bytes);
    return this.#staging.get(size)?.pop() ??
      this.create(size, USAGE.MAP_READ | USAGE.COPY_DST);
  }

  /** Gives an unmapped staging buffer back to the pool. */
  releaseStaging(buffer: GPUBuffer): void {
    pushTo(this.#staging, buffer.size, buffer);
  }

  /** Destroys one buffer now (submitted work that reads it still completes). */
  destroy(buffer: GPUBuffer): void {
    this.#live.delete(buffer);
    buffer.destroy();
  }

  /** Destroys every buffer created here, pooled or still held. */
  destroyAll(): void {
    for (const buffer of this.#live) buffer.destroy();
    this.#live.clear();
    this.#storage.clear();
    this.#staging.clear();
  }
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
