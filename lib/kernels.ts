/**
 * The kernel interface: every tensor operation a scheduler needs, which each backend implements.
 * The schedulers compute all scalars on the host and call these; nothing else touches tensor data.
 *
 * @module
 */
import type { ModelOutputConversion, MultistepCoefficients } from "./solver.ts";

// The conversion's form is part of the kernel contract; its formulas live in solver.ts.
export type { ModelOutputConversion };

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
  /**
   * Optional, for backends that can fuse a step into one pass: model-output conversion into
   * `converted`, then the multistep update into `out` reading it. The same bits as
   *
   * ```text
   * conversion.form === "copy"         ? copy(converted, modelOutput)
   * conversion.form === "sample-first" ? axpbyDiv(converted, a, sample, b, modelOutput, d)
   * conversion.form === "model-first"  ? axpbyDiv(converted, a, modelOutput, b, sample, d)
   * multistep(out, sample, [converted, ...history].slice(0, c.order), c, noise)
   * ```
   *
   * `history` holds the earlier converted outputs, newest first (at least `c.order - 1`).
   * `converted` must not share memory with any other operand; `out` may alias an input element
   * for element. The scheduler calls it only when it is defined and no thresholding is
   * configured.
   */
  convertAndUpdate?(
    out: T,
    converted: T,
    sample: T,
    modelOutput: T,
    conversion: ModelOutputConversion,
    history: readonly T[],
    c: MultistepCoefficients,
    noise: T | null,
  ): void;
  /**
   * Optional, for backends that can fuse the last pass of dynamic thresholding into the update:
   * the same bits as `threshold(x0, ratio, maxValue)` then
   * `multistep(out, sample, [x0, ...history].slice(0, c.order), c, noise)`. `x0` must not share
   * memory with any other operand. The scheduler calls it, when it is defined, for
   * data-prediction algorithm types with thresholding.
   */
  thresholdAndUpdate?(
    out: T,
    x0: T,
    sample: T,
    ratio: number,
    maxValue: number,
    history: readonly T[],
    c: MultistepCoefficients,
    noise: T | null,
  ): void;
}
