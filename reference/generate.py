"""Reference-data generator for the TypeScript port of diffusers' DPMSolverMultistepScheduler and
DPMSolverMultistepInverseScheduler.

Run from the repository root with a Python that imports diffusers v0.37.0:

    eval "$(reference/env.sh DIFFUSERS_GIT HUB_GIT)"
    "$REF_PYTHON" reference/generate.py

Writes reference/manifest.json, reference/inverse/<case>/, reference/forward/<case>/ and reference/randn/
next to this script (the three folders are recreated).
The output is deterministic: no timestamps, sorted JSON keys, single-threaded torch.

diffusers is only imported and called. Where v0.37.0 is broken, the reference encodes the port's intended
behaviour, still computed with diffusers' own math (see PATCHES below and the manifest fields).
"""

import itertools
import json
import math
import platform
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy
import torch

import diffusers
from diffusers import DPMSolverMultistepInverseScheduler, DPMSolverMultistepScheduler

torch.set_num_threads(1)
warnings.filterwarnings("ignore", category=FutureWarning)  # deprecation notices for algorithm_type "dpmsolver"

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "inverse"
FORWARD_OUT = ROOT / "forward"
RANDN_OUT = ROOT / "randn"
FORWARD_SHAPE = [2, 3, 1, 3]  # 18 elements: torch's vectorised randn with a tail; 3 channels for learned variance
DEFAULT_SHAPE = [2, 3, 4, 4]
DEFAULT_STEPS = 12

STANDIN_MODEL_TEXT = (
    "s = float(int(t)) / 1000.0; c1 = 0.8 - 0.3 * s; c2 = 0.2 + 0.1 * s; "
    "eps = c1 * tanh(x) + c2 * x (float32 x, python-float scalars); "
    "if learned_variance: return cat([eps, 0.1 * x], dim=1) (2C channels, the first C are the mean) else eps. "
    "x0 = sin(arange(n, float32) * 0.37 + 0.1).reshape(shape) * 1.3, then * x0_scale when x0_scale != 1. "
    "add_noise: original = x0 formula, noise = cos(arange(n, float32) * 0.23 + 0.3).reshape(shape) * 0.9."
)


def standin_model(x, t, learned_variance=False):
    s = float(int(t)) / 1000.0
    c1 = 0.8 - 0.3 * s
    c2 = 0.2 + 0.1 * s
    eps = c1 * torch.tanh(x) + c2 * x  # x float32; python-float scalars
    if learned_variance:
        return torch.cat([eps, 0.1 * x], dim=1)  # 2C channels, the first C are the mean
    return eps


def initial_sample(shape, scale=1.0):
    n = math.prod(shape)
    x0 = torch.sin(torch.arange(n, dtype=torch.float32) * 0.37 + 0.1).reshape(shape) * 1.3
    return x0 * scale if scale != 1.0 else x0


def noise_sample(shape):
    n = math.prod(shape)
    return torch.cos(torch.arange(n, dtype=torch.float32) * 0.23 + 0.3).reshape(shape) * 0.9


# ----------------------------------------------------------------------------------------------- CASES
SD15_PNDM = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
             "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
             "trained_betas": None}
DDPM_CIFAR10 = {"_class_name": "DDPMScheduler", "_diffusers_version": "0.1.1", "beta_end": 0.02,
                "beta_schedule": "linear", "beta_start": 0.0001, "clip_sample": True, "num_train_timesteps": 1000,
                "trained_betas": None, "variance_type": "fixed_small"}
REPO_CONFIGS = {"sd15_pndm": SD15_PNDM, "ddpm_cifar10_32": DDPM_CIFAR10}
SCALED_LINEAR = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}
FLOW = {"prediction_type": "flow_prediction", "use_flow_sigmas": True, "flow_shift": 3.0}
TRAINED_BETAS_100 = {"num_train_timesteps": 100, "trained_betas": np.linspace(1e-4, 0.05, 100).tolist()}
SOLVER_TYPES = ("midpoint", "heun")
ORDERS = (1, 2, 3)
PREDICTIONS = ("epsilon", "sample", "v_prediction")


def common_spec(steps, shape, kind="steps", x0_scale=1.0, learned_variance=False, from_config=None, **config):
    """The case fields both schedulers use; `config` holds the scheduler's keyword arguments."""
    return {"kind": kind, "config": config, "num_inference_steps": steps, "sample_shape": shape,
            "x0_scale": x0_scale, "learned_variance": learned_variance, "from_config": from_config}


def inverse_case(steps=DEFAULT_STEPS, shape=None, save_betas=False, **options):
    """A DPMSolverMultistepInverseScheduler case; betas are saved whenever the case chooses its own schedule."""
    spec = common_spec(steps, shape or DEFAULT_SHAPE, **options)
    config = spec["config"]
    spec["save_betas"] = (save_betas or spec["from_config"] is not None or "beta_schedule" in config
                          or "trained_betas" in config)
    return spec


