#!/usr/bin/env python
"""Reproduce the shapes world's shipped base model from a seed, on CPU.

    nice -n 10 python scripts/train_shapes_base.py            # train, export, evaluate
    python scripts/train_shapes_base.py --eval-only           # re-measure the exported model

Stages (each resumes where it stopped; progress goes to WORK/train.log):
1. render a fixed data set of training-split prompts (form mix 20 % single / 30 % count / 50 % relation);
2. train the VAE (32x32 RGB <-> 4x16x16); latents keep SD's scaling factor 0.18215 (see architecture.py);
3. cache the data set's latents;
4. train the UNet and CLIP text encoder jointly (epsilon loss, 10 % empty captions for guidance, EMA),
   checkpointing every few hundred steps, so an interrupted run continues from its last checkpoint;
5. export that pipeline (EMA weights, DDIM scheduler, safetensors) to WORK/stage1;
6. finishing: `mmpref train` with objective sft (full UNet, text encoder frozen) on every training
   relation prompt drawn at four layouts shared by all prompts (mmpref/sandbox/shapes/layout_pairs.py),
   in two runs (1,500 then 750 steps, the second from the first's output with a fresh optimizer and
   warm-up), then export the result to --out. Stage 5's model draws the right objects but puts a
   relation's two objects in the right order only half the time on every prompt, seen or not; diverse
   data does not teach order in thousands more steps (runs below), while shared layouts reduce it to
   "which colour goes in which place", which the UNet picks up within a few thousand steps. Stopped
   part-way, it binds order on held-out prompts about 70 % of the time, and it has blurred some shapes
   (relation renders only, at four placements): room for alignment on both;
7. measure ground-truth accuracy on held-out prompts with the fixed sampler (DDIM, 20 steps, CFG 4).

The base is deliberately imperfect: the finishing step count is where its held-out accuracy lands inside
40-75 %, leaving room for alignment. Run time on 2 shared CPU cores: see RUN_TIME below and
the exported shapes_world.json. `--init-from DIR --unet-steps 0` runs only the finishing stage on an
exported stage-5 model (how the shipped base was made from the previous one).

`--init-from DIR` continues an exported base instead (VAE kept, no VAE stage; UNet and text encoder start
from DIR's weights with a fresh warm-up); `--renders-per-prompt`, `--relation-layout canonical`,
`--freeze-text-encoder` and `--constant-lr` change its data and optimisation. Measured 2026-12-06 on
2 CPU cores, continuing the stage-5 model (shipped until then) to teach it spatial order (held-out
relation accuracy; base 0.426; train-subset relation accuracy in brackets):
    --lr 3e-4 --unet-horizon 3000 (cosine, EMA 0.999, text encoder trained, default data):
        500 steps 0.398 (0.514), 1000 0.414 (0.505), 1500 0.407 (0.500), 2000 0.428 (0.514)
    --renders-per-prompt 4 --freeze-text-encoder --constant-lr --ema 0 --lr 2e-4 --batch 32:
        1500 0.370 (0.509), 2500 0.329 (0.477)
    --relation-layout canonical --freeze-text-encoder --constant-lr --ema 0 --lr 2e-4:
        750 0.343 (0.488), 1500 0.391 (0.495), 2250 0.352 (0.516), 3000 0.354 (0.535); at 3000 steps
        held-out relation samples are in the right order 42 % of the time (reversed 54 %), training ones 52 %
None moves order off chance within 3,000 steps (0.23-0.45 s/step); the finishing stage (shared layouts) does.
Finishing measured 2026-12-06 (held-out accuracy / share of relation samples in the right order, with
`mmpref eval`'s seeds; the first stage 0.466 / 45 %), and the demo's DPO gain on each (beta 20,000, 600
steps, its own pairs):
    relation prompts, 1,500 steps                          0.487 / 53 %
    relation prompts, 2,000 steps (one run)                0.556 / 69 %   DPO +0.100
    relation prompts, 2,250 steps (one run)                0.669 / 76 %   DPO +0.015
    relation prompts, 1,500 + 750 (the shipped base)       0.641 / 72 %   DPO +0.109
    all training prompts, 2,250 steps (one run)            0.618 / 73 %   DPO +0.066 (shipped that morning)
    relation prompts, 1,500 + 1,500                        0.712 / 84 %   DPO +0.064 (beta 60,000: +0.092)
The DPO gain depends on how much the pass blurred shapes (DPO repairs shapes, it hardly moves order) and
is sensitive to the run: on the shipped base, 500 DPO steps gave +0.058, the trainer's encoded-pair cache
(another draw of VAE latents) +0.071, and with it beta 60,000 +0.053. The two rounds took 1,069 + 377 s
at 1 thread on 2 cores shared with two other jobs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mmpref.arg_types import non_negative_int, positive_float, positive_int, unit_interval
from mmpref.sandbox.shapes import architecture as arch
from mmpref.sandbox.shapes.grammar import FORMS
from mmpref.sandbox.shapes.render import render
from mmpref.sandbox.shapes.split import split_prompts

# Measured for the shipped model (niced, on 2 cores shared with other jobs): data 9 s, VAE 977 s (under
# load ~7), latents 269 s, UNet 1665 s (4000 steps at 0.37-0.6 s/step, 1 thread): ~49 min in all, ~28 of
# them the UNet. On an idle machine the VAE takes ~2 min (0.16 s/step) and the latents ~30 s.
RUN_TIME = "about 55 minutes on 2 CPU cores (UNet ~28 min, finishing ~18-24 min); see shapes_world.json"
FORM_MIX = {"single": 0.2, "count": 0.3, "relation": 0.5}
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "mmpref" / "sandbox" / "assets" / "shapes_base"
SAMPLER = {"num_inference_steps": 20, "guidance_scale": 4.0}
# Stage 6: a short pass of denoising loss (mmpref's trainer, objective sft, text encoder frozen) on every
# training relation prompt drawn at four layouts shared by all prompts, in two runs, which teaches the base
# spatial order partly; without it the base never leaves chance on order and alignment has nothing to sharpen.
FINISH = {"steps": [1500, 750], "layouts": 4, "lr": 2e-4, "batch": 32, "forms": "relation"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--work", type=Path, default=Path("outputs/shapes_base_run"), help="data, checkpoints, log"
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the pipeline is exported")
    p.add_argument(
        "--threads", type=positive_int, default=2, help="torch threads; use 1 on a machine shared with other jobs"
    )
    p.add_argument("--dataset", type=positive_int, default=40000, help="rendered training images")
    p.add_argument("--batch", type=positive_int, default=64)
    p.add_argument("--vae-steps", type=non_negative_int, default=750, help="VAE steps to run")
    p.add_argument(
        "--vae-horizon", type=positive_int, default=1200, help="length of the VAE's cosine learning-rate decay"
    )
    p.add_argument("--vae-batch", type=positive_int, default=32)
    p.add_argument("--unet-steps", type=non_negative_int, default=4000, help="UNet steps to run")
    p.add_argument(
        "--unet-horizon", type=positive_int, default=4000, help="length of the UNet's cosine learning-rate decay"
    )
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--ema", type=unit_interval, default=0.999)
    p.add_argument("--checkpoint-every", type=positive_int, default=250)
    p.add_argument("--eval-seeds", type=positive_int, default=4, help="samples per held-out prompt")
    p.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="continue from an exported pipeline: keep its VAE, start the UNet and text encoder (and their EMA)"
        " from its weights and train them for --unet-steps with a fresh warm-up and cosine decay",
    )
    p.add_argument(
        "--renders-per-prompt",
        type=non_negative_int,
        default=0,
        help="render every training prompt this many times instead of --dataset images drawn by form mix",
    )
    p.add_argument(
        "--relation-layout",
        choices=("random", "canonical"),
        default="random",
        help="canonical: relation renders centred with a fixed spacing along the axis (small jitter)",
    )
    p.add_argument("--freeze-text-encoder", action="store_true", help="train the UNet only")
    p.add_argument("--constant-lr", action="store_true", help="keep --lr after warm-up (no cosine decay)")
    p.add_argument(
        "--finish-steps",
        type=non_negative_int,
        nargs="+",
        default=FINISH["steps"],
        help="finishing stage: full-UNet steps on renders at --finish-layouts shared layouts, one `mmpref train`"
        " run per number, each continuing the previous one with a fresh optimizer and warm-up (0: none)",
    )
    p.add_argument("--finish-layouts", type=positive_int, default=FINISH["layouts"], help="render seeds per prompt")
    p.add_argument("--finish-lr", type=positive_float, default=FINISH["lr"])
    p.add_argument("--finish-batch", type=positive_int, default=FINISH["batch"])
    p.add_argument(
        "--finish-forms",
        choices=("all", "relation"),
        default=FINISH["forms"],
        help="which training prompts the finishing stage renders (relation: only the relation prompts)",
    )
    p.add_argument("--eval-only", action="store_true")
    args = p.parse_args(argv)
    if any(args.finish_steps) and min(args.finish_steps) < 1:
        p.error(f"--finish-steps: every round needs >= 1 step (or one 0 for no finishing), got {args.finish_steps}")
    return args


class Log:
    """Prints and appends to WORK/train.log, with elapsed time."""

    def __init__(self, path: Path) -> None:
        self.path, self.start = path, time.time()

    def __call__(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')} +{time.time() - self.start:7.1f}s] {msg}"
        print(line, flush=True)
        with self.path.open("a") as f:
            f.write(line + "\n")


def read_seconds(work: Path) -> dict[str, float]:
    """Each stage's run time so far, from WORK/times.json (empty before the first stage ends)."""
    path = work / "times.json"
    return json.loads(path.read_text()) if path.exists() else {}


