// The WebAssembly memory of a WasmKernels instance: a bump allocator with free lists by size
// (tensors give their block back when collected), the radix histogram of thresholding, and the
// staging area that copies operands outside the memory in and results out per call.
import type { CpuKernels } from "../cpu.ts";
import { Tensor } from "../../tensor.ts";

const PAGE = 65536;
// 4 GiB, wasm32's limit: reserved address space only, pages are committed as the memory grows.
const MAX_PAGES = 65536;
// The first page is left to the module; allocations are cache-line aligned.
const HEAP_START = PAGE;
const ALIGN = 64;
const HIST_BYTES = 4 << 12;

/** The module's memory and what lives in it. */
export class WasmHeap {
  /** The memory the module is instantiated with. */
  readonly memory: WebAssembly.Memory;
  /** Called after a growth that detached the buffer (`buffer` is new). */
  onDetach: () => void = () => {};
  // The memory's buffer and a length-tracking view of it (made anew after a growth that
  // detaches a fixed-length buffer).
  buffer: ArrayBuffer;
  #f32: Float32Array;
  #top = HEAP_START;
  // Freed blocks by size in bytes; tensors give their block back when collected.
  readonly #free = new Map<number, number[]>();
  readonly #registry = new FinalizationRegistry<[number, number]>(
    ([pointer, bytes]) => this.#release(pointer, bytes),
  );
  // Staging area for operands outside the memory, and selection scratch after the slots.
  #scratch = { pointer: 0, bytes: 0 };
  /** Byte pointer of the scratch the last {@link stage} reserved after its slots. */
  extra = 0;
  // The radix histogram of thresholding, kept zeroed between calls.
  #hist = 0;
  // The tensors `tensor()` allocated in the memory (resident by construction), with their byte
  // pointers: one lookup per operand in a step, where the typed array's `byteOffset` (over a
  // resizable buffer) is a builtin call.
  readonly #allocated = new WeakMap<Tensor, number>();
  // The operands of a call being staged (reused).
  readonly #operands: (Tensor | null)[] = [];
  readonly #fallback: CpuKernels;

  /**
   * A memory of one page past the module's, resizable (views survive growth) when `resident`;
   * `fallback` copies strided operands in and out.
   */
  constructor(resident: boolean, fallback: CpuKernels) {
    this.#fallback = fallback;
    this.memory = new WebAssembly.Memory({
      initial: HEAP_START / PAGE + 1,
      maximum: MAX_PAGES,
    });
    if (resident) {
      (this.memory as unknown as { toResizableBuffer(): ArrayBuffer })
        .toResizableBuffer();
    }
    this.buffer = this.memory.buffer as ArrayBuffer;
    this.#f32 = new Float32Array(this.buffer);
  }

  /** Whether `t` is read and written in place: contiguous and in this memory. */
  isResident(t: Tensor): boolean {
    // Tensors of `tensor()` are known to be; the contiguity check reads the (frozen, so slow to
    // read) shape and strides, which matters in a step of a few microseconds.
    return this.#allocated.has(t) ||
      (t.data.buffer === this.buffer && t.isContiguous());
  }

  /** A new tensor of `shape` (`n` elements, not 0) in the memory; contents unspecified. */
  tensor(shape: readonly number[], n: number): Tensor {
    const bytes = roundUp(n * 4);
    const pointer = this.#allocate(bytes);
    const data = new Float32Array(this.buffer, pointer, n);
    this.#registry.register(data, [pointer, bytes]);
    const tensor = new Tensor(data, shape);
    this.#allocated.set(tensor, pointer);
    return tensor;
  }

  /** The byte pointer of a contiguous tensor in the memory. */
  pointer(t: Tensor): number {
    return this.#allocated.get(t) ?? t.data.byteOffset + 4 * t.offset;
  }

  // The byte pointer of `t` where the kernels may use it in place, else -1.
  residentAt(t: Tensor): number {
    const pointer = this.#allocated.get(t);
    if (pointer !== undefined) return pointer;
    return t.data.buffer === this.buffer && t.isContiguous()
      ? t.data.byteOffset + 4 * t.offset
      : -1;
  }

  #allocate(bytes: number): number {
    const reused = this.#free.get(bytes)?.pop();
    if (reused !== undefined) return reused;
    const pointer = this.#top;
    const end = pointer + bytes;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      // Grow at least geometrically, so that a run of allocations grows the memory rarely.
      const pages = Math.max(
        Math.ceil((end - have) / PAGE),
        Math.min(have / PAGE, MAX_PAGES - have / PAGE),
      );
      try {
        this.memory.grow(pages);
      } catch {
        this.memory.grow(Math.ceil((end - have) / PAGE));
      }
      if (this.memory.buffer !== this.buffer) {
        // A fixed-length buffer was detached by the growth: re-derive the views.
        this.buffer = this.memory.buffer as ArrayBuffer;
        this.#f32 = new Float32Array(this.buffer);
        this.onDetach();
      }
    }
    this.#top = end;
    return pointer;
  }

  /** The byte pointer of thresholding's radix histogram (allocated zeroed on first use). */
  histogram(): number {
    if (this.#hist === 0) {
      this.#hist = this.#allocate(HIST_BYTES);
      this.#f32.fill(0, this.#hist / 4, (this.#hist + HIST_BYTES) / 4);
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
  stage(
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
      const at = t === null ? 0 : this.residentAt(t);
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
    this.extra = slot;
    all.length = 0;
    return pointers;
  }

  #stageInto(t: Tensor, pointer: number): number {
    const heap = this.#f32;
    if (t.isContiguous()) {
      heap.set(t.data.subarray(t.offset, t.offset + t.size), pointer / 4);
    } else {
      this.#fallback.copy(new Tensor(heap, t.shape, undefined, pointer / 4), t);
    }
    return pointer;
  }

  /** Copies a result staged at `pointer` out to `out`, unless `out` is resident. */
  unstage(out: Tensor, pointer: number): void {
    if (this.isResident(out)) return;
    const heap = this.#f32;
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