def forward_case(steps=DEFAULT_STEPS, shape=None, seed=None, mu=None, custom_timesteps=None, save_betas=False,
                 **options):
    """A DPMSolverMultistepScheduler case: `seed` for SDE noise, `mu` or `custom_timesteps` for set_timesteps."""
    spec = common_spec(steps, shape or FORWARD_SHAPE, **options)
    spec.update(seed=seed, mu=mu, custom_timesteps=custom_timesteps, save_betas=save_betas)
    return spec


def algo_tag(algo):
    """The algorithm_type as it appears in case names ("dpmsolver++" -> "dpmsolverpp")."""
    return algo.replace("++", "pp")


def matrix_name(algo, solver, order, pred):
    """Name of a full-matrix case."""
    return f"m_{algo_tag(algo)}_{solver}_o{order}_{pred}"


def shape_tag(shape):
    """A sample shape as it appears in case names ([2, 3, 5] -> "2x3x5")."""
    return "x".join(map(str, shape))


def forward_final_sigmas(algo):
    """Noise-prediction algorithms need final_sigmas_type "sigma_min" in the forward scheduler (diffusers raises
    with the default "zero")."""
    return {} if algo.endswith("++") else {"final_sigmas_type": "sigma_min"}


def forward_seed(algo, seed):
    """Only SDE algorithms draw noise, so only they get a seed."""
    return seed if algo.startswith("sde") else None


def thresholding_options(algo, pred, order, ratio, smax, shape):
    """Options of a dynamic-thresholding case; x0 is scaled by 4 so that clipping actually happens."""
    return dict(shape=shape, x0_scale=4.0, algorithm_type=algo, prediction_type=pred, solver_order=order,
                thresholding=True, dynamic_thresholding_ratio=ratio, sample_max_value=smax)


def spacing_cases(make_case, step_counts, **options):
    """spacing_<spacing>_<steps> for each timestep_spacing; "leading" gets steps_offset=1, as SD-style configs do."""
    cases = {}
    for spacing in ("linspace", "leading", "trailing"):
        offset = {"steps_offset": 1} if spacing == "leading" else {}
        for steps in step_counts:
            cases[f"spacing_{spacing}_{steps}"] = make_case(steps, timestep_spacing=spacing, **options, **offset)
    return cases


def add_noise_cases(make_case, shape):
    """add_noise with the default sigmas and with Karras sigmas."""
    return {"add_noise_default": make_case(shape=shape, kind="add_noise"),
            "add_noise_karras": make_case(shape=shape, kind="add_noise", use_karras_sigmas=True)}


def repo_config_cases(make_case):
    """Real repository scheduler configs, loaded with from_config."""
    return {f"repo_{name}": make_case(20, from_config=config) for name, config in REPO_CONFIGS.items()}


