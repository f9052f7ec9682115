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
// This file holds the kernel methods; the rest lives next to it in wasm/: loading the module
// (_module.ts), its memory and staging (_heap.ts), the sweep's parameter block (_params.ts) and
// the checks that decide whether a call can run in the module (_plan.ts).
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
import { WasmHeap } from "./wasm/_heap.ts";
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
  readonly #heap: WasmHeap;
  readonly #exports: Exports;
  readonly #fallback = new CpuKernels();
  // Views of the kernels' parameter block (made anew when a growth detaches the buffer).
  #params: ParamBlock;

  /**
   * Instantiates the module (synchronously; it is about 15 KB).
   *
   * @param options {@link WasmKernelsOptions}.
   */
  constructor(options: WasmKernelsOptions = {}) {
    this.resident = (options.resident ?? true) && resizableSupported();
    this.#heap = new WasmHeap(this.resident, this.#fallback);
    const instance = new WebAssembly.Instance(kernelsModule(), {
      env: { memory: this.#heap.memory },
    });
    this.#exports = instance.exports as unknown as Exports;
    this.#params = new ParamBlock(this.#heap.buffer, this.#exports.params());
    this.#heap.onDetach = () => {
      this.#params = new ParamBlock(this.#heap.buffer, this.#exports.params());
    };
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
    return this.#heap.memory.buffer.byteLength;
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
    return this.#heap.isResident(t);
  }

  /**
   * A new contiguous tensor of `shape`, in the module's memory when {@link resident}; contents
   * unspecified (recycled memory is not cleared).
   */
  empty(shape: readonly number[]): Tensor {
    const n = sizeOf(shape);
    if (!this.resident || n === 0) return Tensor.zeros(shape);
    return this.#heap.tensor(shape, n);
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
    const [po, px, py] = this.#heap.stage(out, false, [x, y]);
    this.#params.setOperands(0, po!, 0, px!, py!, 0, 0, 0, n);
    this.#params.setConversion(a, b, d);
    this.#exports.sweep(0, y === null ? MODE.ax : MODE.axpby, 0);
    this.#heap.unstage(out, po!);
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
    const [px] = this.#heap.stage(x, true, [], perItem * 4);
    for (let item = 0; item < batch; item++) {
      const p = px! + item * perItem * 4;
      const s = this.#thresholdLevel(p, quantile, maxValue);
      this.#params.setOperands(0, p, 0, p, 0, 0, 0, 0, perItem);
      this.#params.setConversion(s, -s, s);
      this.#exports.sweep(0, MODE.clamp, 0);
    }
    this.#heap.unstage(x, px!);
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
    const [po, px, p0, p1, p2, pn] = this.#heap.stage(out, false, [
      sample,
      history[0]!,
      c.order >= 2 ? history[1]! : null,
      c.order >= 3 ? history[2]! : null,
      withNoise ? noise : null,
    ]);
    this.#params.setOperands(po!, 0, px!, p0!, 0, p1!, p2!, pn!, n);
    this.#params.setUpdate(c, withNoise);
    this.#exports.sweep(c.order, MODE.load, withNoise ? 1 : 0);
    this.#heap.unstage(out, po!);
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
      sample,
      converted,
      modelOutput,
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
    let po = this.#heap.residentAt(out);
    let pc = this.#heap.residentAt(converted);
    let px = this.#heap.residentAt(sample);
    let pm = this.#heap.residentAt(modelOutput);
    let p1 = m1 === null ? 0 : this.#heap.residentAt(m1);
    let p2 = m2 === null ? 0 : this.#heap.residentAt(m2);
    let pn = withNoise ? this.#heap.residentAt(noiseTerm) : 0;
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
      [po, pc, px, pm, p1, p2, pn] = this.#heap.stage(
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
      this.#heap.unstage(out, po);
      this.#heap.unstage(converted, pc);
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
      sample,
      x0,
      null,
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
    const [po, pc, px, p1, p2, pn] = this.#heap.stage(
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
    this.#heap.unstage(out, po);
    this.#heap.unstage(x0, pc);
  }

  /**
   * A thresholded step in two passes over memory: the sample-first model-output conversion
   * `x0 = (a·sample + b·modelOutput) / d` is computed on the fly while the quantile of |x0| is
   * found (per item of dimension 0), then a second pass converts again, clamps and divides,
   * stores `converted` and writes the update. The same bits as `axpbyDiv(converted, a, sample,
   * b, modelOutput, d)` then {@link thresholdAndUpdate}, which it takes instead for other
   * conversions, small items (under 8,192 elements), operands that share memory with
   * `converted`, coefficients that are not float32 values, or a divisor `d` that is zero or
   * not finite (the first pass orders `a·sample + b·modelOutput` and divides only the quantile,
   * which needs division by `d` to be monotonic). Called by the schedulers for DPM-Solver++
   * with thresholding; not part of the kernel interface.
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
      sample,
      converted,
      modelOutput,
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
      !Number.isFinite(d) || d === 0 ||
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
    const [po, pc, px, pm, p1, p2, pn] = this.#heap.stage(
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
        this.#heap.histogram(),
        this.#heap.extra,
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
    this.#heap.unstage(out, po);
    this.#heap.unstage(converted, pc);
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
    const [po, pc, px, pm, p1, p2] = all.map((t) => this.#heap.pointer(t));
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
    const hist = this.#heap.histogram();
    const low = ex.absOrderStat(
      p,
      perItem,
      below,
      interpolate ? 1 : 0,
      hist,
      this.#heap.extra,
    );
    if (low !== low) return NaN;
    const level = lerpF32(low, interpolate ? ex.nextStat() : low, weight);
    return Math.min(Math.max(level, 1), f32(maxValue));
  }

  // Reductions for iterative solvers (exact inversion): scalars, computed by the CPU kernels.
  maxAbs(x: Tensor): number {
    return this.#fallback.maxAbs(x);
  }

  dot(x: Tensor, y: Tensor): number {
    return this.#fallback.dot(x, y);
  }
}
