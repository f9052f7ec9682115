/**
 * The WebAssembly SIMD backend for CPU {@link Tensor}s: the kernels of `backends/cpu.ts` compiled
 * from AssemblyScript (`wasm/kernels.ts`) with 128-bit SIMD, each operation a float32 operation
 * in the same order, so the results equal the TypeScript kernels bit for bit. Dynamic
 * thresholding finds torch's quantile with a radix histogram and a selection, not a sort.
 *
 * Tensors from {@link WasmKernels.empty} live in the module's memory and are read in place; any
 * other tensor is copied in (and a result copied out) per call. Opt in with
 * `setTensorKernels(new WasmKernels())`.
 *
 * @module
 */
import { f32 } from "../_f32.ts";
import { formatShape, sameShape, sizeOf } from "../_shape.ts";
import type { Kernels } from "../kernels.ts";
import type { MultistepCoefficients } from "../solver.ts";
import { Tensor } from "../tensor.ts";
import { CpuKernels } from "./cpu.ts";
import { KERNELS_WASM_BASE64 } from "./_kernels_wasm.ts";

/** Options of {@link WasmKernels}. */
export interface WasmKernelsOptions {
  /**
   * Allocate the tensors of `empty()` in the module's memory, so that the kernels read and write
   * them in place. Needs `WebAssembly.Memory.prototype.toResizableBuffer` (Deno ≥ 2.4, Chrome
   * ≥ 137), which keeps views valid when the memory grows; without it tensors are ordinary
   * `Float32Array`s, copied in per call.
   *
   * @default {true where the runtime supports it}
   *
   * @example Force the copy-in mode
   * ```ts
   * import { WasmKernels } from "@dpmsolver/scheduler";
   * import assert from "node:assert/strict";
   * const kernels = new WasmKernels({ resident: false });
   * assert.equal(kernels.isResident(kernels.empty([4])), false);
   * ```
   */
  resident?: boolean;
}

type Exports = {
  memory: WebAssembly.Memory;
  axpbyDiv(
    out: number,
    a: number,
    x: number,
    b: number,
    y: number,
    d: number,
    n: number,
  ): void;
  axDiv(out: number, a: number, x: number, d: number, n: number): void;
  multistep1(
    out: number,
    a: number,
    x: number,
    b: number,
    m0: number,
    n: number,
  ): void;
  multistep2(
    out: number,
    a: number,
    x: number,
    b: number,
    m0: number,
    c: number,
    k0: number,
    m1: number,
    n: number,
  ): void;
  multistep3(
    out: number,
    a: number,
    x: number,
    b: number,
    m0: number,
    c: number,
    k0: number,
    m1: number,
    d: number,
    k1: number,
    q: number,
    k2: number,
    m2: number,
    n: number,
  ): void;
  addScaled(out: number, e: number, noise: number, n: number): void;
  clampScale(x: number, n: number, s: number): void;
  absOrderStat(
    x: number,
    n: number,
    k: number,
    wantNext: number,
    hist: number,
    scratch: number,
  ): number;
  nextStat(): number;
  streamFloor(
    out: number,
    converted: number,
    x: number,
    modelOutput: number,
    h1: number,
    h2: number,
    history: number,
    n: number,
  ): void;
};

const PAGE = 65536;
// 4 GiB, wasm32's limit: reserved address space only, pages are committed as the memory grows.
const MAX_PAGES = 65536;
// The first page is left to the module; allocations are cache-line aligned.
const HEAP_START = PAGE;
const ALIGN = 64;
const HIST_BYTES = 4 << 12;

let compiled: WebAssembly.Module | undefined;