def build_cases():
    """The DPMSolverMultistepInverseScheduler cases, by name."""
    c = {}
    # 1. full matrix
    for algo, solver, order, pred in itertools.product(("dpmsolver", "dpmsolver++"), SOLVER_TYPES, ORDERS,
                                                       PREDICTIONS):
        c[matrix_name(algo, solver, order, pred)] = inverse_case(algorithm_type=algo, solver_type=solver,
                                                                 solver_order=order, prediction_type=pred)
    # 2. flow matching sigmas
    flow = dict(algorithm_type="dpmsolver++", **FLOW)
    for order in ORDERS:
        c[f"flow_o{order}"] = inverse_case(solver_order=order, **flow)
    c["flow_o2_heun"] = inverse_case(solver_order=2, solver_type="heun", **flow)
    # 3. lower_order_final / euler_at_final
    lof_off_pp = dict(algorithm_type="dpmsolver++", solver_type="midpoint", solver_order=3, lower_order_final=False)
    c["lof_off_dpmsolverpp_midpoint_o3_20"] = inverse_case(20, **lof_off_pp)
    c["euler_at_final_dpmsolverpp_midpoint_o3_20"] = inverse_case(20, euler_at_final=True, **lof_off_pp)
    c["lof_off_dpmsolver_heun_o3_20"] = inverse_case(
        20, algorithm_type="dpmsolver", solver_type="heun", solver_order=3, lower_order_final=False)
    # 4. beta schedules (order 2)
    c["sched_linear"] = inverse_case(beta_schedule="linear", solver_order=2)
    c["sched_scaled_linear"] = inverse_case(solver_order=2, **SCALED_LINEAR)
    for name, clip in (("sched_squaredcos", -math.inf), ("sched_squaredcos_clip_5_1", -5.1)):
        c[name] = inverse_case(beta_schedule="squaredcos_cap_v2", lambda_min_clipped=clip, solver_order=2)
    c["sched_trained_betas"] = inverse_case(8, solver_order=2, **TRAINED_BETAS_100)
    # 5. timestep spacings
    c.update(spacing_cases(inverse_case, (7, 12, 50), solver_order=2))
    c["spacing_trailing_o3_lof_off_20"] = inverse_case(20, timestep_spacing="trailing", solver_order=3,
                                                       lower_order_final=False)
    c["spacing_trailing_heun_lof_off_20"] = inverse_case(20, timestep_spacing="trailing", solver_order=2,
                                                         solver_type="heun", lower_order_final=False)
    # 6. sigma families
    for steps, order in ((12, 2), (12, 3), (25, 2)):
        c[f"karras_{steps}_o{order}"] = inverse_case(steps, use_karras_sigmas=True, solver_order=order)
    c["karras_25_o3_lof_off"] = inverse_case(25, use_karras_sigmas=True, solver_order=3, lower_order_final=False)
    c["karras_vpred_12"] = inverse_case(12, use_karras_sigmas=True, prediction_type="v_prediction")
    for steps in (12, 20, 26):  # 26 steps: int timesteps start [0, 0, ...] with the linear schedule
        c[f"exponential_{steps}"] = inverse_case(steps, use_exponential_sigmas=True)
    c["exponential_scaled_linear_20"] = inverse_case(20, use_exponential_sigmas=True, **SCALED_LINEAR)
    for steps in (12, 20, 47):  # 47 steps: a repeated int timestep (998, 998) near the end
        c[f"beta_sigmas_{steps}"] = inverse_case(steps, use_beta_sigmas=True)
    # 7. dynamic thresholding on odd shapes
    for algo, pred, order, ratio, smax, shape in [
        ("dpmsolver++", "epsilon", 2, 0.87, 1.5, [3, 5, 7]),
        ("dpmsolver++", "sample", 3, 0.995, 3.0, [1, 1, 9]),
        ("dpmsolver++", "epsilon", 3, 0.995, 3.0, [2, 3, 5, 3]),
        ("dpmsolver++", "sample", 2, 0.87, 1.5, [2, 3, 5, 3]),
        ("dpmsolver", "epsilon", 2, 0.995, 1.5, [2, 3, 5, 3]),
        ("dpmsolver", "sample", 3, 0.87, 3.0, [3, 5, 7]),
        ("dpmsolver", "epsilon", 3, 0.87, 3.0, [1, 1, 9]),
        ("dpmsolver", "sample", 2, 0.995, 1.5, [3, 5, 7]),
    ]:
        ratio_tag, smax_tag = str(ratio).replace(".", ""), str(smax).replace(".", "")
        name = f"thr_{algo_tag(algo)}_{pred}_o{order}_r{ratio_tag}_m{smax_tag}_s{shape_tag(shape)}"
        c[name] = inverse_case(**thresholding_options(algo, pred, order, ratio, smax, shape))
    # 8. learned variance: 2C model output channels
    for vt, algo in itertools.product(("learned_range", "learned"), ("dpmsolver", "dpmsolver++")):
        c[f"var_{vt}_{algo_tag(algo)}"] = inverse_case(learned_variance=True, variance_type=vt, algorithm_type=algo,
                                                       prediction_type="epsilon", solver_order=2)
    # 9. step counts
    for steps, order in itertools.product((1, 2, 3), (2, 3)):
        c[f"nsteps_{steps}_o{order}"] = inverse_case(steps, solver_order=order)
    c["nsteps_1000"] = inverse_case(1000, shape=[1, 1, 2, 2], num_train_timesteps=1000, solver_order=2)
    c["karras_128"] = inverse_case(128, shape=[1, 1, 2, 2], use_karras_sigmas=True, solver_order=2)
    c["ntrain100_nsteps_100"] = inverse_case(100, shape=[1, 3, 2, 2], num_train_timesteps=100, solver_order=2)
    # 10. add_noise; 11. real repository configs
    c.update(add_noise_cases(inverse_case, [4, 3, 4, 4]))
    c.update(repo_config_cases(inverse_case))
    return c