def record_seconds(work: Path, stage: str, seconds: float) -> None:
    """Set a stage's run time in WORK/times.json (a stage that resumes passes its total over runs)."""
    times = read_seconds(work)
    times[stage] = round(seconds)
    (work / "times.json").write_text(json.dumps(times, indent=2) + "\n")


def atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_exported(model: torch.nn.Module, folder: Path) -> torch.nn.Module:
    """Load an exported component's safetensors into a model built from the same config (strict)."""
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if len(files) != 1:
        raise SystemExit(f"--init-from: expected one .safetensors file in {folder}, found {len(files)}")
    state, own = load_file(files[0]), model.state_dict()
    problems = {
        "missing": [k for k in own if k not in state],
        "unexpected": [k for k in state if k not in own],
        "of another shape": [k for k in own if k in state and state[k].shape != own[k].shape],
    }
    if any(problems.values()):
        summary = ", ".join(f"{len(keys)} {what} (e.g. {keys[0]})" for what, keys in problems.items() if keys)
        raise SystemExit(
            f"--init-from: {files[0]} does not fit this script's architecture (mmpref/sandbox/shapes/"
            f"architecture.py): {summary}; point --init-from at a pipeline this script exported"
        )
    model.load_state_dict(state)
    return model


# ---------------------------------------------------------------- stage 1: data
def make_data(args: argparse.Namespace, log: Log) -> dict[str, np.ndarray]:
    path = args.work / "data.npz"
    if path.exists():
        data = dict(np.load(path))
        log(f"data: loaded {len(data['images'])} images")
        return data
    tic = time.time()
    train = split_prompts(args.seed).train
    if args.renders_per_prompt:
        prompt_idx = np.repeat(np.arange(len(train)), args.renders_per_prompt)
    else:
        by_form = {f: [i for i, p in enumerate(train) if p.form == f] for f in FORMS}
        rng = np.random.default_rng(args.seed)
        forms = rng.choice(list(FORM_MIX), size=args.dataset, p=list(FORM_MIX.values()))
        prompt_idx = np.array([by_form[f][rng.integers(len(by_form[f]))] for f in forms])
    draw_one = render_canonical if args.relation_layout == "canonical" else render
    images = np.stack(
        [np.asarray(draw_one(train[i], seed=args.seed * 10**7 + k)) for k, i in enumerate(prompt_idx)]
    )
    np.savez(path, images=images, prompt_idx=prompt_idx)
    record_seconds(args.work, "data", time.time() - tic)
    log(f"data: rendered {len(images)} images of {len(train)} training prompts")
    return {"images": images, "prompt_idx": prompt_idx}


