// The fixtures of diffusers' scheduler tests (tests/schedulers/test_schedulers.py and
// test_scheduler_dpm_multi*.py at v0.37.0), shared by the ported suites.
import { f32 } from "../lib/_f32.ts";
import { type SchedulerConfig, Tensor } from "../mod.ts";

/** The keys that both suites' get_scheduler_config set, with their values. */
export const TEST_CONFIG: Readonly<Partial<SchedulerConfig>> = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: "linear",
  solver_order: 2,
  prediction_type: "epsilon",
  thresholding: false,
  sample_max_value: 1.0,
  algorithm_type: "dpmsolver++",
  solver_type: "midpoint",
  lower_order_final: false,
  lambda_min_clipped: -Infinity,
  variance_type: null,
};

// torch.arange(384) mapped by `value`, reshaped to (3, 8, 8, 4) and permuted to (4, 3, 8, 8):
// a strided view.
function permutedArange(value: (i: number, n: number) => number): Tensor {
  const n = 4 * 3 * 8 * 8;
  const data = Float32Array.from({ length: n }, (_, i) => value(i, n));
  return new Tensor(data, [3, 8, 8, 4]).permute([3, 0, 1, 2]);
}

/** torch.arange(384).reshape(3, 8, 8, 4) / 384, permuted to (4, 3, 8, 8). */
export function dummySampleDeter(): Tensor {
  return permutedArange((i, n) => i / n);
}

/** The same with arange flipped. */
export function dummyNoiseDeter(): Tensor {
  return permutedArange((i, n) => (n - 1 - i) / n);
}

/** diffusers' dummy model: `sample * t / (t + 1)` in float32. */
export function dummyModel(sample: Tensor, t: number): Tensor {
  const tt = f32(t);
  const values = sample.toFloat32Array().map((x) =>
    f32(f32(x * tt) / f32(tt + 1))
  );
  return new Tensor(values, sample.shape);
}

/** mean |x|, as diffusers' full-loop tests check it. */
export function meanAbs(x: Tensor): number {
  const values = x.toFloat32Array();
  return values.reduce((s, v) => s + Math.abs(v), 0) / values.length;
}
