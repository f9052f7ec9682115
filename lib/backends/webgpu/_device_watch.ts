// What can go wrong with a device, kept in one place: its loss, the kernels' own destruction, and
// the errors WebGPU reports asynchronously (shader compilation, pipeline and submit validation,
// out of memory). Kernel calls are synchronous, so a reported error is kept and thrown by the
// next call (`alive`) or readback (`settle`, which waits for every report still pending).
import { WebGpuDeviceLostError, WebGpuKernelError } from "./errors.ts";

const ALL_FILTERS: readonly GPUErrorFilter[] = [
  "validation",
  "out-of-memory",
  "internal",
];

interface Failure {
  seq: number;
  kernel: string;
  kind: string;
  message: string;
  cause: unknown;
}

/** The state of one set of kernels on a device: alive, lost, destroyed, or failed. */
export class DeviceWatch {
  readonly device: GPUDevice;
  #lost: GPUDeviceLostInfo | null = null;
  #destroyed = false;
  #failure: Failure | null = null;
  readonly #pending = new Set<Promise<void>>();
  #seq = 0;

  constructor(device: GPUDevice) {
    this.device = device;
    device.lost.then((info) => (this.#lost ??= info));
  }

  /** Whether `destroy()` was called. */
  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Marks the kernels destroyed: every later call throws. */
  destroy(): void {
    this.#destroyed = true;
  }

  /**
   * Throws once the device is lost, a kernel failed, or the kernels were destroyed: work recorded
   * then would be dropped by the device without a word.
   */
  alive(operation: string): void {
    if (this.#lost !== null) throw this.lostError(operation, this.#lost);
    if (this.#failure !== null) throw this.#kernelError(operation);
    if (this.#destroyed) {
      throw new Error(
        `Cannot ${operation} as these WebGPU kernels were destroyed: create new ones`,
      );
    }
  }

  /**
   * Waits for every error report still pending, then throws as {@link alive} does: what
   * `read()` calls before handing out data.
   */
  async settle(operation: string): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
    this.alive(operation);
  }

  /**
   * Runs `record` inside error scopes of `filters`, pushed and popped around it alone (so a
   * caller's scopes on a shared device nest untouched); an error they catch fails `kernel`.
   * A submit needs only `"validation"` (one scope: each costs a promise); object creation takes
   * all three.
   */
  scoped<T>(
    kernel: string,
    record: () => T,
    filters: readonly GPUErrorFilter[] = ALL_FILTERS,
  ): T {
    const { device } = this;
    for (let k = filters.length - 1; k >= 0; k--) {
      device.pushErrorScope(filters[k]!);
    }
    try {
      return record();
    } finally {
      for (const filter of filters) {
        this.watch(kernel, filter, device.popErrorScope());
      }
    }
  }

  /** Fails `kernel` if its shader module reports errors. */
  compiled(kernel: string, module: GPUShaderModule): void {
    // getCompilationInfo() is missing in some older implementations: the error scopes still
    // catch an invalid module when the pipeline is created.
    if (typeof module.getCompilationInfo !== "function") return;
    this.watch(
      kernel,
      "compilation",
      module.getCompilationInfo().then((info) => {
        const errors = info.messages.filter((m) => m.type === "error");
        if (errors.length === 0) return null;
        return {
          message: errors.map((m) =>
            `${m.lineNum}:${m.linePos}: ${m.message.trim()}`
          ).join("; "),
        };
      }),
    );
  }

  // Keeps the error `report` resolves to, if any, as the failure of `kernel` (the earliest
  // reported failure wins). A rejected report (the device was lost) is left to the loss.
  watch(
    kernel: string,
    kind: string,
    report: Promise<{ message: string } | null>,
  ): void {
    const seq = this.#seq++;
    const settled: Promise<void> = report.then(
      (error) => {
        if (error && (this.#failure === null || seq < this.#failure.seq)) {
          this.#failure = {
            seq,
            kernel,
            kind,
            message: error.message,
            cause: error,
          };
        }
      },
      () => {},
    ).then(() => {
      this.#pending.delete(settled);
    });
    this.#pending.add(settled);
  }

  /** The device loss, if it was seen. */
  get lost(): GPUDeviceLostInfo | null {
    return this.#lost;
  }

  /** Records a loss seen by other means (a failed mapping). */
  noteLost(info: GPUDeviceLostInfo): void {
    this.#lost ??= info;
  }

  lostError(operation: string, info: GPUDeviceLostInfo): WebGpuDeviceLostError {
    return new WebGpuDeviceLostError(
      `Cannot ${operation} as the WebGPU device was lost (reason: ${info.reason}${
        info.message ? `, "${info.message}"` : ""
      }): create new kernels on a new device, or fall back to the CPU`,
      info.reason,
    );
  }

  #kernelError(operation: string): WebGpuKernelError {
    const f = this.#failure!;
    const what = f.kind === "compilation"
      ? "its shader did not compile"
      : f.kind === "out-of-memory"
      ? "the device ran out of memory"
      : `the device reported a${
        f.kind === "internal" ? "n" : ""
      } ${f.kind} error`;
    return new WebGpuKernelError(
      `Cannot ${operation} as the WebGPU kernel '${f.kernel}' failed (${what}: ${f.message.trim()}): create new kernels, or fall back to the CPU`,
      f.kernel,
      f.kind,
      { cause: f.cause },
    );
  }
}