def render_canonical(prompt, seed: int):
    """A relation prompt drawn at one canonical layout (centred pair, fixed spacing, 2 px jitter);
    other forms as `render` draws them. Fewer layouts make the order signal stand out in training."""
    from mmpref.sandbox.shapes.render import _DIRECTION, PlacedShape, draw

    if prompt.relation is None:
        return render(prompt, seed=seed)
    rng = np.random.default_rng(seed)
    sides = rng.uniform(8, 12, 2)
    centre = 16 + rng.uniform(-2, 2, 2)
    step = np.array(_DIRECTION[prompt.relation]) * ((sides[0] + sides[1]) / 2 + 4 + rng.uniform(0, 2)) / 2
    (c0, c1) = (centre - step, centre + step)
    return draw(
        [
            PlacedShape(g.color, g.shape, float(c[0]), float(c[1]), float(d))
            for g, c, d in zip(prompt.groups, (c0, c1), sides)
        ]
    )


def to_pixels(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


# ---------------------------------------------------------------- stage 2: VAE
def train_vae(args: argparse.Namespace, data: dict, log: Log):
    final = args.work / "vae_final.pt"
    vae = arch.build_vae()
    if args.init_from is not None:
        return load_exported(vae, args.init_from / "vae").eval()
    if final.exists():
        vae.load_state_dict(torch.load(final, weights_only=True)["model"])
        return vae
    ckpt_path = args.work / "vae_ckpt.pt"
    opt = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed + 1)
    start, spent, tic = 0, 0.0, time.time()
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=True)
        vae.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        gen.set_state(ckpt["gen"])
        start, spent = ckpt["step"], ckpt.get("seconds", 0.0)
        log(f"vae: resumed at step {start}")
    images = data["images"]
    vae.train()
    for step in range(start, args.vae_steps):
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.vae_horizon)))
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(len(images), (args.vae_batch,), generator=gen).numpy()
        x = to_pixels(images[idx])
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen)
        recon = vae.decode(z).sample
        mse = torch.nn.functional.mse_loss(recon, x)
        kl = posterior.kl().mean() / z[0].numel()
        loss = mse + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if (step + 1) % 50 == 0:
            log(
                f"vae step {step + 1}/{args.vae_steps} mse {mse.item():.5f} kl/dim {kl.item():.3f} lr {lr:.2e}"
            )
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.vae_steps:
            atomic_save(
                {
                    "model": vae.state_dict(),
                    "opt": opt.state_dict(),
                    "gen": gen.get_state(),
                    "step": step + 1,
                    "seconds": spent + time.time() - tic,
                },
                ckpt_path,
            )
    vae.eval()
    with torch.no_grad():
        sample = to_pixels(images[:2048])
        std = float(vae.encode(sample).latent_dist.mean.std())
    scale = vae.config.scaling_factor
    log(f"vae: latent std {std:.4f}; the UNet sees std {std * scale:.3f} (scaling_factor {scale})")
    log(f"vae: ground-truth accuracy on reconstructions of held-out renders {vae_check(vae, args.seed):.3f}")
    atomic_save({"model": vae.state_dict()}, final)
    record_seconds(args.work, "vae", spent + time.time() - tic)
    return vae


