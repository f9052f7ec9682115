"""Times diffusers' DPMSolverMultistepInverseScheduler.step on the cases of bench/cpu_bench.ts, with
the same protocol: a 50-step inversion with 4 model outputs in rotation, timed per inversion; the median
over repeats after a warm-up, divided by 50; torch on one thread. Prints one JSON line per case with the
fields bench/cpu_bench.ts prints (impl "diffusers").

    eval "$(reference/env.sh DIFFUSERS_GIT HUB_GIT)"
    "$REF_PYTHON" reference/bench_diffusers.py [--repeats N] [--case NAME ...]
"""

import argparse
import json
import statistics
import time
import warnings

import torch

from diffusers import DPMSolverMultistepInverseScheduler

torch.set_num_threads(1)
warnings.filterwarnings("ignore", category=FutureWarning)

STEPS = 50
# Same names, shapes and configs as CASES in bench/cpu_bench.ts.
CASES = [
    ("1x4x64x64_order2", [1, 4, 64, 64], {"solver_order": 2, "algorithm_type": "dpmsolver++"}),
    ("4x4x128x128_order3", [4, 4, 128, 128], {"solver_order": 3, "algorithm_type": "dpmsolver++"}),
    ("4x3x256x256_thresholding", [4, 3, 256, 256],
     {"solver_order": 2, "algorithm_type": "dpmsolver++", "thresholding": True}),
]


def floor_bytes(shape, config):
    n = 1
    for d in shape:
        n *= d
    return n * 4 * (config.get("solver_order", 2) + 3)


def bench(name, shape, config, repeats):
    generator = torch.Generator().manual_seed(0)
    scheduler = DPMSolverMultistepInverseScheduler(**config)
    start = torch.randn(shape, generator=generator)
    outputs = [torch.randn(shape, generator=generator) for _ in range(4)]

    def inversion():
        scheduler.set_timesteps(STEPS)
        sample = start
        for i, t in enumerate(scheduler.timesteps):
            sample = scheduler.step(outputs[i % 4], t, sample).prev_sample
        if not torch.isfinite(sample).all():
            raise RuntimeError(f"{name}: the inversion diverged")

    inversion()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        inversion()
        times.append((time.perf_counter() - t0) * 1000)
    ms = statistics.median(times) / STEPS
    nbytes = floor_bytes(shape, config)
    return {"case": name, "impl": "diffusers", "ms_per_step": ms, "gb_per_s": nbytes / (ms * 1e6),
            "bytes_per_step": nbytes, "repeats": repeats}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--case", action="append", default=[])
    args = parser.parse_args()
    for name, shape, config in CASES:
        if args.case and name not in args.case:
            continue
        n = 1
        for d in shape:
            n *= d
        repeats = args.repeats or (3 if n > 1e6 else 7 if n > 1e5 else 21)
        print(json.dumps(bench(name, shape, config, repeats)), flush=True)


if __name__ == "__main__":
    main()
