// The compute pipelines and bind groups of one set of WebGPU kernels. A pipeline is compiled
// once per kernel key and checked then (compilation messages and error scopes, see
// _device_watch.ts); bind groups are cached by (uniform slot, operand ranges), so a steady loop
// creates none.
import type { Bound } from "./_chunks.ts";
import type { DeviceWatch } from "./_device_watch.ts";

const COMPUTE = 4; // GPUShaderStage.COMPUTE
/** Cached bind groups beyond which the cache starts over. */
const MAX_BIND_GROUPS = 1024;

/** Pipelines by kernel key, their layouts by storage binding count, and bind groups. */
export class PipelineCache {
  /** Pipelines compiled so far. */
  compiled = 0;
  readonly #device: GPUDevice;
  readonly #watch: DeviceWatch;
  readonly #pipelines = new Map<string, GPUComputePipeline>();
  readonly #layouts = new Map<string, GPUBindGroupLayout>();
  readonly #bindGroups = new Map<string, GPUBindGroup>();
  readonly #bufferIds = new WeakMap<GPUBuffer, number>();
  #nextId = 0;

  constructor(device: GPUDevice, watch: DeviceWatch) {
    this.#device = device;
    this.#watch = watch;
  }

  /**
   * The pipeline of `key`: binding 0 the uniform block, then one storage binding per letter of
   * `layout` (`w` read-write, `r` read-only), entry point `main` of `code()` (called only when
   * first built). Returns `key`.
   */
  pipeline(key: string, layout: string, code: () => string): string {
    if (!this.#pipelines.has(key)) {
      // Checked once, when first built: the module's compilation messages and the error scopes
      // around its creation (a failure is thrown by the next call or readback).
      this.#pipelines.set(
        key,
        this.#watch.scoped(key, () => {
          const module = this.#device.createShaderModule({
            label: key,
            code: code(),
          });
          this.#watch.compiled(key, module);
          return this.#device.createComputePipeline({
            label: key,
            layout: this.#device.createPipelineLayout({
              bindGroupLayouts: [this.#layout(layout)],
            }),
            compute: { module, entryPoint: "main" },
          });
        }),
      );
      this.compiled++;
    }
    return key;
  }

  /** A pipeline built by {@link pipeline}. */
  get(key: string): GPUComputePipeline {
    return this.#pipelines.get(key)!;
  }

  /** The bind group of `operands` (bound as `layout` says) with the uniform block `uniform` (cached). */
  bindGroup(
    layout: string,
    uniform: { buffer: GPUBuffer; offset: number; size: number },
    operands: readonly Bound<GPUBuffer>[],
  ): GPUBindGroup {
    let key = `${layout}|${this.#id(uniform.buffer)}:${uniform.offset}|`;
    for (const o of operands) {
      key += `${this.#id(o.buffer)}:${o.start}:${o.bytes},`;
    }
    let group = this.#bindGroups.get(key);
    if (!group) {
      if (this.#bindGroups.size >= MAX_BIND_GROUPS) this.#bindGroups.clear();
      group = this.#device.createBindGroup({
        layout: this.#layout(layout),
        entries: [
          { binding: 0, resource: uniform },
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

  /** Forgets the cached bind groups (their buffers are being destroyed). */
  clearBindGroups(): void {
    this.#bindGroups.clear();
  }

  #layout(access: string): GPUBindGroupLayout {
    let layout = this.#layouts.get(access);
    if (!layout) {
      const entries: GPUBindGroupLayoutEntry[] = [{
        binding: 0,
        visibility: COMPUTE,
        buffer: { type: "uniform" },
      }];
      for (let k = 0; k < access.length; k++) {
        entries.push({
          binding: k + 1,
          visibility: COMPUTE,
          buffer: { type: access[k] === "w" ? "storage" : "read-only-storage" },
        });
      }
      layout = this.#device.createBindGroupLayout({ entries });
      this.#layouts.set(access, layout);
    }
    return layout;
  }

  #id(buffer: GPUBuffer): number {
    let id = this.#bufferIds.get(buffer);
    if (id === undefined) {
      id = this.#nextId++;
      this.#bufferIds.set(buffer, id);
    }
    return id;
  }
}