@torch.no_grad()
def vae_check(vae, seed: int, n: int = 256) -> float:
    """Share of reconstructed held-out renders the ground truth still accepts (should be ~1)."""
    from mmpref.sandbox.shapes.truth import truth_correct

    heldout = split_prompts(seed).heldout
    prompts = [heldout[i % len(heldout)] for i in range(n)]
    clean = np.stack([np.asarray(render(p, seed=10**9 + i)) for i, p in enumerate(prompts)])
    recon = vae.decode(vae.encode(to_pixels(clean)).latent_dist.mean).sample
    pixels = ((recon.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return float(truth_correct(pixels, prompts).mean())


# ---------------------------------------------------------------- stage 3: latents
@torch.no_grad()
def cache_latents(args: argparse.Namespace, data: dict, vae, log: Log) -> tuple[torch.Tensor, torch.Tensor]:
    path = args.work / "latents.pt"
    if path.exists():
        cached = torch.load(path, weights_only=True)
        return cached["mean"].float(), cached["std"].float()
    vae.eval()
    tic = time.time()
    means, stds = [], []
    for i in range(0, len(data["images"]), 256):
        posterior = vae.encode(to_pixels(data["images"][i : i + 256])).latent_dist
        means.append(posterior.mean)
        stds.append(posterior.std)
    mean, std = torch.cat(means), torch.cat(stds)
    atomic_save({"mean": mean.half(), "std": std.half()}, path)
    record_seconds(args.work, "latents", time.time() - tic)
    log(f"latents: cached {tuple(mean.shape)}")
    return mean, std


# ---------------------------------------------------------------- stage 4: UNet + text encoder
def train_unet(args: argparse.Namespace, data: dict, vae, latents, log: Log):
    from diffusers import DDPMScheduler

    tokenizer = arch.build_tokenizer(args.work / "tokenizer")
    unet, text_encoder = arch.build_unet(), arch.build_text_encoder(tokenizer)
    ema_unet, ema_text = arch.build_unet(), arch.build_text_encoder(tokenizer)
    final = args.work / "unet_final.pt"
    if final.exists():
        state = torch.load(final, weights_only=True)
        ema_unet.load_state_dict(state["unet"])
        ema_text.load_state_dict(state["text_encoder"])
        return tokenizer, ema_unet, ema_text
    if args.init_from is not None:
        load_exported(unet, args.init_from / "unet")
        load_exported(text_encoder, args.init_from / "text_encoder")
        log(f"unet: starting from the weights exported in {args.init_from}")
    ema_unet.load_state_dict(unet.state_dict())
    ema_text.load_state_dict(text_encoder.state_dict())
    noise_scheduler = DDPMScheduler(**{k: v for k, v in arch.SCHEDULE.items() if k != "set_alpha_to_one"})
    train = split_prompts(args.seed).train
    ids = tokenizer(
        [p.text for p in train] + [""],
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    prompt_ids, empty_ids = ids[:-1], ids[-1]
    params = list(unet.parameters()) + ([] if args.freeze_text_encoder else list(text_encoder.parameters()))
    ema_params = list(ema_unet.parameters()) + (
        [] if args.freeze_text_encoder else list(ema_text.parameters())
    )
    text_encoder.requires_grad_(not args.freeze_text_encoder)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2)
    gen = torch.Generator().manual_seed(args.seed + 2)
    ckpt_path, start, spent, started = args.work / "unet_ckpt.pt", 0, 0.0, time.time()
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=True)
        unet.load_state_dict(ckpt["unet"])
        text_encoder.load_state_dict(ckpt["text_encoder"])
        ema_unet.load_state_dict(ckpt["ema_unet"])
        ema_text.load_state_dict(ckpt["ema_text"])
        opt.load_state_dict(ckpt["opt"])
        gen.set_state(ckpt["gen"])
        start, spent = ckpt["step"], ckpt.get("seconds", 0.0)
        log(f"unet: resumed at step {start}")
    mean, std = latents
    scale = vae.config.scaling_factor
    prompt_of = torch.from_numpy(data["prompt_idx"])
    unet.train()
    text_encoder.train(not args.freeze_text_encoder)
    tic, running = time.time(), 0.0
    warmup = 200
    for step in range(start, args.unet_steps):
        decay = (
            1.0 if args.constant_lr else 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.unet_horizon)))
        )
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * decay)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(len(mean), (args.batch,), generator=gen)
        z0 = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)) * scale
        noise = torch.randn(z0.shape, generator=gen)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (args.batch,), generator=gen)
        zt = noise_scheduler.add_noise(z0, noise, t)
        batch_ids = prompt_ids[prompt_of[idx]].clone()
        drop = torch.rand(args.batch, generator=gen) < 0.1
        batch_ids[drop] = empty_ids
        cond = text_encoder(batch_ids)[0]
        loss = torch.nn.functional.mse_loss(unet(zt, t, cond).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema_decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema_params, params):
                e.lerp_(p, 1 - ema_decay)
        running += loss.item()
        if (step + 1) % 50 == 0:
            rate = (time.time() - tic) / 50
            log(
                f"unet step {step + 1}/{args.unet_steps} loss {running / 50:.4f} lr {lr:.2e} {rate:.2f}s/step"
            )
            tic, running = time.time(), 0.0
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.unet_steps:
            atomic_save(
                {
                    "unet": unet.state_dict(),
                    "text_encoder": text_encoder.state_dict(),
                    "ema_unet": ema_unet.state_dict(),
                    "ema_text": ema_text.state_dict(),
                    "opt": opt.state_dict(),
                    "gen": gen.get_state(),
                    "step": step + 1,
                    "seconds": spent + time.time() - started,
                },
                ckpt_path,
            )
    atomic_save({"unet": ema_unet.state_dict(), "text_encoder": ema_text.state_dict()}, final)
    record_seconds(args.work, "unet", spent + time.time() - started)
    return tokenizer, ema_unet, ema_text