def build_forward_cases():
    """The DPMSolverMultistepScheduler cases, by name."""
    c = {}
    # 1. full matrix; all predictions at order 2 only; SDE seeds follow the case count, so keep this block first
    for algo, solver, order in itertools.product(("dpmsolver", "dpmsolver++", "sde-dpmsolver", "sde-dpmsolver++"),
                                                 SOLVER_TYPES, ORDERS):
        if algo == "sde-dpmsolver" and order == 3:
            continue  # diffusers: UnboundLocalError at the first third-order step; the port refuses it
        for pred in PREDICTIONS if order == 2 else ("epsilon",):
            c[matrix_name(algo, solver, order, pred)] = forward_case(
                algorithm_type=algo, solver_type=solver, solver_order=order, prediction_type=pred,
                seed=forward_seed(algo, 1000 + len(c)), **forward_final_sigmas(algo))
    c["final_sigma_min_sdepp_o2"] = forward_case(final_sigmas_type="sigma_min", algorithm_type="sde-dpmsolver++",
                                                 seed=7)
    # SDE noise through torch's scalar path (< 16 elements) and its vectorised path (a multiple of 16)
    c["sdepp_small_shape"] = forward_case(20, shape=[1, 1, 2, 3], algorithm_type="sde-dpmsolver++", seed=0)
    c["sde_small_shape"] = forward_case(12, shape=[1, 1, 1, 5], algorithm_type="sde-dpmsolver",
                                        final_sigmas_type="sigma_min", seed=3)
    c["sdepp_shape_1x2x5x5_o3_lof_off"] = forward_case(20, shape=[1, 2, 5, 5], algorithm_type="sde-dpmsolver++",
                                                       solver_order=3, lower_order_final=False, seed=42)
    # 2. flow matching, dynamic shifting
    for order in ORDERS:
        c[f"flow_o{order}"] = forward_case(solver_order=order, **FLOW)
    c["flow_o2_heun"] = forward_case(solver_type="heun", **FLOW)
    c["flow_sdepp"] = forward_case(algorithm_type="sde-dpmsolver++", seed=11, **FLOW)
    c["flow_sigma_min"] = forward_case(final_sigmas_type="sigma_min", **FLOW)
    c["flow_dynamic_mu_08"] = forward_case(mu=0.8, use_dynamic_shifting=True, prediction_type="flow_prediction",
                                           use_flow_sigmas=True)
    # 3. lower_order_final / euler_at_final
    lof_off_o3 = dict(solver_order=3, lower_order_final=False)
    c["lof_off_dpmsolverpp_midpoint_o3_20"] = forward_case(20, **lof_off_o3)
    c["lof_off_dpmsolverpp_o3_20_sigma_min"] = forward_case(20, final_sigmas_type="sigma_min", **lof_off_o3)
    c["euler_at_final_o3_20_sigma_min"] = forward_case(20, euler_at_final=True, final_sigmas_type="sigma_min",
                                                       **lof_off_o3)
    c["lof_off_dpmsolver_heun_o3_20"] = forward_case(20, algorithm_type="dpmsolver", solver_type="heun",
                                                     final_sigmas_type="sigma_min", **lof_off_o3)
    # 4. beta schedules, zero terminal SNR
    c["sched_scaled_linear"] = forward_case(**SCALED_LINEAR)
    c["sched_squaredcos"] = forward_case(beta_schedule="squaredcos_cap_v2")
    c["sched_squaredcos_clip_5_1"] = forward_case(beta_schedule="squaredcos_cap_v2", lambda_min_clipped=-5.1)
    c["sched_trained_betas"] = forward_case(8, **TRAINED_BETAS_100)
    c["zero_snr_linear"] = forward_case(rescale_betas_zero_snr=True, save_betas=True)
    c["zero_snr_scaled_linear_vpred_trailing"] = forward_case(
        20, rescale_betas_zero_snr=True, prediction_type="v_prediction", timestep_spacing="trailing", **SCALED_LINEAR)
    c["zero_snr_sigma_min_o3"] = forward_case(rescale_betas_zero_snr=True, final_sigmas_type="sigma_min",
                                              solver_order=3)
    # 5. timestep spacings
    c.update(spacing_cases(forward_case, (7, 50), shape=[1, 2, 2, 3]))
    # 6. sigma families
    c["karras_12_o2"] = forward_case(12, use_karras_sigmas=True)
    c["karras_12_o3"] = forward_case(12, use_karras_sigmas=True, solver_order=3)
    c["karras_25_o3_lof_off"] = forward_case(25, use_karras_sigmas=True, **lof_off_o3)
    c["karras_vpred_12"] = forward_case(12, use_karras_sigmas=True, prediction_type="v_prediction")
    c["karras_squaredcos_12"] = forward_case(12, use_karras_sigmas=True, beta_schedule="squaredcos_cap_v2")
    c["karras_sdepp_20"] = forward_case(20, use_karras_sigmas=True, algorithm_type="sde-dpmsolver++", seed=5)
    c["karras_128"] = forward_case(128, shape=[1, 1, 2, 2], use_karras_sigmas=True)
    c["lu_12"] = forward_case(12, use_lu_lambdas=True)
    c["lu_25_o3_vpred"] = forward_case(25, use_lu_lambdas=True, solver_order=3, prediction_type="v_prediction")
    c["lu_squaredcos_12"] = forward_case(12, use_lu_lambdas=True, beta_schedule="squaredcos_cap_v2")
    for steps in (12, 26):
        c[f"exponential_{steps}"] = forward_case(steps, use_exponential_sigmas=True)
    for steps in (12, 47):
        c[f"beta_sigmas_{steps}"] = forward_case(steps, use_beta_sigmas=True)
    # 7. dynamic thresholding on odd shapes
    for algo, pred, order, ratio, smax, shape in [
        ("dpmsolver++", "epsilon", 2, 0.87, 1.5, [3, 5, 7]),
        ("dpmsolver++", "sample", 3, 0.995, 3.0, [2, 3, 5, 3]),
        ("dpmsolver", "epsilon", 3, 0.87, 3.0, [1, 1, 9]),
        ("sde-dpmsolver++", "v_prediction", 2, 0.995, 1.5, [2, 3, 5, 3]),
    ]:
        c[f"thr_{algo_tag(algo)}_{pred}_o{order}_s{shape_tag(shape)}"] = forward_case(
            **thresholding_options(algo, pred, order, ratio, smax, shape), seed=forward_seed(algo, 21),
            **forward_final_sigmas(algo))
    # 8. learned variance: 2C model output channels
    for vt, algo in (("learned_range", "dpmsolver"), ("learned", "dpmsolver++")):
        c[f"var_{vt}_{algo_tag(algo)}"] = forward_case(learned_variance=True, variance_type=vt, algorithm_type=algo,
                                                       **forward_final_sigmas(algo))
    # 9. step counts; 1000 steps repeats timesteps (zero-length steps)
    for steps, order in ((1, 2), (2, 3), (3, 3)):
        c[f"nsteps_{steps}_o{order}"] = forward_case(steps, solver_order=order)
    c["nsteps_1000"] = forward_case(1000, shape=[1, 1, 2, 2])
    c["nsteps_1000_o3_heun_sigma_min"] = forward_case(1000, shape=[1, 1, 2, 2], solver_order=3, solver_type="heun",
                                                      final_sigmas_type="sigma_min")
    c["ntrain100_nsteps_100"] = forward_case(100, shape=[1, 3, 2, 2], num_train_timesteps=100)
    # 10. custom timesteps
    c["custom_timesteps"] = forward_case(None, custom_timesteps=[999, 900, 750, 601, 420, 300, 180, 77, 20, 3])
    c["custom_timesteps_sdepp_sigma_min"] = forward_case(None, custom_timesteps=[980, 700, 500, 260, 90, 10],
                                                         algorithm_type="sde-dpmsolver++",
                                                         final_sigmas_type="sigma_min", seed=9)
    # 11. add_noise; 12. real repository configs
    c.update(add_noise_cases(forward_case, [4, 3, 3, 3]))
    c.update(repo_config_cases(forward_case))
    return c


