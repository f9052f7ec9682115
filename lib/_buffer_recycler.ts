/**
 * The buffers a scheduler allocates for converted model outputs, recycled so that stepping
 * allocates nothing: the oldest history entry once it leaves the window, else one the previous
 * schedule's history left behind. Only buffers allocated here are ever reused (a caller's
 * tensors are never written).
 *
 * @module
 */
import type { AnyTensor } from "./backend.ts";
import type { Kernels, TensorView } from "./kernels.ts";
import { sameShape } from "./_shape.ts";

/** One scheduler's converted-output buffers. */
export class BufferRecycler {
  readonly #limit: number;
  // Buffers allocated here; only these are recycled.
  #owned = new WeakSet<object>();
  // Owned buffers of the history a new schedule dropped, reused by the next pass's first steps
  // (so that repeated passes allocate nothing either; at most `limit` of them).
  #spare: AnyTensor[] = [];

  /** Keeps at most `limit` (the solver order) spare buffers between passes. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Keeps the owned buffers of a history that a new schedule drops, for the next pass. */
  retire(history: readonly (AnyTensor | null)[]): void {
    for (const m of history) {
      if (
        m && this.#owned.has(m) && !this.#spare.includes(m) &&
        this.#spare.length < this.#limit
      ) this.#spare.push(m);
    }
  }

  /**
   * A buffer of `shape` on `kernels` for the next converted output, given the current history
   * (oldest first): the oldest entry if it was allocated here and leaves the window, else a
   * spare, else a new one.
   */
  take<T extends TensorView<T>>(
    kernels: Kernels<T>,
    shape: readonly number[],
    history: readonly (AnyTensor | null)[],
  ): T {
    const oldest = history[0];
    if (
      oldest && this.#owned.has(oldest) && kernels.owns(oldest) &&
      sameShape(oldest.shape, shape) && history.indexOf(oldest, 1) < 0
    ) {
      return oldest as T;
    }
    const spare = this.#spare;
    while (spare.length > 0) {
      const buffer = spare.pop()!;
      if (
        kernels.owns(buffer) && sameShape(buffer.shape, shape) &&
        history.indexOf(buffer) < 0
      ) {
        return buffer as T;
      }
    }
    const buffer = kernels.empty(shape);
    this.#owned.add(buffer);
    return buffer;
  }
}