# ---------------------------------------------------------------- stage 6: finishing


def write_finish_data(args: argparse.Namespace, log: Log) -> Path:
    """The finishing data (once): the --finish-forms training prompts at --finish-layouts shared layouts."""
    from mmpref.sandbox.finishing import finish_prompts
    from mmpref.sandbox.shapes.layout_pairs import write_layout_pairs

    data = args.work / "layout_pairs.parquet"
    if not data.exists():
        rows = write_layout_pairs(data, finish_prompts(split_prompts(args.seed).train, args.finish_forms),
                                  args.finish_layouts)
        log(f"finish: {rows} renders of {args.finish_forms} prompts at {args.finish_layouts} shared layouts -> {data}")
    return data


def finish(args: argparse.Namespace, base: Path, log: Log) -> Path:
    """Fine-tune `base` on layout-shared renders through `mmpref train`, one run per round of
    --finish-steps (each from the previous round's output with a fresh optimizer and warm-up; resumable);
    the last round's pipeline."""
    from mmpref.sandbox.finishing import require_exported, run_train_config, write_sft_config

    rounds = [args.work / f"finish-round-{i + 1}" for i in range(len(args.finish_steps))]
    if (rounds[-1] / "model_index.json").exists():
        return rounds[-1]
    require_exported(base, "mmpref/sandbox/assets/shapes_base")
    data = write_finish_data(args, log)
    start = base
    for i, (steps, out) in enumerate(zip(args.finish_steps, rounds)):
        if not (out / "model_index.json").exists():
            config = write_sft_config(
                args.work / f"finish-round-{i + 1}.yaml",
                adapter={"name": "text_to_image", "pretrained": str(start), "resolution": 32, "random_crop": False,
                         "random_flip": False},
                data={"source": str(data)}, out=out, steps=steps, batch=args.finish_batch, seed=args.seed,
                lr=args.finish_lr)
            tic = time.time()
            run_train_config(config)
            spent = read_seconds(args.work).get("finish", 0)  # earlier rounds
            record_seconds(args.work, "finish", spent + time.time() - tic)
            log(f"finish: round {i + 1}, {steps} steps from {start} -> {out}")
        start = out
    return rounds[-1]