function kernelsModule(): WebAssembly.Module {
  if (!compiled) {
    const binary = atob(KERNELS_WASM_BASE64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    compiled = new WebAssembly.Module(bytes);
  }
  return compiled;
}

function resizableSupported(): boolean {
  return typeof (WebAssembly.Memory.prototype as {
    toResizableBuffer?: unknown;
  })
    .toResizableBuffer === "function";
}

// Whether every scalar is a float32 value (or NaN), so the module computes what f32() does.
function allF32(...values: number[]): boolean {
  for (const v of values) if (Math.fround(v) !== v && v === v) return false;
  return true;
}

// torch's lerp, as in backends/cpu.ts.
function lerpF32(start: number, end: number, weight: number): number {
  const diff = f32(end - start);
  return Math.abs(weight) < 0.5
    ? f32(start + f32(weight * diff))
    : f32(end - f32(diff * f32(1 - weight)));
}

/**
 * The kernels in WebAssembly with SIMD, bit-identical to the TypeScript kernels (which it falls
 * back to for the rare call it cannot take: coefficients that are not float32 values). Owns a
 * `WebAssembly.Memory`; tensors from {@link WasmKernels.empty} live in it and their memory is
 * reused once they are garbage-collected (keep the tensor, not only a `subarray` of its `data`).
 *
 * @example Step with the SIMD kernels, allocation-free
 * ```ts
 * import {
 *   DPMSolverMultistepInverseScheduler,
 *   setTensorKernels,
 *   Tensor,
 *   WasmKernels,
 * } from "@dpmsolver/scheduler";
 * import assert from "node:assert/strict";
 *
 * const wasm = new WasmKernels();
 * const previous = setTensorKernels(wasm);
 * try {
 *   const scheduler = new DPMSolverMultistepInverseScheduler({ solver_order: 2 });
 *   scheduler.setTimesteps(10);
 *   // Samples in the module's memory are read and written in place.
 *   let sample = wasm.empty([1, 4, 8, 8]);
 *   wasm.copy(sample, Tensor.from(Array.from({ length: 256 }, (_, i) => Math.sin(i)), [1, 4, 8, 8]));
 *   let spare = wasm.empty(sample.shape);
 *   for (const t of scheduler.timesteps) {
 *     const noisePrediction = new Tensor(sample.toFloat32Array().map((x) => 0.5 * x), sample.shape);
 *     const next = scheduler.step(noisePrediction, t, sample, { out: spare }).prevSample;
 *     [sample, spare] = [next, sample];
 *   }
 *   assert.ok(sample.toFloat32Array().every(Number.isFinite));
 * } finally {
 *   setTensorKernels(previous);
 * }
 * ```
 */
export class WasmKernels implements Kernels<Tensor> {
  /** Backend name, for messages. */
  readonly name = "wasm";
  /** Whether `empty()` allocates in the module's memory (see {@link WasmKernelsOptions}). */
  readonly resident: boolean;
  readonly #memory: WebAssembly.Memory;
  readonly #exports: Exports;
  readonly #fallback = new CpuKernels();
  // The memory's buffer and a length-tracking view of it (refreshed after a growth that
  // detaches a fixed-length buffer).
  #buffer: ArrayBuffer;
  #heap: Float32Array;
  #top = HEAP_START;
  // Freed blocks by size in bytes; tensors give their block back when collected.
  readonly #free = new Map<number, number[]>();
  readonly #registry = new FinalizationRegistry<[number, number]>(
    ([pointer, bytes]) => this.#release(pointer, bytes),
  );
  // Staging area for operands outside the memory, histogram and selection scratch.
  #scratch = { pointer: 0, bytes: 0 };
  #extra = 0;
  // The radix histogram of thresholding, kept zeroed between calls.
  #hist = 0;

  /**
   * Instantiates the module (synchronously; it is about 3 KB).
   *
   * @param options {@link WasmKernelsOptions}.
   */
  constructor(options: WasmKernelsOptions = {}) {
    this.resident = (options.resident ?? true) && resizableSupported();
    this.#memory = new WebAssembly.Memory({
      initial: HEAP_START / PAGE + 1,
      maximum: MAX_PAGES,
    });
    if (this.resident) {
      (this.#memory as unknown as { toResizableBuffer(): ArrayBuffer })
        .toResizableBuffer();
    }
    const instance = new WebAssembly.Instance(kernelsModule(), {
      env: { memory: this.#memory },
    });
    this.#exports = instance.exports as unknown as Exports;
    this.#buffer = this.#memory.buffer as ArrayBuffer;
    this.#heap = new Float32Array(this.#buffer);
  }

  /** Bytes of WebAssembly memory in use or reserved by this instance (it never shrinks). */
  get memoryBytes(): number {
    return this.#memory.buffer.byteLength;
  }

  /** Whether `value` is a CPU {@link Tensor} (these kernels take any). */
  owns(value: unknown): value is Tensor {
    return value instanceof Tensor;
  }

  /**
   * Whether the kernels read and write `t` in place: it is contiguous and lives in this
   * instance's memory. Other tensors are copied in and out per call.
   */
  isResident(t: Tensor): boolean {
    return t.data.buffer === this.#buffer && t.isContiguous();
  }

  /**
   * A new contiguous tensor of `shape`, in the module's memory when {@link resident}; contents
   * unspecified (recycled memory is not cleared).
   */
  empty(shape: readonly number[]): Tensor {
    const n = sizeOf(shape);
    if (!this.resident || n === 0) return Tensor.zeros(shape);
    const bytes = roundUp(n * 4);
    const pointer = this.#allocate(bytes);
    const data = new Float32Array(this.#buffer, pointer, n);
    this.#registry.register(data, [pointer, bytes]);
    return new Tensor(data, shape);
  }

  /** `out = x`. */
  copy(out: Tensor, x: Tensor): void {
    checkSameShape("copy", out, x);
    if (out.isContiguous() && x.isContiguous()) {
      out.data.set(
        x.data.subarray(x.offset, x.offset + x.size),
        out.offset,
      );
      return;
    }
    this.#fallback.copy(out, x);
  }

  /** `out = (a·x + b·y) / d`, or `out = (a·x) / d` when `y` is `null`. */
  axpbyDiv(
    out: Tensor,
    a: number,
    x: Tensor,
    b: number,
    y: Tensor | null,
    d: number,
  ): void {
    checkSameShape("axpbyDiv", out, x);
    if (y) checkSameShape("axpbyDiv", out, y);
    if (!allF32(a, b, d)) return this.#fallback.axpbyDiv(out, a, x, b, y, d);
    const n = out.size;
    if (n === 0) return;
    const ex = this.#exports;
    const [po, px, py] = this.#stage(out, false, [x, y]);
    if (py === undefined) ex.axDiv(po, a, px!, d, n);
    else ex.axpbyDiv(po, a, px!, b, py, d, n);
    this.#unstage(out, po);
  }

  /**
   * Dynamic thresholding in place, per item of dimension 0: the `ratio` quantile of |x| (torch's
   * linear interpolation between two order statistics, found by selection), clamped to
   * `[1, maxValue]`, then `x = clamp(x, -s, s) / s`.
   */
  threshold(x: Tensor, ratio: number, maxValue: number): void {
    const batch = x.shape.length === 0 ? 1 : x.shape[0]!;
    const perItem = batch === 0 ? 0 : x.size / batch;
    if (perItem === 0) return;
    const rank = f32(f32(ratio) * (perItem - 1));
    const below = Math.trunc(rank);
    const weight = f32(rank - below);
    if (
      !(below >= 0 && below < perItem && (weight === 0 || below + 1 < perItem))
    ) {
      return this.#fallback.threshold(x, ratio, maxValue);
    }
    const [px] = this.#stage(x, true, [], perItem * 4);
    const ex = this.#exports;
    const hist = this.#histogram();
    const selection = this.#extra;
    const max = f32(maxValue);
    for (let item = 0; item < batch; item++) {
      const p = px! + item * perItem * 4;
      const low = ex.absOrderStat(
        p,
        perItem,
        below,
        weight !== 0 ? 1 : 0,
        hist,
        selection,
      );
      let s = NaN;
      if (low === low) {
        const level = lerpF32(low, weight !== 0 ? ex.nextStat() : low, weight);
        // torch.clamp(s, min=1, max=sample_max_value).
        s = Math.min(Math.max(level, 1), max);
      }
      ex.clampScale(p, perItem, s);
    }
    this.#unstage(x, px!);
  }

  /** One multistep update (see {@link MultistepCoefficients}); `history` is newest first. */
  multistep(
    out: Tensor,
    sample: Tensor,
    history: readonly Tensor[],
    c: MultistepCoefficients,
    noise: Tensor | null,
  ): void {
    checkSameShape("multistep", out, sample);
    for (const m of history) checkSameShape("multistep", out, m);
    if (noise) checkSameShape("multistep", out, noise);
    const withNoise = c.e !== 0 && noise !== null;
    if (
      !allF32(c.a, c.b, c.c, c.d, c.k0, c.k1, c.q, c.k2, withNoise ? c.e : 0)
    ) {
      return this.#fallback.multistep(out, sample, history, c, noise);
    }
    const n = out.size;
    if (n === 0) return;
    const ex = this.#exports;
    const operands = [sample, ...history.slice(0, c.order)];
    if (withNoise) operands.push(noise);
    const pointers = this.#stage(out, false, operands);
    const [po, px, p0, p1, p2] = pointers;
    if (c.order === 1) ex.multistep1(po!, c.a, px!, c.b, p0!, n);
    else if (c.order === 2) {
      ex.multistep2(po!, c.a, px!, c.b, p0!, c.c, c.k0, p1!, n);
    } else {
      ex.multistep3(
        po!,
        c.a,
        px!,
        c.b,
        p0!,
        c.c,
        c.k0,
        p1!,
        c.d,
        c.k1,
        c.q,
        c.k2,
        p2!,
        n,
      );
    }
    if (withNoise) ex.addScaled(po!, c.e, pointers[pointers.length - 1]!, n);
    this.#unstage(out, po!);
  }

  /**
   * The benchmark floor (see `bench/cpu_bench.ts`): one SIMD streaming pass that reads the
   * sample, the model output and `history` (1 or 2) earlier outputs, and writes the converted
   * output and the result, as a fused step would. All tensors must be resident, with a size
   * divisible by 4. Not a scheduler operation.
   *
   * @example
   * ```ts
   * import { WasmKernels } from "@dpmsolver/scheduler";
   * import assert from "node:assert/strict";
   * const k = new WasmKernels();
   * const [out, conv, x, m, h] = Array.from({ length: 5 }, () => k.empty([8]));
   * k.streamFloor(out!, conv!, x!, m!, [h!]);
   * assert.equal(out!.size, 8);
   * ```
   */
  streamFloor(
    out: Tensor,
    converted: Tensor,
    sample: Tensor,
    modelOutput: Tensor,
    history: readonly Tensor[],
  ): void {
    const all = [out, converted, sample, modelOutput, ...history];
    if (!this.resident || !all.every((t) => this.isResident(t))) {
      throw new TypeError(
        "Cannot run streamFloor as its tensors must live in the module's memory: allocate them with empty()",
      );
    }
    const [po, pc, px, pm, p1, p2] = all.map((t) => this.#pointer(t));
    this.#exports.streamFloor(
      po!,
      pc!,
      px!,
      pm!,
      p1!,
      p2 ?? p1!,
      history.length,
      out.size,
    );
  }

  // ---------------------------------------------------------------- memory

  #pointer(t: Tensor): number {
    return t.data.byteOffset + 4 * t.offset;
  }

  #allocate(bytes: number): number {
    const reused = this.#free.get(bytes)?.pop();
    if (reused !== undefined) return reused;
    const pointer = this.#top;
    const end = pointer + bytes;
    const have = this.#memory.buffer.byteLength;
    if (end > have) {
      // Grow at least geometrically, so that a run of allocations grows the memory rarely.
      const pages = Math.max(
        Math.ceil((end - have) / PAGE),
        Math.min(have / PAGE, MAX_PAGES - have / PAGE),
      );
      try {
        this.#memory.grow(pages);
      } catch {
        this.#memory.grow(Math.ceil((end - have) / PAGE));
      }
      if (this.#memory.buffer !== this.#buffer) {
        // A fixed-length buffer was detached by the growth: re-derive the views.
        this.#buffer = this.#memory.buffer as ArrayBuffer;
        this.#heap = new Float32Array(this.#buffer);
      }
    }
    this.#top = end;
    return pointer;
  }

  #histogram(): number {
    if (this.#hist === 0) {
      this.#hist = this.#allocate(HIST_BYTES);
      this.#heap.fill(0, this.#hist / 4, (this.#hist + HIST_BYTES) / 4);
    }
    return this.#hist;
  }

  #release(pointer: number, bytes: number): void {
    const list = this.#free.get(bytes);
    if (list) list.push(pointer);
    else this.#free.set(bytes, [pointer]);
  }

  // Where each operand lives for a call: resident tensors in place, others copied into the
  // staging area (slot 0 is `out`'s, loaded only when `readOut`). Returns byte pointers: `out`'s
  // first, then each non-null input's. `extraBytes` reserves scratch after the slots.
  #stage(
    out: Tensor,
    readOut: boolean,
    inputs: readonly (Tensor | null)[],
    extraBytes = 0,
  ): number[] {
    const slotBytes = roundUp(out.size * 4);
    const slots = 1 + inputs.length;
    const needed = slotBytes * slots + roundUp(extraBytes);
    if (this.#scratch.bytes < needed) {
      if (this.#scratch.bytes > 0) {
        this.#release(this.#scratch.pointer, this.#scratch.bytes);
      }
      this.#scratch = { pointer: this.#allocate(needed), bytes: needed };
    }
    const base = this.#scratch.pointer;
    this.#extra = base + slotBytes * slots;
    const pointers = [
      this.isResident(out)
        ? this.#pointer(out)
        : readOut
        ? this.#stageInto(out, base)
        : base,
    ];
    inputs.forEach((t, i) => {
      if (t === null) return;
      pointers.push(
        this.isResident(t)
          ? this.#pointer(t)
          : this.#stageInto(t, base + slotBytes * (i + 1)),
      );
    });
    return pointers;
  }

  #stageInto(t: Tensor, pointer: number): number {
    const heap = this.#heap;
    if (t.isContiguous()) {
      heap.set(t.data.subarray(t.offset, t.offset + t.size), pointer / 4);
    } else {
      this.#fallback.copy(new Tensor(heap, t.shape, undefined, pointer / 4), t);
    }
    return pointer;
  }

  #unstage(out: Tensor, pointer: number): void {
    if (this.isResident(out)) return;
    const heap = this.#heap;
    if (out.isContiguous()) {
      out.data.set(
        heap.subarray(pointer / 4, pointer / 4 + out.size),
        out.offset,
      );
    } else {
      this.#fallback.copy(
        out,
        new Tensor(heap, out.shape, undefined, pointer / 4),
      );
    }
  }
}

function roundUp(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN;
}

function checkSameShape(name: string, out: Tensor, other: Tensor): void {
  if (!sameShape(out.shape, other.shape)) {
    throw new TypeError(
      `Cannot run ${name} as the operands' shapes differ: ${
        formatShape(out.shape)
      } and ${formatShape(other.shape)}`,
    );
  }
}
