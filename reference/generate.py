"""Reference-data generator for the TypeScript port of diffusers' DPMSolverMultistepInverseScheduler.

Run from the repository root with a Python that imports diffusers v0.37.0:

    eval "$(/work/shared/tools/diffusers-env.sh DIFFUSERS_GIT_DIR HF_HUB_GIT_DIR)"
    "$REF_PYTHON" reference/generate.py

Writes reference/manifest.json and reference/inverse/<case>/ next to this script (inverse/ is recreated).
The output is deterministic: no timestamps, sorted JSON keys, single-threaded torch.

diffusers is only imported and called. Where v0.37.0 is broken, the reference encodes the port's intended
behaviour, still computed with diffusers' own math (see PATCHES below and the manifest fields).
"""

import json
import math
import platform
import shutil
import warnings
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
SCALED_LINEAR = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}


def case(steps=DEFAULT_STEPS, shape=None, kind="steps", x0_scale=1.0, learned_variance=False,
         from_config=None, save_betas=False, **config):
    return {"kind": kind, "config": config, "num_inference_steps": steps, "sample_shape": shape or DEFAULT_SHAPE,
            "x0_scale": x0_scale, "learned_variance": learned_variance, "from_config": from_config,
            "save_betas": save_betas or from_config is not None or "beta_schedule" in config
            or "trained_betas" in config}