# ---------------------------------------------------------------- stage 5: export
def export(dest: Path, vae, tokenizer, unet, text_encoder, log: Log) -> None:
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=unet.eval(),
        scheduler=arch.build_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    save_pipeline(pipe, dest, log)


def save_pipeline(pipe, dest: Path, log: Log) -> None:
    """Safetensors pipeline directory, with the slow tokenizer's files beside the fast one."""
    from mmpref.sandbox.shapes.tokenizer import write_tokenizer_files

    pipe.save_pretrained(dest, safe_serialization=True)
    write_tokenizer_files(dest / "tokenizer")  # vocab.json + merges.txt too, for slow-tokenizer installs
    log_export(dest, log)


def log_export(dest: Path, log: Log) -> None:
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    log(f"export: {dest} ({size / 2**20:.1f} MiB)")


def export_finished(finished: Path, stage1: Path, dest: Path, log: Log) -> None:
    """Only the pipeline of the finishing run's output (not its trainer logs) goes to `dest`, with stage 5's
    tokenizer files unchanged and no local paths in the configs."""
    from diffusers import StableDiffusionPipeline

    from mmpref.sandbox.finishing import tidy_export

    pipe = StableDiffusionPipeline.from_pretrained(finished, safety_checker=None)
    pipe.save_pretrained(dest, safe_serialization=True)
    tidy_export(dest, stage1)
    log_export(dest, log)