# --------------------------------------------------------------------------------------------- helpers
def json_safe(v):
    """v with infinities spelled "inf"/"-inf", which JSON cannot hold."""
    if isinstance(v, float) and math.isinf(v):
        return "-inf" if v < 0 else "inf"
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


def to_numpy(arr):
    """A tensor or array-like as a numpy array."""
    return arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)


def save_f32(path, arr):
    """Save a floating-point array as little-endian float32 .npy."""
    arr = to_numpy(arr)
    assert arr.dtype in (np.float32, np.float64), (path, arr.dtype)
    np.save(path, np.ascontiguousarray(arr, dtype="<f4"))


def save_i32(path, arr):
    """Save an integer-valued array as little-endian int32 .npy."""
    arr = to_numpy(arr)
    assert np.all(np.abs(arr) < 2**31) and np.all(arr == np.round(arr)), path
    np.save(path, np.ascontiguousarray(arr, dtype="<i4"))


def set_timesteps_aligned(sched, num_inference_steps):
    """PATCH 1: set_timesteps, then realign sigmas with the de-duplicated timesteps.

    diffusers removes duplicate timesteps with `np.unique(timesteps, return_index=True)` but keeps one sigma per
    *un*-deduplicated timestep. Rather than re-deriving the pre-dedup timesteps (which differ per sigma family:
    rounded ints, float interpolations, flow sigmas), we spy on that very np.unique call while diffusers'
    set_timesteps runs: it hands us the exact pre-dedup array and the first-occurrence indices that were kept.
    Aligned sigmas are then raw_sigmas[kept] followed by the final raw sigma. Returns (raw_sigmas, aligned?).
    """
    calls, real_unique = [], np.unique

    def spy(ar, *args, **kwargs):
        result = real_unique(ar, *args, **kwargs)
        if kwargs.get("return_index"):
            calls.append((np.array(ar, copy=True), np.sort(result[1])))
        return result

    np.unique = spy
    try:
        sched.set_timesteps(num_inference_steps)
    finally:
        np.unique = real_unique
    assert len(calls) == 1, f"expected one np.unique(return_index=True) call, saw {len(calls)}"
    raw_timesteps, kept = calls[0]
    raw_sigmas = sched.sigmas.numpy().copy()
    assert len(raw_sigmas) == len(raw_timesteps) + 1
    assert np.array_equal(raw_timesteps[kept].astype(np.int64), sched.timesteps.numpy())
    if len(kept) == len(raw_timesteps):
        return raw_sigmas, False
    aligned = np.concatenate([raw_sigmas[kept], raw_sigmas[-1:]]).astype(np.float32)
    sched.sigmas = torch.from_numpy(aligned)
    return raw_sigmas, True