def build_cases():
    c = {}
    # 1. full matrix
    for algo in ("dpmsolver", "dpmsolver++"):
        for solver in ("midpoint", "heun"):
            for order in (1, 2, 3):
                for pred in ("epsilon", "sample", "v_prediction"):
                    name = f"m_{algo.replace('++', 'pp')}_{solver}_o{order}_{pred}"
                    c[name] = case(algorithm_type=algo, solver_type=solver, solver_order=order, prediction_type=pred)
    # 2. flow matching sigmas
    flow = dict(algorithm_type="dpmsolver++", prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    for order in (1, 2, 3):
        c[f"flow_o{order}"] = case(solver_order=order, **flow)
    c["flow_o2_heun"] = case(solver_order=2, solver_type="heun", **flow)
    # 3. lower_order_final / euler_at_final
    c["lof_off_dpmsolverpp_midpoint_o3_20"] = case(
        20, algorithm_type="dpmsolver++", solver_type="midpoint", solver_order=3, lower_order_final=False)
    c["euler_at_final_dpmsolverpp_midpoint_o3_20"] = case(
        20, algorithm_type="dpmsolver++", solver_type="midpoint", solver_order=3, lower_order_final=False,
        euler_at_final=True)
    c["lof_off_dpmsolver_heun_o3_20"] = case(
        20, algorithm_type="dpmsolver", solver_type="heun", solver_order=3, lower_order_final=False)
    # 4. beta schedules (order 2)
    c["sched_linear"] = case(beta_schedule="linear", solver_order=2)
    c["sched_scaled_linear"] = case(solver_order=2, **SCALED_LINEAR)
    c["sched_squaredcos"] = case(beta_schedule="squaredcos_cap_v2", lambda_min_clipped=-math.inf, solver_order=2)
    c["sched_squaredcos_clip_5_1"] = case(beta_schedule="squaredcos_cap_v2", lambda_min_clipped=-5.1, solver_order=2)
    c["sched_trained_betas"] = case(8, num_train_timesteps=100, trained_betas=np.linspace(1e-4, 0.05, 100).tolist(),
                                    solver_order=2)
    # 5. timestep spacings
    for spacing in ("linspace", "leading", "trailing"):
        extra = {"steps_offset": 1} if spacing == "leading" else {}
        for steps in (7, 12, 50):
            c[f"spacing_{spacing}_{steps}"] = case(steps, timestep_spacing=spacing, solver_order=2, **extra)
    c["spacing_trailing_o3_lof_off_20"] = case(20, timestep_spacing="trailing", solver_order=3, lower_order_final=False)
    c["spacing_trailing_heun_lof_off_20"] = case(20, timestep_spacing="trailing", solver_order=2, solver_type="heun",
                                                 lower_order_final=False)
    # 6. sigma families
    c["karras_12_o2"] = case(12, use_karras_sigmas=True, solver_order=2)
    c["karras_12_o3"] = case(12, use_karras_sigmas=True, solver_order=3)
    c["karras_25_o2"] = case(25, use_karras_sigmas=True, solver_order=2)
    c["karras_25_o3_lof_off"] = case(25, use_karras_sigmas=True, solver_order=3, lower_order_final=False)
    c["karras_vpred_12"] = case(12, use_karras_sigmas=True, prediction_type="v_prediction")
    for steps in (12, 20, 26):  # 26 steps: int timesteps start [0, 0, ...] with the linear schedule
        c[f"exponential_{steps}"] = case(steps, use_exponential_sigmas=True)
    c["exponential_scaled_linear_20"] = case(20, use_exponential_sigmas=True, **SCALED_LINEAR)
    for steps in (12, 20, 47):  # 47 steps: a repeated int timestep (998, 998) near the end
        c[f"beta_sigmas_{steps}"] = case(steps, use_beta_sigmas=True)
    # 7. dynamic thresholding on odd shapes; x0 scaled by 4 so that clipping actually happens
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
        name = "thr_{}_{}_o{}_r{}_m{}_s{}".format(
            algo.replace("++", "pp"), pred, order, str(ratio).replace(".", ""), str(smax).replace(".", ""),
            "x".join(map(str, shape)))
        c[name] = case(shape=shape, x0_scale=4.0, algorithm_type=algo, prediction_type=pred, solver_order=order,
                       thresholding=True, dynamic_thresholding_ratio=ratio, sample_max_value=smax)
    # 8. learned variance: 2C model output channels
    for vt in ("learned_range", "learned"):
        for algo in ("dpmsolver", "dpmsolver++"):
            c[f"var_{vt}_{algo.replace('++', 'pp')}"] = case(
                learned_variance=True, variance_type=vt, algorithm_type=algo, prediction_type="epsilon",
                solver_order=2)
    # 9. step counts
    for steps in (1, 2, 3):
        for order in (2, 3):
            c[f"nsteps_{steps}_o{order}"] = case(steps, solver_order=order)
    c["nsteps_1000"] = case(1000, shape=[1, 1, 2, 2], num_train_timesteps=1000, solver_order=2)
    c["karras_128"] = case(128, shape=[1, 1, 2, 2], use_karras_sigmas=True, solver_order=2)
    c["ntrain100_nsteps_100"] = case(100, shape=[1, 3, 2, 2], num_train_timesteps=100, solver_order=2)
    # 10. add_noise
    c["add_noise_default"] = case(shape=[4, 3, 4, 4], kind="add_noise")
    c["add_noise_karras"] = case(shape=[4, 3, 4, 4], kind="add_noise", use_karras_sigmas=True)
    # 11. real repository configs, loaded with from_config
    c["repo_sd15_pndm"] = case(20, from_config=SD15_PNDM)
    c["repo_ddpm_cifar10_32"] = case(20, from_config=DDPM_CIFAR10)
    return c


# --------------------------------------------------------------------------------------------- helpers
def json_safe(v):
    if isinstance(v, float) and math.isinf(v):
        return "-inf" if v < 0 else "inf"
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


def save_f32(path, arr):
    arr = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
    assert arr.dtype in (np.float32, np.float64), (path, arr.dtype)
    np.save(path, np.ascontiguousarray(arr, dtype="<f4"))


def save_i32(path, arr):
    arr = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
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


def run_steps(sched, x0, learned_variance):
    """diffusers' own loop, with PATCH 2 (h == 0 NaN -> identity) and PATCH 3 (overrun IndexError -> identity)."""
    timesteps = list(sched.timesteps)
    samples, model_outputs, identity_steps, overrun = [x0], [], [], False
    x = x0
    for i, t in enumerate(timesteps):
        out = standin_model(x, t, learned_variance)
        model_outputs.append(out)
        try:
            prev = sched.step(out, t, x).prev_sample
        except IndexError:
            # PATCH 3: repeated first timestep -> diffusers starts at step_index 1 and runs off the end.
            if i != len(timesteps) - 1 or sched.step_index != len(timesteps):
                raise
            prev, overrun = x, True
            identity_steps.append(i)
        else:
            if not torch.isfinite(prev).all():
                k = sched.step_index - 1  # step_index used by this step
                s0, s1 = float(sched.sigmas[k]), float(sched.sigmas[k + 1])
                if not (torch.isnan(prev).any() and s0 == s1):
                    raise FloatingPointError(f"non-finite output at step {i} (sigmas {s0}, {s1})")
                prev = x  # PATCH 2: zero-length step (h = 0) -> identity
                identity_steps.append(i)
        assert prev.dtype == torch.float32 and prev.shape == x.shape
        x = prev
        samples.append(x)
    return torch.stack(samples), torch.stack(model_outputs), identity_steps, overrun


def pick_noise_timesteps(sched, batch):
    ts = sched.timesteps.tolist()
    off = next(v for v in range(37, sched.config.num_train_timesteps) if v not in ts)  # NOT in the schedule
    picks = [ts[0], ts[len(ts) // 2], off, ts[-1]]
    return torch.tensor((picks * batch)[:batch], dtype=torch.int64)


def generate_case(name, spec):
    folder = OUT / name
    folder.mkdir(parents=True)
    if spec["from_config"] is not None:
        sched = DPMSolverMultistepInverseScheduler.from_config(spec["from_config"])
        (folder / "source_config.json").write_text(json.dumps(spec["from_config"], indent=2, sort_keys=True) + "\n")
    else:
        sched = DPMSolverMultistepInverseScheduler(**spec["config"])
    sched.save_config(folder)
    if spec["save_betas"]:
        save_f32(folder / "betas.npy", sched.betas)
        save_f32(folder / "alphas_cumprod.npy", sched.alphas_cumprod)

    raw_sigmas, aligned = set_timesteps_aligned(sched, spec["num_inference_steps"])
    save_i32(folder / "timesteps.npy", sched.timesteps)
    save_f32(folder / "sigmas.npy", sched.sigmas)
    if aligned:
        save_f32(folder / "sigmas_diffusers.npy", raw_sigmas)

    shape = spec["sample_shape"]
    entry = {"kind": spec["kind"], "config": json_safe(spec["config"]),
             "from_config": json_safe(spec["from_config"]), "num_inference_steps": spec["num_inference_steps"],
             "sample_shape": shape, "x0_scale": spec["x0_scale"], "learned_variance": spec["learned_variance"],
             "aligned_sigmas": aligned, "identity_steps": [], "overrun": False, "steps": len(sched.timesteps),
             "model_output_shape": None}
    if spec["kind"] == "add_noise":
        original, noise = initial_sample(shape), noise_sample(shape)
        nts = pick_noise_timesteps(sched, shape[0])
        noisy = sched.add_noise(original, noise, nts)
        assert noisy.dtype == torch.float32 and torch.isfinite(noisy).all()
        save_f32(folder / "original.npy", original)
        save_f32(folder / "noise.npy", noise)
        save_i32(folder / "noise_timesteps.npy", nts)
        save_f32(folder / "noisy.npy", noisy)
        return entry

    x0 = initial_sample(shape, spec["x0_scale"])
    samples, model_outputs, identity_steps, overrun = run_steps(sched, x0, spec["learned_variance"])
    assert samples.shape[0] == len(sched.timesteps) + 1
    save_f32(folder / "samples.npy", samples)
    save_f32(folder / "model_outputs.npy", model_outputs)
    entry.update(identity_steps=identity_steps, overrun=overrun, model_output_shape=list(model_outputs.shape[1:]))
    return entry


# ------------------------------------------------------------------------------------- FORWARD CASES
def fcase(steps=DEFAULT_STEPS, shape=None, kind="steps", x0_scale=1.0, learned_variance=False, from_config=None,
          seed=None, mu=None, custom_timesteps=None, **config):
    return {"kind": kind, "config": config, "num_inference_steps": steps, "sample_shape": shape or FORWARD_SHAPE,
            "x0_scale": x0_scale, "learned_variance": learned_variance, "from_config": from_config, "seed": seed,
            "mu": mu, "custom_timesteps": custom_timesteps}


def build_forward_cases():
    c = {}
    # 1. full matrix; noise-prediction algorithms need final_sigmas_type "sigma_min" (diffusers raises otherwise)
    for algo in ("dpmsolver", "dpmsolver++", "sde-dpmsolver", "sde-dpmsolver++"):
        for solver in ("midpoint", "heun"):
            for order in (1, 2, 3):
                if algo == "sde-dpmsolver" and order == 3:
                    continue  # diffusers: UnboundLocalError at the first third-order step; the port refuses it
                preds = ("epsilon", "sample", "v_prediction") if order == 2 else ("epsilon",)
                for pred in preds:
                    extra = {} if algo.endswith("++") else {"final_sigmas_type": "sigma_min"}
                    seed = 1000 + len(c) if algo.startswith("sde") else None
                    name = f"m_{algo.replace('++', 'pp')}_{solver}_o{order}_{pred}"
                    c[name] = fcase(algorithm_type=algo, solver_type=solver, solver_order=order, prediction_type=pred,
                                    seed=seed, **extra)
    c["final_sigma_min_sdepp_o2"] = fcase(final_sigmas_type="sigma_min", algorithm_type="sde-dpmsolver++", seed=7)
    # SDE noise through torch's scalar path (< 16 elements) and its vectorised path (a multiple of 16)
    c["sdepp_small_shape"] = fcase(20, shape=[1, 1, 2, 3], algorithm_type="sde-dpmsolver++", seed=0)
    c["sde_small_shape"] = fcase(12, shape=[1, 1, 1, 5], algorithm_type="sde-dpmsolver", final_sigmas_type="sigma_min",
                                 seed=3)
    c["sdepp_shape_1x2x5x5_o3_lof_off"] = fcase(20, shape=[1, 2, 5, 5], algorithm_type="sde-dpmsolver++",
                                                solver_order=3, lower_order_final=False, seed=42)
    # 2. flow matching, dynamic shifting
    flow = dict(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    for order in (1, 2, 3):
        c[f"flow_o{order}"] = fcase(solver_order=order, **flow)
    c["flow_o2_heun"] = fcase(solver_type="heun", **flow)
    c["flow_sdepp"] = fcase(algorithm_type="sde-dpmsolver++", seed=11, **flow)
    c["flow_sigma_min"] = fcase(final_sigmas_type="sigma_min", **flow)
    c["flow_dynamic_mu_08"] = fcase(mu=0.8, use_dynamic_shifting=True, prediction_type="flow_prediction",
                                    use_flow_sigmas=True)
    # 3. lower_order_final / euler_at_final
    c["lof_off_dpmsolverpp_midpoint_o3_20"] = fcase(20, solver_order=3, lower_order_final=False)
    c["lof_off_dpmsolverpp_o3_20_sigma_min"] = fcase(20, solver_order=3, lower_order_final=False,
                                                     final_sigmas_type="sigma_min")
    c["euler_at_final_o3_20_sigma_min"] = fcase(20, solver_order=3, lower_order_final=False, euler_at_final=True,
                                                final_sigmas_type="sigma_min")
    c["lof_off_dpmsolver_heun_o3_20"] = fcase(20, algorithm_type="dpmsolver", solver_type="heun", solver_order=3,
                                              lower_order_final=False, final_sigmas_type="sigma_min")
    # 4. beta schedules, zero terminal SNR
    c["sched_scaled_linear"] = fcase(**SCALED_LINEAR)
    c["sched_squaredcos"] = fcase(beta_schedule="squaredcos_cap_v2")
    c["sched_squaredcos_clip_5_1"] = fcase(beta_schedule="squaredcos_cap_v2", lambda_min_clipped=-5.1)
    c["sched_trained_betas"] = fcase(8, num_train_timesteps=100, trained_betas=np.linspace(1e-4, 0.05, 100).tolist())
    c["zero_snr_linear"] = fcase(rescale_betas_zero_snr=True)
    c["zero_snr_scaled_linear_vpred_trailing"] = fcase(20, rescale_betas_zero_snr=True, prediction_type="v_prediction",
                                                       timestep_spacing="trailing", **SCALED_LINEAR)
    c["zero_snr_sigma_min_o3"] = fcase(rescale_betas_zero_snr=True, final_sigmas_type="sigma_min", solver_order=3)
    # 5. timestep spacings
    for spacing in ("linspace", "leading", "trailing"):
        extra = {"steps_offset": 1} if spacing == "leading" else {}
        for steps in (7, 50):
            c[f"spacing_{spacing}_{steps}"] = fcase(steps, shape=[1, 2, 2, 3], timestep_spacing=spacing, **extra)
    # 6. sigma families
    c["karras_12_o2"] = fcase(12, use_karras_sigmas=True)
    c["karras_12_o3"] = fcase(12, use_karras_sigmas=True, solver_order=3)
    c["karras_25_o3_lof_off"] = fcase(25, use_karras_sigmas=True, solver_order=3, lower_order_final=False)
    c["karras_vpred_12"] = fcase(12, use_karras_sigmas=True, prediction_type="v_prediction")
    c["karras_squaredcos_12"] = fcase(12, use_karras_sigmas=True, beta_schedule="squaredcos_cap_v2")
    c["karras_sdepp_20"] = fcase(20, use_karras_sigmas=True, algorithm_type="sde-dpmsolver++", seed=5)
    c["karras_128"] = fcase(128, shape=[1, 1, 2, 2], use_karras_sigmas=True)
    c["lu_12"] = fcase(12, use_lu_lambdas=True)
    c["lu_25_o3_vpred"] = fcase(25, use_lu_lambdas=True, solver_order=3, prediction_type="v_prediction")
    c["lu_squaredcos_12"] = fcase(12, use_lu_lambdas=True, beta_schedule="squaredcos_cap_v2")
    for steps in (12, 26):
        c[f"exponential_{steps}"] = fcase(steps, use_exponential_sigmas=True)
    for steps in (12, 47):
        c[f"beta_sigmas_{steps}"] = fcase(steps, use_beta_sigmas=True)
    # 7. dynamic thresholding on odd shapes
    for algo, pred, order, ratio, smax, shape in [
        ("dpmsolver++", "epsilon", 2, 0.87, 1.5, [3, 5, 7]),
        ("dpmsolver++", "sample", 3, 0.995, 3.0, [2, 3, 5, 3]),
        ("dpmsolver", "epsilon", 3, 0.87, 3.0, [1, 1, 9]),
        ("sde-dpmsolver++", "v_prediction", 2, 0.995, 1.5, [2, 3, 5, 3]),
    ]:
        name = "thr_{}_{}_o{}_s{}".format(algo.replace("++", "pp"), pred, order, "x".join(map(str, shape)))
        extra = {} if algo.endswith("++") else {"final_sigmas_type": "sigma_min"}
        c[name] = fcase(shape=shape, x0_scale=4.0, algorithm_type=algo, prediction_type=pred, solver_order=order,
                        thresholding=True, dynamic_thresholding_ratio=ratio, sample_max_value=smax,
                        seed=21 if algo.startswith("sde") else None, **extra)
    # 8. learned variance: 2C model output channels
    for vt, algo in (("learned_range", "dpmsolver"), ("learned", "dpmsolver++")):
        if True:
            extra = {} if algo.endswith("++") else {"final_sigmas_type": "sigma_min"}
            c[f"var_{vt}_{algo.replace('++', 'pp')}"] = fcase(learned_variance=True, variance_type=vt,
                                                              algorithm_type=algo, **extra)
    # 9. step counts; 1000 steps repeats timesteps (zero-length steps)
    for steps, order in ((1, 2), (2, 3), (3, 3)):
        c[f"nsteps_{steps}_o{order}"] = fcase(steps, solver_order=order)
    c["nsteps_1000"] = fcase(1000, shape=[1, 1, 2, 2])
    c["nsteps_1000_o3_heun_sigma_min"] = fcase(1000, shape=[1, 1, 2, 2], solver_order=3, solver_type="heun",
                                               final_sigmas_type="sigma_min")
    c["ntrain100_nsteps_100"] = fcase(100, shape=[1, 3, 2, 2], num_train_timesteps=100)
    # 10. custom timesteps
    c["custom_timesteps"] = fcase(None, custom_timesteps=[999, 900, 750, 601, 420, 300, 180, 77, 20, 3])
    c["custom_timesteps_sdepp_sigma_min"] = fcase(None, custom_timesteps=[980, 700, 500, 260, 90, 10],
                                                  algorithm_type="sde-dpmsolver++", final_sigmas_type="sigma_min",
                                                  seed=9)
    # 11. add_noise
    c["add_noise_default"] = fcase(shape=[4, 3, 3, 3], kind="add_noise")
    c["add_noise_karras"] = fcase(shape=[4, 3, 3, 3], kind="add_noise", use_karras_sigmas=True)
    # 12. real repository configs, loaded with from_config
    c["repo_sd15_pndm"] = fcase(20, from_config=SD15_PNDM)
    c["repo_ddpm_cifar10_32"] = fcase(20, from_config=DDPM_CIFAR10)
    return c


def planned_index(sched, t):
    return sched.step_index if sched.step_index is not None else sched.index_for_timestep(t)


def run_forward_steps(sched, x0, learned_variance, seed):
    """diffusers' own loop (SDE noise from torch.Generator().manual_seed(seed)), recording each step's noise.

    PATCH A: a step after a zero-length step (repeated timestep, equal sigmas) gets r0 = 0 and NaN in diffusers;
    the port takes the lower-order update the history supports, reproduced here with diffusers' own update by
    lowering lower_order_nums for that step. PATCH B (zero-length step NaN -> identity) and PATCH C (overrun
    IndexError -> identity) as for the inverse.
    """
    timesteps = list(sched.timesteps)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    replay = torch.Generator().manual_seed(seed) if seed is not None else None
    samples, model_outputs, noises, identity_steps, lowered_steps, overrun = [x0], [], [], [], [], False
    x = x0
    order = sched.config.solver_order
    for i, t in enumerate(timesteps):
        out = standin_model(x, t, learned_variance)
        model_outputs.append(out)
        k = planned_index(sched, t)
        saved = sched.lower_order_nums
        sig = sched.sigmas
        if k < len(sig) - 1 and k >= 1 and saved >= 1 and float(sig[k]) == float(sig[k - 1]):
            sched.lower_order_nums = 0
            lowered_steps.append(i)
        elif k < len(sig) - 1 and k >= 2 and saved >= 2 and float(sig[k - 1]) == float(sig[k - 2]):
            sched.lower_order_nums = 1
            lowered_steps.append(i)
        if replay is not None:
            noises.append(torch.randn(x.shape, generator=replay))
        try:
            prev = sched.step(out, t, x, generator=generator).prev_sample
        except IndexError:
            if i != len(timesteps) - 1 or sched.step_index != len(timesteps):
                raise
            prev, overrun = x, True
            identity_steps.append(i)
        else:
            if not torch.isfinite(prev).all():
                k = sched.step_index - 1
                s0, s1 = float(sched.sigmas[k]), float(sched.sigmas[k + 1])
                if not (torch.isnan(prev).any() and s0 == s1):
                    raise FloatingPointError(f"non-finite output at step {i} (sigmas {s0}, {s1})")
                prev = x
                identity_steps.append(i)
        sched.lower_order_nums = min(saved + 1, order)
        assert prev.dtype == torch.float32 and prev.shape == x.shape
        x = prev
        samples.append(x)
    if generator is not None:  # the replayed draws are the ones step() made
        assert torch.equal(torch.randn(4, generator=generator), torch.randn(4, generator=replay))
    stacked_noise = torch.stack(noises) if noises else None
    return torch.stack(samples), torch.stack(model_outputs), stacked_noise, identity_steps, lowered_steps, overrun


def generate_forward_case(name, spec):
    folder = FORWARD_OUT / name
    folder.mkdir(parents=True)
    if spec["from_config"] is not None:
        sched = DPMSolverMultistepScheduler.from_config(spec["from_config"])
        (folder / "source_config.json").write_text(json.dumps(spec["from_config"], indent=2, sort_keys=True) + "\n")
    else:
        sched = DPMSolverMultistepScheduler(**spec["config"])
    sched.save_config(folder)
    if spec["custom_timesteps"] is not None:
        sched.set_timesteps(None, timesteps=spec["custom_timesteps"])
    elif spec["mu"] is not None:
        sched.set_timesteps(spec["num_inference_steps"], mu=spec["mu"])
    else:
        sched.set_timesteps(spec["num_inference_steps"])
    timesteps = [int(t) for t in sched.timesteps]
    sigmas = [float(s) for s in sched.sigmas.numpy().astype(np.float32)]
    if name == "zero_snr_linear":
        save_f32(folder / "betas.npy", sched.betas)
        save_f32(folder / "alphas_cumprod.npy", sched.alphas_cumprod)

    shape = spec["sample_shape"]
    entry = {"scheduler": "DPMSolverMultistepScheduler", "kind": spec["kind"], "config": json_safe(spec["config"]),
             "from_config": json_safe(spec["from_config"]), "num_inference_steps": spec["num_inference_steps"],
             "custom_timesteps": spec["custom_timesteps"], "mu": spec["mu"], "seed": spec["seed"],
             "sample_shape": shape, "x0_scale": spec["x0_scale"], "learned_variance": spec["learned_variance"],
             "identity_steps": [], "lowered_steps": [], "overrun": False, "steps": len(sched.timesteps),
             "model_output_shape": None, "timesteps": timesteps, "sigmas": sigmas}
    if spec["kind"] == "add_noise":
        original, noise = initial_sample(shape), noise_sample(shape)
        nts = pick_noise_timesteps(sched, shape[0])
        noisy = sched.add_noise(original, noise, nts)
        assert noisy.dtype == torch.float32 and torch.isfinite(noisy).all()
        save_f32(folder / "original.npy", original)
        save_f32(folder / "noise.npy", noise)
        save_i32(folder / "noise_timesteps.npy", nts)
        save_f32(folder / "noisy.npy", noisy)
        return entry

    x0 = initial_sample(shape, spec["x0_scale"])
    samples, model_outputs, noises, identity_steps, lowered_steps, overrun = run_forward_steps(
        sched, x0, spec["learned_variance"], spec["seed"])
    assert torch.isfinite(samples).all(), name
    # One file per case (reference/ stays small): row i = [sample_i, model_output_i, noise_i] flattened, the last
    # row holding only the final sample (zeros after it).
    parts = [samples.flatten(1), torch.cat([model_outputs.flatten(1), torch.zeros(1, model_outputs[0].numel())])]
    if noises is not None:
        parts.append(torch.cat([noises.flatten(1), torch.zeros(1, noises[0].numel())]))
    save_f32(folder / "trajectory.npy", torch.cat(parts, dim=1))
    entry.update(identity_steps=identity_steps, lowered_steps=lowered_steps, overrun=overrun,
                 model_output_shape=list(model_outputs.shape[1:]))
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