# ---------------------------------------------------------------- stage 7: evaluation
def evaluate(args: argparse.Namespace, log: Log) -> dict:
    from mmpref.sandbox.shapes.base import load_shapes_base
    from mmpref.sandbox.shapes.evaluate import accuracy_by_form

    pipe = load_shapes_base("cpu", torch.float32, path=args.out)
    split = split_prompts(args.seed)
    tic = time.time()
    prompts = {"heldout": list(split.heldout), "train_subset": list(split.train[::3])}
    result = {
        name: accuracy_by_form(pipe, chosen, seeds=range(args.eval_seeds), **SAMPLER)
        for name, chosen in prompts.items()
    }
    seconds = time.time() - tic
    for name, acc in result.items():
        log(f"eval {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()))
    log(f"eval: {seconds:.0f}s")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    log = Log(args.work / "train.log")
    log(f"start: {' '.join(sys.argv)}")
    if not args.eval_only:
        torch.manual_seed(args.seed)
        if args.init_from is not None and args.unet_steps == 0:
            stage1 = args.init_from  # only the finishing stage, on an exported base
        else:
            data = make_data(args, log)
            vae = train_vae(args, data, log)
            latents = cache_latents(args, data, vae, log)
            tokenizer, unet, text_encoder = train_unet(args, data, vae, latents, log)
            stage1 = args.work / "stage1" if any(args.finish_steps) else args.out
            export(stage1, vae, tokenizer, unet, text_encoder, log)
        if any(args.finish_steps):
            export_finished(finish(args, stage1, log), stage1, args.out, log)
    result = evaluate(args, log)
    meta_path = args.out / "shapes_world.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta.update(
        {
            "description": "shapes-world base model, reproduced by scripts/train_shapes_base.py",
            "seed": args.seed,
            "image_size": 32,
            "sampler": {"scheduler": "DDIM", **SAMPLER},
            "accuracy": result,
            "eval_samples_per_prompt": args.eval_seeds,
        }
    )
    if not args.eval_only:
        seconds = read_seconds(args.work)  # summed over resumed runs
        finished = {"steps": args.finish_steps, "layouts": args.finish_layouts, "lr": args.finish_lr,
                    "batch": args.finish_batch, "forms": args.finish_forms, "seconds": seconds.pop("finish", 0)}
        if args.init_from is not None and args.unet_steps == 0:  # stages 1-5 were an earlier run's
            earlier = args.init_from / "shapes_world.json"
            training = json.loads(earlier.read_text()).get("training", {}) if earlier.exists() else {}
            training["finish"] = finished
        else:
            training = {
                "seconds": {**seconds, "total": sum(seconds.values())},
                "threads": args.threads,
                "vae_steps": args.vae_steps,
                "vae_horizon": args.vae_horizon,
                "unet_horizon": args.unet_horizon,
                "unet_steps": args.unet_steps,
                "batch": args.batch,
                "dataset": args.dataset,
                "lr": args.lr,
                "ema": args.ema,
                "init_from": None if args.init_from is None else str(args.init_from),
                "renders_per_prompt": args.renders_per_prompt,
                "freeze_text_encoder": args.freeze_text_encoder,
                "constant_lr": args.constant_lr,
                "finish": finished,
            }
        meta["training"] = training
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    log(f"done: {meta_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