def set_forward_timesteps(sched, spec):
    """set_timesteps with the case's custom timesteps, its dynamic-shifting mu, or just its step count."""
    if spec["custom_timesteps"] is not None:
        sched.set_timesteps(None, timesteps=spec["custom_timesteps"])
    elif spec["mu"] is not None:
        sched.set_timesteps(spec["num_inference_steps"], mu=spec["mu"])
    else:
        sched.set_timesteps(spec["num_inference_steps"])


def planned_index(sched, t):
    """The sigma index the next step() will use."""
    return sched.step_index if sched.step_index is not None else sched.index_for_timestep(t)


def lower_order_after_zero_length_step(sched, t):
    """PATCH A: a step right after a zero-length step (repeated timestep, equal sigmas) gets r0 = 0 and NaN in
    diffusers; the port takes the lower-order update the history supports, reproduced here with diffusers' own
    update by lowering lower_order_nums for that step. Returns whether it lowered."""
    k, done, sig = planned_index(sched, t), sched.lower_order_nums, sched.sigmas
    if k >= len(sig) - 1:
        return False
    if k >= 1 and done >= 1 and float(sig[k]) == float(sig[k - 1]):
        sched.lower_order_nums = 0
        return True
    if k >= 2 and done >= 2 and float(sig[k - 1]) == float(sig[k - 2]):
        sched.lower_order_nums = 1
        return True
    return False


@dataclass
class Trajectory:
    """What run_trajectory records: [steps + 1] samples, [steps] model outputs, [steps] SDE noise draws or None,
    and the loop indices the patches touched."""
    samples: torch.Tensor
    model_outputs: torch.Tensor
    noises: torch.Tensor | None
    identity_steps: list
    lowered_steps: list
    overrun: bool

    def manifest_fields(self):
        """The manifest fields both schedulers record for a stepped case."""
        return {"identity_steps": self.identity_steps, "overrun": self.overrun,
                "model_output_shape": list(self.model_outputs.shape[1:])}


def run_trajectory(sched, x0, learned_variance, seed=None, patch_zero_length_history=False):
    """diffusers' own sampling loop over sched.timesteps with the stand-in model, patched where v0.37.0 breaks.

    PATCH 2 / B: NaN from a zero-length step (h = 0, equal sigmas) -> identity step.
    PATCH 3 / C: a repeated first timestep makes diffusers start at step_index 1 and raise IndexError on the last
    step -> identity step.
    PATCH A (patch_zero_length_history, forward only): see lower_order_after_zero_length_step.
    SDE noise comes from torch.Generator().manual_seed(seed); a second generator replaying that seed records each
    step's draw.
    """
    timesteps = list(sched.timesteps)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    replay = torch.Generator().manual_seed(seed) if seed is not None else None
    samples, model_outputs, noises, identity_steps, lowered_steps, overrun = [x0], [], [], [], [], False
    x = x0
    for i, t in enumerate(timesteps):
        out = standin_model(x, t, learned_variance)
        model_outputs.append(out)
        done = sched.lower_order_nums
        if patch_zero_length_history and lower_order_after_zero_length_step(sched, t):
            lowered_steps.append(i)
        if replay is not None:
            noises.append(torch.randn(x.shape, generator=replay))
        try:
            prev = sched.step(out, t, x, generator=generator).prev_sample
        except IndexError:
            if i != len(timesteps) - 1 or sched.step_index != len(timesteps):
                raise
            prev, overrun = x, True  # PATCH 3
            identity_steps.append(i)
        else:
            if not torch.isfinite(prev).all():
                k = sched.step_index - 1  # step_index used by this step
                s0, s1 = float(sched.sigmas[k]), float(sched.sigmas[k + 1])
                if not (torch.isnan(prev).any() and s0 == s1):
                    raise FloatingPointError(f"non-finite output at step {i} (sigmas {s0}, {s1})")
                prev = x  # PATCH 2
                identity_steps.append(i)
        if patch_zero_length_history:  # the history count diffusers would have reached without PATCH A
            sched.lower_order_nums = min(done + 1, sched.config.solver_order)
        assert prev.dtype == torch.float32 and prev.shape == x.shape
        x = prev
        samples.append(x)
    if generator is not None:  # the replayed draws are the ones step() made
        assert torch.equal(torch.randn(4, generator=generator), torch.randn(4, generator=replay))
    samples = torch.stack(samples)
    assert samples.shape[0] == len(timesteps) + 1 and torch.isfinite(samples).all()
    return Trajectory(samples, torch.stack(model_outputs), torch.stack(noises) if noises else None,
                      identity_steps, lowered_steps, overrun)


