/**
 * The WebAssembly SIMD backend for CPU {@link Tensor}s: the kernels of `backends/cpu.ts` compiled
 * from AssemblyScript (`wasm/kernels.ts`) with 128-bit SIMD, each operation a float32 operation
 * in the same order, so the results equal the TypeScript kernels bit for bit. Dynamic
 * thresholding finds torch's quantile with a radix histogram and a selection, not a sort.
 *
 * It is the default for CPU tensors where the runtime has WebAssembly SIMD (see
 * `defaultKernels`). Tensors from {@link WasmKernels.empty} live in the module's memory and are
 * read in place; any other tensor is copied into a reused staging area (and a result copied out)
 * per call. Schedulers keep their model-output history in the memory and return results in
 * ordinary JavaScript memory, so the memory stops growing after the first steps of a loop.
 *
 * @module
 */
import { convertModelOutput, convertThenUpdate } from "../_convert.ts";
import { f32, lerpF32 } from "../_f32.ts";
import {
  checkFusedUpdate,
  checkHistory,
  checkSameShape,
  sizeOf,
} from "../_shape.ts";
import type { Kernels, ModelOutputConversion } from "../kernels.ts";
import type { MultistepCoefficients } from "../solver.ts";
import { Tensor } from "../tensor.ts";
import { CpuKernels } from "./cpu.ts";
import {
  type Exports,
  kernelsModule,
  resizableSupported,
  tryCompile,
} from "./wasm/_module.ts";
import { overlaps, overlapsAny } from "./_overlap.ts";
import { MODE, ParamBlock } from "./wasm/_params.ts";
import {
  clash,
  coefficientsF32,
  isF32,
  type QuantileRanks,
  quantileRanks,
  SAMPLED_MIN,
} from "./wasm/_plan.ts";

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
   * import { WasmKernels } from "@dpmsolver/scheduler/wasm";
   * import assert from "node:assert/strict";
   * const kernels = new WasmKernels({ resident: false });
   * assert.equal(kernels.isResident(kernels.empty([4])), false);
   * ```
   */
  resident?: boolean;
}

const PAGE = 65536;
// 4 GiB, wasm32's limit: reserved address space only, pages are committed as the memory grows.
const MAX_PAGES = 65536;
// The first page is left to the module; allocations are cache-line aligned.
const HEAP_START = PAGE;
const ALIGN = 64;
const HIST_BYTES = 4 << 12;
/**
 * The kernels in WebAssembly with SIMD, bit-identical to the TypeScript kernels (which it falls
 * back to for the rare call it cannot take: coefficients that are not float32 values). Owns a
 * `WebAssembly.Memory`; tensors from {@link WasmKernels.empty} live in it and their memory is
 * reused once they are garbage-collected (keep the tensor, not only a `subarray` of its `data`).
 *
 * @example The resident fast path: samples in the module's memory, stepped with `out`
 * ```ts
 * import { DPMSolverMultistepInverseScheduler, Tensor } from "@dpmsolver/scheduler";
 * import { WasmKernels } from "@dpmsolver/scheduler/wasm";
 * import assert from "node:assert/strict";
 *
 * const wasm = new WasmKernels();
 * const scheduler = new DPMSolverMultistepInverseScheduler({ solver_order: 2 });
 * scheduler.kernels = wasm; // this scheduler only (the default is a shared instance)
 * scheduler.setTimesteps(10);
 * // Samples in the module's memory are read and written in place, allocation-free.
 * let sample = wasm.empty([1, 4, 8, 8]);
 * wasm.copy(sample, Tensor.from(Array.from({ length: 256 }, (_, i) => Math.sin(i)), [1, 4, 8, 8]));
 * let spare = wasm.empty(sample.shape);
 * for (const t of scheduler.timesteps) {
 *   const noisePrediction = new Tensor(sample.toFloat32Array().map((x) => 0.5 * x), sample.shape);
 *   const next = scheduler.step(noisePrediction, t, sample, { out: spare }).prevSample;
 *   [sample, spare] = [next, sample];
 * }
 * assert.ok(sample.toFloat32Array().every(Number.isFinite));
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
  // Views of the kernels' parameter block (refreshed with the others).
  #params: ParamBlock;
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
  // The tensors `empty()` allocated in the memory (resident by construction), with their byte
  // pointers: one lookup per operand in a step, where the typed array's `byteOffset` (over a
  // resizable buffer) is a builtin call.
  readonly #allocated = new WeakMap<Tensor, number>();
  // The operands of a call being staged (reused).
  readonly #operands: (Tensor | null)[] = [];

  /**
   * Instantiates the module (synchronously; it is about 15 KB).
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
    this.#params = new ParamBlock(this.#buffer, this.#exports.params());
  }

  /**
   * Whether `new WasmKernels()` works here: the runtime has WebAssembly SIMD and compiles the
   * embedded module synchronously (Deno, Node, browsers' workers). On a browser's main thread
   * the first call starts a background compilation and returns `false` until it is done.
   *
   * @example
   * ```ts
   * import { WasmKernels } from "@dpmsolver/scheduler/wasm";
   * import assert from "node:assert/strict";
   * assert.equal(WasmKernels.supported(), true); // in Deno
   * ```
   */
  static supported(): boolean {
    return tryCompile() !== null;
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
    // Tensors of `empty()` are known to be; the contiguity check reads the (frozen, so slow to
    // read) shape and strides, which matters in a step of a few microseconds.
    return this.#allocated.has(t) ||
      (t.data.buffer === this.#buffer && t.isContiguous());
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
    const tensor = new Tensor(data, shape);
    this.#allocated.set(tensor, pointer);
    return tensor;
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
    if (!(isF32(a) && isF32(b) && isF32(d))) {
      return this.#fallback.axpbyDiv(out, a, x, b, y, d);
    }
    const n = out.size;
    if (n === 0) return;
    const [po, px, py] = this.#stage(out, false, [x, y]);
    this.#params.setOperands(0, po!, 0, px!, py!, 0, 0, 0, n);
    this.#params.setConversion(a, b, d);
    this.#exports.sweep(0, y === null ? MODE.ax : MODE.axpby, 0);
    this.#unstage(out, po!);
  }

  /**
   * Dynamic thresholding in place, per item of dimension 0: the `ratio` quantile of |x| (torch's
   * linear interpolation between two order statistics, found by selection), clamped to
   * `[1, maxValue]`, then `x = clamp(x, -s, s) / s`.
   */
  threshold(x: Tensor, ratio: number, maxValue: number): void {
    const quantile = quantileRanks(x, ratio);
    if (quantile === null) return this.#fallback.threshold(x, ratio, maxValue);
    const { batch, perItem } = quantile;
    if (perItem === 0) return;
    const [px] = this.#stage(x, true, [], perItem * 4);
    for (let item = 0; item < batch; item++) {
      const p = px! + item * perItem * 4;
      const s = this.#thresholdLevel(p, quantile, maxValue);
      this.#params.setOperands(0, p, 0, p, 0, 0, 0, 0, perItem);
      this.#params.setConversion(s, -s, s);
      this.#exports.sweep(0, MODE.clamp, 0);
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
    checkHistory("multistep", out, history, c.order, c.order);
    if (noise) checkSameShape("multistep", out, noise);
    const withNoise = c.e !== 0 && noise !== null;
    if (!coefficientsF32(c, withNoise)) {
      return this.#fallback.multistep(out, sample, history, c, noise);
    }
    const n = out.size;
    if (n === 0) return;
    const [po, px, p0, p1, p2, pn] = this.#stage(out, false, [
      sample,
      history[0]!,
      c.order >= 2 ? history[1]! : null,
      c.order >= 3 ? history[2]! : null,
      withNoise ? noise : null,
    ]);
    this.#params.setOperands(po!, 0, px!, p0!, 0, p1!, p2!, pn!, n);
    this.#params.setUpdate(c, withNoise);
    this.#exports.sweep(c.order, MODE.load, withNoise ? 1 : 0);
    this.#unstage(out, po!);
  }

  /**
   * Model-output conversion into `converted` and the multistep update into `out` in one SIMD
   * pass (see {@link Kernels.convertAndUpdate}): the same bits as `axpbyDiv` (or `copy`) then
   * `multistep`, reading and writing 5 arrays at order 2 and 6 at order 3 instead of 7 and 8.
   * Takes the separate kernels when `converted` shares memory with another operand or a
   * coefficient is not a float32 value.
   */
  convertAndUpdate(
    out: Tensor,
    converted: Tensor,
    sample: Tensor,
    modelOutput: Tensor,
    conversion: ModelOutputConversion,
    history: readonly Tensor[],
    c: MultistepCoefficients,
    noise: Tensor | null,
  ): void {
    const order = c.order;
    const noiseTerm = checkFusedUpdate(
      "convertAndUpdate",
      out,
      [sample, converted, modelOutput],
      history,
      c,
      noise,
    );
    const withNoise = noiseTerm !== null;
    const copy = conversion.form === "copy";
    const m1 = order >= 2 ? history[0]! : null;
    const m2 = order >= 3 ? history[1]! : null;
    const n = out.size;
    // Byte pointers of the resident operands (-1: not resident).
    let po = this.#residentAt(out);
    let pc = this.#residentAt(converted);
    let px = this.#residentAt(sample);
    let pm = this.#residentAt(modelOutput);
    let p1 = m1 === null ? 0 : this.#residentAt(m1);
    let p2 = m2 === null ? 0 : this.#residentAt(m2);
    let pn = withNoise ? this.#residentAt(noiseTerm) : 0;
    const allResident = po >= 0 && pc >= 0 && px >= 0 && pm >= 0 && p1 >= 0 &&
      p2 >= 0 && pn >= 0;
    let separate = !(copy ||
      (isF32(conversion.a) && isF32(conversion.b) && isF32(conversion.d))) ||
      !coefficientsF32(c, withNoise);
    if (allResident) {
      // The usual case: every operand in the module's memory, nothing staged or allocated.
      const bytes = 4 * n;
      separate ||= clash(pc, po, bytes) || clash(pc, px, bytes) ||
        clash(pc, pm, bytes) || (m1 !== null && clash(pc, p1, bytes)) ||
        (m2 !== null && clash(pc, p2, bytes)) ||
        (withNoise && clash(pc, pn, bytes));
    } else {
      separate ||= overlapsAny(converted, [out, sample, modelOutput, m1, m2]) ||
        (withNoise && overlaps(converted, noiseTerm));
    }
    if (separate) {
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
    if (n === 0) return;
    if (!allResident) {
      [po, pc, px, pm, p1, p2, pn] = this.#stage(
        [out, converted],
        false,
        [sample, modelOutput, m1, m2, noiseTerm],
      ) as [number, number, number, number, number, number, number];
    }
    // The kernel reads the sample from `x`; the model output is the other operand.
    this.#params.setOperands(po, pc, px, pm, pm, p1, p2, pn, n);
    this.#params.setConversion(conversion.a, conversion.b, conversion.d);
    this.#params.setUpdate(c, withNoise);
    this.#exports.sweep(order, MODE[conversion.form], withNoise ? 1 : 0);
    if (!allResident) {
      this.#unstage(out, po);
      this.#unstage(converted, pc);
    }
  }

  /**
   * Dynamic thresholding of `x0` with the clamp and divide fused into the multistep update (see
   * {@link Kernels.thresholdAndUpdate}): the quantile by selection per item as {@link threshold},
   * then one SIMD pass per item that writes the thresholded `x0` and the update. The same bits
   * as `threshold` then `multistep`.
   */
  thresholdAndUpdate(
    out: Tensor,
    x0: Tensor,
    sample: Tensor,
    ratio: number,
    maxValue: number,
    history: readonly Tensor[],
    c: MultistepCoefficients,
    noise: Tensor | null,
  ): void {
    const order = c.order;
    const noiseTerm = checkFusedUpdate(
      "thresholdAndUpdate",
      out,
      [sample, x0],
      history,
      c,
      noise,
    );
    const withNoise = noiseTerm !== null;
    const m1 = order >= 2 ? history[0]! : null;
    const m2 = order >= 3 ? history[1]! : null;
    const quantile = quantileRanks(x0, ratio);
    if (
      quantile === null || quantile.perItem === 0 ||
      !coefficientsF32(c, withNoise) ||
      overlapsAny(x0, [out, sample, m1, m2]) ||
      (withNoise && overlaps(x0, noiseTerm))
    ) {
      this.threshold(x0, ratio, maxValue);
      this.multistep(out, sample, [x0, ...history].slice(0, order), c, noise);
      return;
    }
    const { batch, perItem } = quantile;
    const [po, pc, px, p1, p2, pn] = this.#stage(
      [out, x0],
      true,
      [sample, m1, m2, noiseTerm],
      perItem * 4,
    ) as [number, number, number, number, number, number];
    this.#params.setUpdate(c, withNoise);
    for (let item = 0; item < batch; item++) {
      const at = item * perItem * 4;
      const s = this.#thresholdLevel(pc + at, quantile, maxValue);
      // m0 = clamp(x0, -s, s) / s, in place, then the update.
      this.#params.setOperands(
        po + at,
        pc + at,
        px + at,
        pc + at,
        0,
        m1 === null ? 0 : p1 + at,
        m2 === null ? 0 : p2 + at,
        withNoise ? pn + at : 0,
        perItem,
      );
      this.#params.setConversion(s, -s, s);
      this.#exports.sweep(order, MODE.clamp, withNoise ? 1 : 0);
    }
    this.#unstage(out, po);
    this.#unstage(x0, pc);
  }

  /**
   * A thresholded step in two passes over memory: the sample-first model-output conversion
   * `x0 = (a·sample + b·modelOutput) / d` is computed on the fly while the quantile of |x0| is
   * found (per item of dimension 0), then a second pass converts again, clamps and divides,
   * stores `converted` and writes the update. The same bits as `axpbyDiv(converted, a, sample,
   * b, modelOutput, d)` then {@link thresholdAndUpdate}, which it takes instead for other
   * conversions, small items (under 32,768 elements), operands that share memory with
   * `converted`, or coefficients that are not float32 values. Called by the schedulers for
   * DPM-Solver++ with thresholding; not part of the kernel interface.
   */
  convertThresholdAndUpdate(
    out: Tensor,
    converted: Tensor,
    sample: Tensor,
    modelOutput: Tensor,
    conversion: ModelOutputConversion,
    ratio: number,
    maxValue: number,
    history: readonly Tensor[],
    c: MultistepCoefficients,
    noise: Tensor | null,
  ): void {
    const order = c.order;
    const noiseTerm = checkFusedUpdate(
      "convertThresholdAndUpdate",
      out,
      [sample, converted, modelOutput],
      history,
      c,
      noise,
    );
    const withNoise = noiseTerm !== null;
    const m1 = order >= 2 ? history[0]! : null;
    const m2 = order >= 3 ? history[1]! : null;
    const quantile = quantileRanks(converted, ratio);
    const { a, b, d } = conversion;
    if (
      conversion.form !== "sample-first" || quantile === null ||
      quantile.perItem < SAMPLED_MIN || !(isF32(a) && isF32(b) && isF32(d)) ||
      !coefficientsF32(c, withNoise) ||
      overlapsAny(converted, [out, sample, modelOutput, m1, m2]) ||
      (withNoise && overlaps(converted, noiseTerm))
    ) {
      convertModelOutput(this, converted, sample, modelOutput, conversion);
      this.thresholdAndUpdate(
        out,
        converted,
        sample,
        ratio,
        maxValue,
        history,
        c,
        noise,
      );
      return;
    }
    const { batch, perItem, below, weight } = quantile;
    const [po, pc, px, pm, p1, p2, pn] = this.#stage(
      [out, converted],
      false,
      [sample, modelOutput, m1, m2, noiseTerm],
      perItem * 4,
    ) as [number, number, number, number, number, number, number];
    const ex = this.#exports;
    const interpolate = weight !== 0;
    this.#params.setUpdate(c, withNoise);
    for (let item = 0; item < batch; item++) {
      const at = item * perItem * 4;
      this.#params.setConversion(a, b, d);
      const low = ex.convertedOrderStat(
        px + at,
        pm + at,
        perItem,
        below,
        interpolate ? 1 : 0,
        this.#histogram(),
        this.#extra,
      );
      let s: number;
      if (ex.lastHit()) {
        s = low !== low ? NaN : Math.min(
          Math.max(lerpF32(low, interpolate ? ex.nextStat() : low, weight), 1),
          f32(maxValue),
        );
      } else {
        // The sampled bracket missed: convert into memory and take the histogram's way.
        this.#params.setOperands(
          0,
          pc + at,
          0,
          px + at,
          pm + at,
          0,
          0,
          0,
          perItem,
        );
        ex.sweep(0, MODE.axpby, 0);
        s = this.#thresholdLevel(pc + at, quantile, maxValue);
      }
      this.#params.setOperands(
        po + at,
        pc + at,
        px + at,
        px + at,
        pm + at,
        m1 === null ? 0 : p1 + at,
        m2 === null ? 0 : p2 + at,
        withNoise ? pn + at : 0,
        perItem,
      );
      this.#params.setClamp(s);
      ex.sweep(order, MODE.sampleFirstClamp, withNoise ? 1 : 0);
    }
    this.#unstage(out, po);
    this.#unstage(converted, pc);
  }

  /**
   * The benchmark floor (see `bench/cpu_bench.ts`): one SIMD streaming pass that reads the
   * sample, the model output and `history` (1 or 2) earlier outputs, and writes the converted
   * output and the result, as a fused step would. All tensors must be resident, with a size
   * divisible by 4. Not a scheduler operation.
   *
   * @example
   * ```ts
   * import { WasmKernels } from "@dpmsolver/scheduler/wasm";
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

  // ---------------------------------------------------------------- sweeps

  // Dynamic thresholding's level for the item at byte pointer `p`: the quantile of |x| clamped
  // to [1, maxValue] as torch.clamp does, or NaN when the item holds a NaN.
  #thresholdLevel(
    p: number,
    { perItem, below, weight }: QuantileRanks,
    maxValue: number,
  ): number {
    const ex = this.#exports;
    const interpolate = weight !== 0;
    const hist = this.#histogram();
    const low = ex.absOrderStat(
      p,
      perItem,
      below,
      interpolate ? 1 : 0,
      hist,
      this.#extra,
    );
    if (low !== low) return NaN;
    const level = lerpF32(low, interpolate ? ex.nextStat() : low, weight);
    return Math.min(Math.max(level, 1), f32(maxValue));
  }

  // ---------------------------------------------------------------- memory

  #pointer(t: Tensor): number {
    return this.#allocated.get(t) ?? t.data.byteOffset + 4 * t.offset;
  }

  // The byte pointer of `t` where the kernels may use it in place, else -1.
  #residentAt(t: Tensor): number {
    const pointer = this.#allocated.get(t);
    if (pointer !== undefined) return pointer;
    return t.data.buffer === this.#buffer && t.isContiguous()
      ? t.data.byteOffset + 4 * t.offset
      : -1;
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
        this.#params = new ParamBlock(this.#buffer, this.#exports.params());
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
  // staging area, one slot per operand that is not resident (the outputs' slots are loaded only
  // when `readOut`). Returns byte pointers: the outputs' first, then each input's (0 for a null
  // input). `extraBytes` reserves scratch after the slots. The staging area is one block of the
  // memory, grown to the largest call seen and reused, so a loop of calls on tensors outside
  // the memory (or results in ordinary JavaScript memory) leaves the memory's size unchanged.
  #stage(
    outs: Tensor | readonly Tensor[],
    readOut: boolean,
    inputs: readonly (Tensor | null)[],
    extraBytes = 0,
  ): number[] {
    const outputs = outs instanceof Tensor ? [outs] : outs;
    const slotBytes = roundUp(outputs[0]!.size * 4);
    const all = this.#operands;
    all.length = 0;
    for (const t of outputs) all.push(t);
    for (const t of inputs) all.push(t);
    const pointers: number[] = [];
    let slots = 0;
    for (const t of all) {
      const at = t === null ? 0 : this.#residentAt(t);
      pointers.push(at);
      if (at < 0) slots++;
    }
    const needed = slotBytes * slots + roundUp(extraBytes);
    if (this.#scratch.bytes < needed) {
      if (this.#scratch.bytes > 0) {
        this.#release(this.#scratch.pointer, this.#scratch.bytes);
      }
      this.#scratch = { pointer: this.#allocate(needed), bytes: needed };
    }
    let slot = this.#scratch.pointer;
    for (let i = 0; i < all.length; i++) {
      if (pointers[i]! >= 0) continue;
      const t = all[i]!;
      pointers[i] = i < outputs.length && !readOut
        ? slot
        : this.#stageInto(t, slot);
      slot += slotBytes;
    }
    this.#extra = slot;
    all.length = 0;
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

  // Reductions for iterative solvers (exact inversion): scalars, computed by the CPU kernels.
  maxAbs(x: Tensor): number {
    return this.#fallback.maxAbs(x);
  }

  dot(x: Tensor, y: Tensor): number {
    return this.#fallback.dot(x, y);
  }
}

function roundUp(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN;
}
