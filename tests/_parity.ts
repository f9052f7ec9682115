// Parity checks against diffusers' reference cases, shared by the scheduler and backend tests: each
// check asserts its tolerance and notes its error, so that a summary test can print the worst.
import assert from "node:assert/strict";
import type { Tensor } from "../lib/tensor.ts";
import {
  bitEqual,
  LOOP_TOLERANCE,
  maxAbs,
  maxAbsDiff,
  SIGMA_TOLERANCE,
  STEP_TOLERANCE,
} from "./_reference.ts";

/** The worst error seen so far and where, printed as `2.50e-7 (where)`. */
export class WorstError {
  error = 0;
  where = "";

  /** Keeps `error` if it is worse than the worst so far; a NaN is the worst, and stays. */
  note(error: number, where: string): void {
    if (Number.isNaN(this.error) || error <= this.error) return;
    this.error = error;
    this.where = where;
  }

  toString(): string {
    return `${this.error.toExponential(2)} (${this.where})`;
  }
}

/** max |actual − expected| / max(1, max|expected|): the error every tensor tolerance bounds. */
export function relativeError(actual: Tensor, expected: Tensor): number {
  return maxAbsDiff(actual, expected) / Math.max(1, maxAbs(expected));
}

/**
 * Asserts that `actual` is within `tolerance` of `expected` ({@link relativeError}), noting the
 * error in `worst` where one is given; returns the error.
 */
export function assertClose(
  actual: Tensor,
  expected: Tensor,
  tolerance: number,
  where: string,
  worst?: WorstError,
): number {
  const error = relativeError(actual, expected);
  worst?.note(error, where);
  assert.ok(
    error <= tolerance,
    `${where}: relative error ${error} exceeds ${tolerance}`,
  );
  return error;
}

/**
 * A scheduler's parity with diffusers over one test file, at the tolerances of tests/_reference.ts:
 * the checks, and the bit-exact count and worst errors for its summary line.
 */
export class SchedulerParity {
  readonly step = new WorstError();
  readonly loop = new WorstError();
  readonly sigma = new WorstError();
  /** Steps checked so far. */
  steps = 0;
  /** Of those, the steps whose result was diffusers' bit for bit. */
  bitExactSteps = 0;

  /** As many sigmas as diffusers', each within SIGMA_TOLERANCE, relative (absolute at 0). */
  checkSigmas(
    actual: ArrayLike<number>,
    expected: ArrayLike<number>,
    where: string,
  ): void {
    assert.equal(actual.length, expected.length);
    for (let i = 0; i < expected.length; i++) {
      const [ours, theirs] = [actual[i]!, expected[i]!];
      const error = theirs === 0
        ? Math.abs(ours)
        : Math.abs(ours - theirs) / Math.abs(theirs);
      this.sigma.note(error, where);
      assert.ok(error <= SIGMA_TOLERANCE, `sigma ${i}: ${ours} vs ${theirs}`);
    }
  }

  /** `addNoise` on diffusers' inputs: within STEP_TOLERANCE (not in the summary). */
  checkAddNoise(noisy: Tensor, expected: Tensor, where: string): void {
    assertClose(noisy, expected, STEP_TOLERANCE, `${where} addNoise`);
  }

  /** One step fed diffusers' inputs: within STEP_TOLERANCE, counted when bit-exact. */
  checkStep(out: Tensor, expected: Tensor, where: string): void {
    this.steps++;
    if (bitEqual(out, expected)) this.bitExactSteps++;
    assertClose(out, expected, STEP_TOLERANCE, where, this.step);
  }

  /** A whole loop on our own samples: within LOOP_TOLERANCE. */
  checkLoop(sample: Tensor, expected: Tensor, where: string): void {
    assertClose(sample, expected, LOOP_TOLERANCE, where, this.loop);
  }

  /** The summary line's tallies: bit-exact steps, then the worst step, loop and sigma errors. */
  summary(): string {
    return `steps bit-exact: ${this.bitExactSteps}/${this.steps}; worst step error ${this.step}; worst loop error ${this.loop}; worst sigma error ${this.sigma}`;
  }
}
