"""Trains the tiny class-conditional diffusion model of issue 8 on the 8x8 digits and exports it.

    /usr/bin/python3 reference/models/train_digits.py            # about 9 minutes on 2 shared CPU cores

Needs torch (Debian's python3-torch, 1.13) and the digits (Debian's python3-sklearn ships
sklearn/datasets/data/digits.csv.gz; the file is read directly, so sklearn itself is not imported).
Writes, under reference/models/digits/ (or $DIGITS_OUT):

    unet.onnx                     the UNet: (sample [B,1,8,8] f32, timestep [B] f32, class_labels [B] i32)
                                  -> noise prediction [B,1,8,8] f32; class 10 is the null class
    classifier.onnx               a small CNN judging edits: (image [B,1,8,8] f32) -> logits [B,10]
    scheduler/scheduler_config.json   the noise schedule it was trained with (diffusers' defaults)
    heldout_images.npy, heldout_labels.npy   the held-out digits (never trained on), in [-1, 1]
    parity/*.npy                  torch inputs and outputs for the ONNX parity test
    training.json                 losses, accuracy, seed, timings

Seeded: with the default single thread a re-run gives the same weights (other thread counts
change float sums in the last bits).
"""
import gzip
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 0
STEPS = int(os.environ.get("DIGITS_STEPS", "2400"))  # optimiser steps of the UNet
BATCH = 128
LR = 2e-3
EMA = 0.999
NUM_CLASSES = 10  # class 10 is the null class (classifier-free guidance)
P_UNCOND = 0.1
T = 1000
BETA_START, BETA_END = 1e-4, 0.02  # diffusers' default linear betas
HELDOUT = 297  # 1797 digits: 1500 train, 297 held out

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.environ.get("DIGITS_OUT", os.path.join(HERE, "digits"))
DIGITS = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"


def load_digits():
    with gzip.open(os.environ.get("DIGITS_CSV", DIGITS), "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.float32)
    images = data[:, :64].reshape(-1, 1, 8, 8) / 8.0 - 1.0  # 0..16 -> [-1, 1]
    return images.astype(np.float32), data[:, 64].astype(np.int32)


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, e):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(e)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    def __init__(self, c, heads=4):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(8, c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        b, c, hgt, wid = x.shape
        n, d = hgt * wid, c // self.heads
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, d, n).unbind(1)
        w = torch.softmax(torch.einsum("bhdi,bhdj->bhij", q, k) / math.sqrt(d), dim=-1)
        h = torch.einsum("bhij,bhdj->bhdi", w, v).reshape(b, c, hgt, wid)
        return x + self.out(h)


