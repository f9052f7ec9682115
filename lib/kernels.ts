/**
 * The kernel interface: every tensor operation a scheduler needs, which each backend implements.
 * The schedulers compute all scalars on the host and call these; nothing else touches tensor data.
 *
 * @module
 */
import type { MultistepCoefficients } from "./solver.ts";

/** What a backend tensor must offer the scheduler: its shape and zero-copy slicing. */
export interface TensorView<T> {
  /** Extent of each dimension. */
  readonly shape: readonly number[];
  /** A view of `[start, end)` along `dim`, without copying. */
  slice(dim: number, start: number, end?: number): T;
}

/**
 * The tensor operations of a backend. Every operation reads strided inputs, writes `out`
 * (which may alias an input element-for-element), and rounds each arithmetic operation to float32
 * in the order written.
 */
export interface Kernels<T extends TensorView<T>> {
  /** Backend name, for messages. */
  readonly name: string;
  /** Whether `value` is a tensor of this backend. */
  owns(value: unknown): value is T;
  /** A new contiguous tensor of `shape` (contents unspecified). */
  empty(shape: readonly number[]): T;
  /** `out = x`. */
  copy(out: T, x: T): void;
  /**
   * Model-output conversion and `add_noise`: `out = (a·x + b·y) / d`, or `out = (a·x) / d` when
   * `y` is `null`.
   */
  axpbyDiv(out: T, a: number, x: T, b: number, y: T | null, d: number): void;
  /**
   * Dynamic thresholding (arXiv:2205.11487) in place, per item of dimension 0: `s` is the
   * `ratio` quantile of |x| over the item (torch's linear interpolation), clamped to
   * `[1, maxValue]`; then `x = clamp(x, -s, s) / s`.
   */
  threshold(x: T, ratio: number, maxValue: number): void;
  /**
   * One multistep update (see {@link MultistepCoefficients}); `history` is `[m0, m1, m2]`, newest
   * first, as long as the order; `noise` is read when `c.e` is non-zero.
   */
  multistep(
    out: T,
    sample: T,
    history: readonly T[],
    c: MultistepCoefficients,
    noise: T | null,
  ): void;
}