def pick_noise_timesteps(sched, batch):
    """Per batch item: the first, middle and last timestep and one value that is NOT in the schedule."""
    ts = sched.timesteps.tolist()
    off = next(v for v in range(37, sched.config.num_train_timesteps) if v not in ts)  # NOT in the schedule
    picks = [ts[0], ts[len(ts) // 2], off, ts[-1]]
    return torch.tensor((picks * batch)[:batch], dtype=torch.int64)


def create_scheduler(scheduler_class, folder, spec):
    """Create folder and the case's scheduler (from a repository config or keyword arguments); save its config,
    the source config if any, and its betas when the case asks for them."""
    folder.mkdir(parents=True)
    if spec["from_config"] is not None:
        sched = scheduler_class.from_config(spec["from_config"])
        (folder / "source_config.json").write_text(json.dumps(spec["from_config"], indent=2, sort_keys=True) + "\n")
    else:
        sched = scheduler_class(**spec["config"])
    sched.save_config(folder)
    if spec["save_betas"]:
        save_f32(folder / "betas.npy", sched.betas)
        save_f32(folder / "alphas_cumprod.npy", sched.alphas_cumprod)
    return sched


def common_entry(spec, sched):
    """The manifest fields both schedulers record; the patch fields start empty for add_noise cases."""
    return {"kind": spec["kind"], "config": json_safe(spec["config"]), "from_config": json_safe(spec["from_config"]),
            "num_inference_steps": spec["num_inference_steps"], "sample_shape": spec["sample_shape"],
            "x0_scale": spec["x0_scale"], "learned_variance": spec["learned_variance"], "identity_steps": [],
            "overrun": False, "steps": len(sched.timesteps), "model_output_shape": None}


def save_add_noise(folder, sched, shape):
    """kind "add_noise": noise the x0 formula at pick_noise_timesteps and save inputs and result."""
    original, noise = initial_sample(shape), noise_sample(shape)
    nts = pick_noise_timesteps(sched, shape[0])
    noisy = sched.add_noise(original, noise, nts)
    assert noisy.dtype == torch.float32 and torch.isfinite(noisy).all()
    save_f32(folder / "original.npy", original)
    save_f32(folder / "noise.npy", noise)
    save_i32(folder / "noise_timesteps.npy", nts)
    save_f32(folder / "noisy.npy", noisy)


# ------------------------------------------------------------------------------------------ GENERATORS
def generate_case(name, spec):
    """Write inverse/<name>/ and return its manifest entry."""
    folder = OUT / name
    sched = create_scheduler(DPMSolverMultistepInverseScheduler, folder, spec)
    raw_sigmas, aligned = set_timesteps_aligned(sched, spec["num_inference_steps"])
    save_i32(folder / "timesteps.npy", sched.timesteps)
    save_f32(folder / "sigmas.npy", sched.sigmas)
    if aligned:
        save_f32(folder / "sigmas_diffusers.npy", raw_sigmas)
    entry = {**common_entry(spec, sched), "aligned_sigmas": aligned}
    if spec["kind"] == "add_noise":
        save_add_noise(folder, sched, spec["sample_shape"])
        return entry

    x0 = initial_sample(spec["sample_shape"], spec["x0_scale"])
    trajectory = run_trajectory(sched, x0, spec["learned_variance"])
    save_f32(folder / "samples.npy", trajectory.samples)
    save_f32(folder / "model_outputs.npy", trajectory.model_outputs)
    entry.update(trajectory.manifest_fields())
    return entry


def generate_forward_case(name, spec):
    """Write forward/<name>/ and return its manifest entry."""
    folder = FORWARD_OUT / name
    sched = create_scheduler(DPMSolverMultistepScheduler, folder, spec)
    set_forward_timesteps(sched, spec)
    entry = {**common_entry(spec, sched), "scheduler": "DPMSolverMultistepScheduler",
             "custom_timesteps": spec["custom_timesteps"], "mu": spec["mu"], "seed": spec["seed"], "lowered_steps": [],
             "timesteps": [int(t) for t in sched.timesteps],
             "sigmas": [float(s) for s in sched.sigmas.numpy().astype(np.float32)]}
    if spec["kind"] == "add_noise":
        save_add_noise(folder, sched, spec["sample_shape"])
        return entry

    x0 = initial_sample(spec["sample_shape"], spec["x0_scale"])
    trajectory = run_trajectory(sched, x0, spec["learned_variance"], spec["seed"], patch_zero_length_history=True)
    # One file per case (reference/ stays small): row i = [sample_i, model_output_i, noise_i] flattened, the last
    # row holding only the final sample (zeros after it).
    per_step = [trajectory.model_outputs] + ([trajectory.noises] if trajectory.noises is not None else [])
    parts = [trajectory.samples.flatten(1)]
    parts += [torch.cat([rows.flatten(1), torch.zeros(1, rows[0].numel())]) for rows in per_step]
    save_f32(folder / "trajectory.npy", torch.cat(parts, dim=1))
    entry.update(trajectory.manifest_fields(), lowered_steps=trajectory.lowered_steps)
    return entry


# ------------------------------------------------------------------------------------------ RANDN DRAWS
RANDN_CASES = {
    "seed0_3": (0, [[3]]),
    "seed0_5_then_5": (0, [[5], [5]]),
    "seed7_1x1_then_15": (7, [[1, 1], [15]]),
    "seed0_16": (0, [[16], [16]]),
    "seed42_2x3x4x4": (42, [[2, 3, 4, 4], [2, 3, 4, 4]]),
    "seed1234_37": (1234, [[37], [37]]),
    "seed2024_1x4x5x7": (2024, [[1, 4, 5, 7]]),
    "seed3_mixed": (3, [[5], [33], [1], [16], [7], [100]]),
    "seed0_1x4x32x32": (0, [[1, 4, 32, 32]]),
    "seed4294967297_10x10": (4294967297, [[10, 10]]),
}


def generate_randn():
    entries = {}
    for name, (seed, shapes) in RANDN_CASES.items():
        g = torch.Generator().manual_seed(seed)
        draws = [torch.randn(shape, generator=g).flatten() for shape in shapes]
        save_f32(RANDN_OUT / f"{name}.npy", torch.cat(draws))
        entries[name] = {"seed": seed, "shapes": shapes}
    return entries


def main():
    for folder in (OUT, FORWARD_OUT, RANDN_OUT):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    cases = {name: generate_case(name, spec) for name, spec in build_cases().items()}
    forward_cases = {name: generate_forward_case(name, spec) for name, spec in build_forward_cases().items()}
    randn = generate_randn()
    manifest = {
        "generator": "reference/generate.py",
        "versions": {"diffusers": diffusers.__version__, "torch": torch.__version__, "numpy": np.__version__,
                     "scipy": scipy.__version__, "python": platform.python_version()},
        "standin_model": STANDIN_MODEL_TEXT,
        "notes": {
            "identity_steps": "0-based loop indices i where samples[i+1] := samples[i] (patch 2: NaN from a "
                              "zero-length step, sigmas[k] == sigmas[k+1]; patch 3: IndexError on the last step "
                              "after diffusers started at the second occurrence of a repeated first timestep).",
            "aligned_sigmas": "patch 1: set_timesteps dropped duplicate timesteps; sigmas.npy holds the sigmas "
                              "of the kept (first-occurrence) timesteps plus the final sigma, "
                              "sigmas_diffusers.npy what diffusers left.",
            "steps": "len(timesteps); the number of step() calls for kind 'steps'.",
            "add_noise": "noise_timesteps picks [timesteps[0], timesteps[S//2], <first value >= 37 not in the "
                         "schedule>, timesteps[-1]] per batch item.",
        },
        "cases": cases,
        "forward_cases": forward_cases,
        "forward_notes": {
            "scheduler": "forward_cases run DPMSolverMultistepScheduler; files under forward/<case>/.",
            "trajectory": "forward/<case>/trajectory.npy, float32 [steps + 1, S + M (+ S)]: row i is sample i "
                          "(S = prod(sample_shape)), the model output at step i (M = prod(model_output_shape)) and, "
                          "for SDE cases, the noise step i drew; the last row holds the final sample, then zeros.",
            "seed": "SDE cases: step(..., generator=torch.Generator().manual_seed(seed)); the trajectory's noise is "
                    "each step's draw (torch.randn(sample.shape) from a generator replaying the same seed).",
            "lowered_steps": "patch A: loop indices i whose step follows a zero-length step (equal sigmas) and "
                             "ran at the lower order the history supports, where diffusers divides by r0 = 0.",
            "custom_timesteps": "set_timesteps(None, timesteps=custom_timesteps).",
            "mu": "set_timesteps(num_inference_steps, mu=mu) with use_dynamic_shifting.",
        },
        "randn": randn,
        "randn_notes": "randn/<name>.npy: the flattened, concatenated torch.randn(shape, generator=g) draws for "
                       "shapes in order, from one g = torch.Generator().manual_seed(seed) (CPU, float32).",
    }
    (ROOT / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    hits = {n: (e["identity_steps"], e["overrun"]) for n, e in cases.items() if e["identity_steps"]}
    fhits = {n: (e["identity_steps"], e["lowered_steps"], e["overrun"]) for n, e in forward_cases.items()
             if e["identity_steps"] or e["lowered_steps"]}
    print(f"{len(forward_cases)} forward cases; patched: {fhits}")
    print(f"{len(cases)} cases; aligned: {[n for n, e in cases.items() if e['aligned_sigmas']]}; identity: {hits}")


if __name__ == "__main__":
    main()