class UNet(nn.Module):
    """1x8x8 -> 32 channels at 8x8 -> 64 channels at 4x4 with self-attention -> back up."""

    def __init__(self, c1=32, c2=64, emb=128):
        super().__init__()
        self.c1 = c1
        self.time = nn.Sequential(nn.Linear(c1, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.label = nn.Embedding(NUM_CLASSES + 1, emb)
        self.conv_in = nn.Conv2d(1, c1, 3, padding=1)
        self.down1 = ResBlock(c1, c1, emb)
        self.downsample = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.down2 = ResBlock(c2, c2, emb)
        self.mid1 = ResBlock(c2, c2, emb)
        self.attn = Attention(c2)
        self.mid2 = ResBlock(c2, c2, emb)
        self.up2 = ResBlock(2 * c2, c2, emb)
        self.upsample = nn.Conv2d(c2, c1, 3, padding=1)
        self.up1 = ResBlock(2 * c1, c1, emb)
        self.norm_out = nn.GroupNorm(8, c1)
        self.conv_out = nn.Conv2d(c1, 1, 3, padding=1)

    def forward(self, sample, timestep, class_labels):
        e = self.time(timestep_embedding(timestep, self.c1)) + self.label(class_labels.long())
        e = F.silu(e)
        h1 = self.down1(self.conv_in(sample), e)
        h2 = self.down2(self.downsample(h1), e)
        h = self.mid2(self.attn(self.mid1(h2, e)), e)
        h = self.up2(torch.cat([h, h2], 1), e)
        h = self.upsample(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.up1(torch.cat([h, h1], 1), e)
        return self.conv_out(F.silu(self.norm_out(h)))


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 16, 10),
        )

    def forward(self, image):
        return self.net(image)


def alphas_cumprod():
    # As diffusers: torch.linspace in float32, cumprod in float32.
    betas = torch.linspace(BETA_START, BETA_END, T, dtype=torch.float32)
    return torch.cumprod(1.0 - betas, dim=0)


def diffusion_loss(model, x0, labels, generator):
    ac = alphas_cumprod()
    t = torch.randint(0, T, (x0.shape[0],), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    a = ac[t].sqrt()[:, None, None, None]
    s = (1 - ac[t]).sqrt()[:, None, None, None]
    return F.mse_loss(model(a * x0 + s * noise, t.float(), labels), noise)


def augment(x, generator):
    # One-pixel random shifts (with zero = -1 background padding) against overfitting 1500 images.
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    dx, dy = torch.randint(0, 3, (2,), generator=generator).tolist()
    return padded[:, :, dy:dy + 8, dx:dx + 8]


def main():
    # One thread: on this project's shared 2-core machine two threads ran 8x slower per step
    # (0.79 s against 0.095 s at batch 64) whenever the other core was busy.
    torch.set_num_threads(int(os.environ.get("DIGITS_THREADS", "1")))
    torch.manual_seed(SEED)
    started = time.time()
    images, labels = load_digits()
    order = np.random.RandomState(SEED).permutation(len(images))
    test_idx, train_idx = order[:HELDOUT], order[HELDOUT:]
    x_train, y_train = torch.from_numpy(images[train_idx]), torch.from_numpy(labels[train_idx])
    x_test, y_test = torch.from_numpy(images[test_idx]), torch.from_numpy(labels[test_idx])
    os.makedirs(os.path.join(OUT, "scheduler"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "parity"), exist_ok=True)

    # --- classifier (judges edits) ---
    g = torch.Generator().manual_seed(SEED + 1)
    clf = Classifier()
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    for step in range(1000):
        idx = torch.randint(0, len(x_train), (BATCH,), generator=g)
        loss = F.cross_entropy(clf(augment(x_train[idx], g)), y_train[idx].long())
        opt.zero_grad()
        loss.backward()
        opt.step()
    clf.eval()
    with torch.no_grad():
        accuracy = (clf(x_test).argmax(1) == y_test.long()).float().mean().item()
    print(f"classifier: held-out accuracy {accuracy:.4f} ({time.time() - started:.0f} s)", flush=True)

    # --- diffusion UNet ---
    g = torch.Generator().manual_seed(SEED + 2)
    model = UNet()
    ema = UNet()
    ema.load_state_dict(model.state_dict())
    params = sum(p.numel() for p in model.parameters())
    print(f"UNet: {params} parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 200) * 0.5 * (1 + math.cos(math.pi * s / STEPS)))
    log = []
    for step in range(STEPS):
        idx = torch.randint(0, len(x_train), (BATCH,), generator=g)
        x0 = augment(x_train[idx], g)
        y = y_train[idx].clone()
        y[torch.rand(BATCH, generator=g) < P_UNCOND] = NUM_CLASSES
        loss = diffusion_loss(model, x0, y, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            ema_params, params_now = list(ema.parameters()), list(model.parameters())
            torch._foreach_mul_(ema_params, EMA)
            torch._foreach_add_(ema_params, params_now, alpha=1 - EMA)
        if step % 500 == 0 or step == STEPS - 1:
            print(f"step {step} loss {loss.item():.4f} ({time.time() - started:.0f} s)", flush=True)
            log.append([step, loss.item()])
    ema.eval()

    def heldout_loss(net, x, y, seed):
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            return float(np.mean([diffusion_loss(net, x, y, gen).item() for _ in range(20)]))

    losses = {
        "train": heldout_loss(ema, x_train[:HELDOUT], y_train[:HELDOUT], 123),
        "heldout": heldout_loss(ema, x_test, y_test, 123),
        "heldout_unconditional": heldout_loss(ema, x_test, torch.full_like(y_test, NUM_CLASSES), 123),
    }
    print(f"EMA eps-MSE (20 draws): {losses}", flush=True)

    # --- export ---
    b = 4
    gen = torch.Generator().manual_seed(7)
    sample = torch.randn((b, 1, 8, 8), generator=gen)
    timestep = torch.tensor([0.0, 250.0, 617.0, 999.0])
    class_labels = torch.tensor([3, 7, 10, 0], dtype=torch.int32)
    with torch.no_grad():
        eps = ema(sample, timestep, class_labels)
        logits = clf(x_test[:b])
    torch.onnx.export(
        ema, (sample, timestep, class_labels), os.path.join(OUT, "unet.onnx"), opset_version=14,
        input_names=["sample", "timestep", "class_labels"], output_names=["noise_pred"],
        dynamic_axes={"sample": {0: "batch"}, "timestep": {0: "batch"},
                      "class_labels": {0: "batch"}, "noise_pred": {0: "batch"}})
    torch.onnx.export(
        clf, (x_test[:b],), os.path.join(OUT, "classifier.onnx"), opset_version=14,
        input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    par = os.path.join(OUT, "parity")
    np.save(os.path.join(par, "sample.npy"), sample.numpy())
    np.save(os.path.join(par, "timestep.npy"), timestep.numpy())
    np.save(os.path.join(par, "class_labels.npy"), class_labels.numpy())
    np.save(os.path.join(par, "noise_pred.npy"), eps.numpy())
    np.save(os.path.join(par, "image.npy"), x_test[:b].numpy())
    np.save(os.path.join(par, "logits.npy"), logits.numpy())
    np.save(os.path.join(OUT, "heldout_images.npy"), x_test.numpy())
    np.save(os.path.join(OUT, "heldout_labels.npy"), y_test.numpy())
    config = {
        "_class_name": "DPMSolverMultistepScheduler",
        "_diffusers_version": "0.37.0",
        "num_train_timesteps": T,
        "beta_start": BETA_START,
        "beta_end": BETA_END,
        "beta_schedule": "linear",
        "prediction_type": "epsilon",
        "algorithm_type": "dpmsolver++",
        "solver_order": 2,
        "timestep_spacing": "linspace",
    }
    with open(os.path.join(OUT, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    with open(os.path.join(OUT, "training.json"), "w") as f:
        json.dump({
            "seed": SEED, "steps": STEPS, "batch": BATCH, "lr": LR, "ema": EMA,
            "p_uncond": P_UNCOND, "parameters": params, "train_digits": len(train_idx),
            "heldout_digits": len(test_idx), "eps_mse": losses, "classifier_accuracy": accuracy,
            "loss_log": log, "seconds": round(time.time() - started),
            "torch": torch.__version__,
        }, f, indent=2)
        f.write("\n")
    print(f"done in {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
