"""Diffusion-DPO step time over bare compute, and LoRA reference memory, side by side in one run.

Prints, on one SD-architecture UNet (random weights built from config dicts, no downloads):

1. mmpref's Diffusion-DPO step time (the real trainer: data loader, objective, logging, optimizer step,
   NaN guard) with cached latents, over the bare compute of the same batch (policy forward + backward
   and reference forward, nothing else). Goal <= 1.10.
2. the same with on-the-fly VAE and text encoding (what the reference implementations do every step).
3. peak memory of LoRA with the adapter-disabled reference (mmpref) over LoRA with a separate frozen
   reference copy, each measured in its own subprocess (CUDA: max_memory_allocated; CPU: the process's
   resident-set high-water mark over the training steps, weights included, also shown net of the
   baseline after imports). Goal <= 0.6.

Presets: `small` (SD1.5 block layout at 1/10 width, 256 px: a CPU-sized stand-in), `sd15` and `sdxl`
(the published UNet, VAE and text-encoder configs: the same compute as the released models).

    python benchmarks/bench_diffusion_dpo.py                                # small on CPU, memory with sd15 at 128 px
    python benchmarks/bench_diffusion_dpo.py --model sdxl --device cuda --dtype bf16 --batch 4
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

SD_DOWN = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
SD_UP = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]

# Published configs (diffusers-format config.json of the released checkpoints), as dicts.
UNETS: dict[str, dict[str, Any]] = {
    "sd15": dict(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=[320, 640, 1280, 1280],
        down_block_types=SD_DOWN, up_block_types=SD_UP, cross_attention_dim=768, attention_head_dim=8,
        norm_num_groups=32, norm_eps=1e-5, flip_sin_to_cos=True, freq_shift=0, downsample_padding=1, act_fn="silu",
    ),
    "sdxl": dict(
        sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=[320, 640, 1280],
        down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], cross_attention_dim=2048,
        attention_head_dim=[5, 10, 20], transformer_layers_per_block=[1, 2, 10], use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
        norm_num_groups=32, flip_sin_to_cos=True, freq_shift=0, act_fn="silu",
    ),
    "small": dict(
        sample_size=32, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=[32, 64, 128, 128],
        down_block_types=SD_DOWN, up_block_types=SD_UP, cross_attention_dim=128, attention_head_dim=8,
        norm_num_groups=32, flip_sin_to_cos=True, freq_shift=0, act_fn="silu",
    ),
}
VAES: dict[str, dict[str, Any]] = {
    "sd": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=32,
               block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
               up_block_types=["UpDecoderBlock2D"] * 4, scaling_factor=0.18215),
    "small": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=32,
                  block_out_channels=[32, 64, 128, 128], down_block_types=["DownEncoderBlock2D"] * 4,
                  up_block_types=["UpDecoderBlock2D"] * 4, scaling_factor=0.18215),
}
TEXT: dict[str, dict[str, Any]] = {
    "clip_l": dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                   max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768),
    "clip_bigg": dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                      num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu", projection_dim=1280),
    "small": dict(vocab_size=49408, hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                  max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=128),
}
RESOLUTION = {"small": 256, "sd15": 512, "sdxl": 1024}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("small", "sd15", "sdxl"), default="small", help="architecture for (1) and (2)")
    p.add_argument("--resolution", type=int, default=0, help="image size (default: 256 small, 512 sd15, 1024 sdxl)")
    p.add_argument("--batch", type=int, default=2, help="pairs per step (default 2)")
    p.add_argument("--steps", type=int, default=8, help="timed steps (default 8)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32", help="mixed precision on CUDA")
    p.add_argument("--memory-model", choices=("small", "sd15", "sdxl"), default=None,
                   help="architecture for (3) (default: sd15 on CPU, else --model)")
    p.add_argument("--memory-resolution", type=int, default=0, help="image size for (3) (default 128 on CPU, else --resolution)")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--memory-only", action="store_true", help="only (3), the memory comparison")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: process CPU time then measures compute exactly)")
    p.add_argument("--memory-worker", choices=("disabled", "copy"), help=argparse.SUPPRESS)
    p.add_argument("--memory-checkpointing", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args()


def device_of(args: argparse.Namespace) -> str:
    if args.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return args.device


def mixed(args: argparse.Namespace) -> str:
    return {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[args.dtype]


def build_unet(model: str) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**UNETS[model])


def build_pipeline(model: str, folder: Path) -> Path:
    """A complete pipeline directory with random weights (UNet, VAE, text encoders from the published configs)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from mmpref.testing.tiny import write_tiny_clip_tokenizer

    torch.manual_seed(0)
    tokenizer = write_tiny_clip_tokenizer(folder / "_tok", max_length=77)
    ids = dict(bos_token_id=len(tokenizer) - 2, eos_token_id=len(tokenizer) - 1, pad_token_id=len(tokenizer) - 1)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    vae = AutoencoderKL(**VAES["small" if model == "small" else "sd"])
    unet = build_unet(model)
    if model == "sdxl":
        te1 = CLIPTextModel(CLIPTextConfig(**TEXT["clip_l"], **ids))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig(**TEXT["clip_bigg"], **ids))
        vae.register_to_config(scaling_factor=0.13025)
        pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tokenizer,
                                         tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    else:
        te = CLIPTextModel(CLIPTextConfig(**TEXT["small" if model == "small" else "clip_l"], **ids))
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                       safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder


def write_config(folder: Path, pipe: Path, data: Path, args: argparse.Namespace, cache: bool, name: str) -> Path:
    path = folder / f"{name}.yaml"
    res = args.resolution or RESOLUTION[args.model]
    path.write_text(f"""method: preference
model:
  adapter: {{name: text_to_image, pretrained: {pipe}, resolution: {res}, random_flip: false}}
  finetune: lora
  lora: {{rank: 8}}
objective: {{name: dpo, beta: 5000}}
data: {{source: {data}, num_workers: 0, cache: {{enabled: {str(cache).lower()}, dir: {folder / 'cache'}}}}}
training: {{max_steps: {args.warmup + args.steps}, batch_size: {args.batch}, log_every: 1, checkpoint_every: 0,
           mixed_precision: "{mixed(args)}", device: {'cpu' if device_of(args) == 'cpu' else 'auto'}}}
optimizer: {{lr: 1.0e-5, scheduler: constant}}
logging: {{trackers: [], progress_bar: false}}
output_dir: {folder / name}
""")
    return path


def clock(device: str) -> float:
    """Seconds to compare: process CPU time on CPU (robust when other jobs share the cores), wall time on CUDA."""
    if device == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time()


def mmpref_step_times(config: Path, device: str) -> tuple[list[float], Any]:
    """Per-step times of the real trainer loop (everything between two optimiser steps), and the trainer."""
    from mmpref.config import load_config
    from mmpref.training.trainer import PreferenceTrainer

    stamps: list[float] = []

    class TimedTrainer(PreferenceTrainer):
        def _after_step(self, metrics: Any, bar: Any) -> None:
            super()._after_step(metrics, bar)
            stamps.append(clock(device))

    trainer = TimedTrainer(load_config(str(config)).config, progress=False).setup()
    stamps.append(clock(device))
    trainer.fit()
    return [b - a for a, b in zip(stamps, stamps[1:])], trainer


def bare_step_times(trainer: Any, batch: dict[str, Any], n: int, warmup: int, device: str) -> list[float]:
    """Policy forward + backward and reference forward (adapters disabled) on one encoded batch; nothing else."""
    acc, adapter, model = trainer.accelerator, trainer.adapter, trainer.peft_model
    g = torch.Generator(acc.device).manual_seed(0)
    encoded = adapter.encode(batch, g)
    draw = adapter.draw(encoded, g)
    noisy = adapter.process.add_noise(encoded.samples, draw.noise, draw.timesteps)
    target = adapter.process.target(encoded.samples, draw.noise, draw.timesteps)
    times = []
    for i in range(warmup + n):
        start = clock(device)
        with torch.no_grad(), model.disable_adapter(), acc.autocast():
            adapter.denoise(model, noisy, draw.timesteps, encoded.cond)
        with acc.autocast():
            pred = adapter.denoise(model, noisy, draw.timesteps, encoded.cond)
        ((pred.float() - target.float()) ** 2).mean().backward()
        model.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(clock(device) - start)
    return times


def _rss_mb(field: str = "VmRSS") -> float:
    """Current (VmRSS) or peak (VmHWM) resident set from /proc; ru_maxrss where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> None:
    """Linux: reset the high-water mark to the current RSS, so model construction transients are not counted."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_worker(args: argparse.Namespace) -> None:
    """One training-step loop of LoRA with the given reference; prints peak memory as JSON."""
    from mmpref.training.config import LoraSettings
    from mmpref.training.models import Reference, apply_lora

    device = device_of(args)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    model = args.memory_model
    res = args.memory_resolution
    baseline_rss = _rss_mb()
    unet = build_unet(model).to(device)
    if args.memory_checkpointing:
        unet.enable_gradient_checkpointing()
    reference = Reference.frozen_copy(unet, dtype) if args.memory_worker == "copy" else None
    peft = apply_lora(unet, LoraSettings(rank=8), ("to_q", "to_k", "to_v", "to_out.0"), dtype)
    if reference is None:
        reference = Reference(peft_model=peft)
    optimizer = torch.optim.AdamW([p for p in peft.parameters() if p.requires_grad], lr=1e-5)
    n, lat = 2 * args.batch, res // 8
    cfg = UNETS[model]
    x = torch.randn(n, 4, lat, lat, device=device)
    t = torch.randint(0, 1000, (n,), device=device)
    text = torch.randn(n, 77, cfg["cross_attention_dim"], device=device)
    extra = {}
    if model == "sdxl":
        extra = {"added_cond_kwargs": {"text_embeds": torch.randn(n, 1280, device=device),
                                       "time_ids": torch.tensor([[res, res, 0, 0, res, res]] * n, device=device).float()}}
    autocast = torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _reset_peak_rss()
    for _ in range(2):
        with torch.no_grad(), reference() as ref, autocast:
            ref(x, t, encoder_hidden_states=text, **extra)
        with autocast:
            pred = peft(x, t, encoder_hidden_states=text, **extra).sample
        ((pred.float() - x) ** 2).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    out = {"peak_rss_mb": _rss_mb("VmHWM"), "baseline_rss_mb": baseline_rss}
    if device == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(out))


def measure_memory(args: argparse.Namespace, kind: str, checkpointing: bool) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--memory-worker", kind, "--memory-model", args.memory_model,
           "--memory-resolution", str(args.memory_resolution), "--batch", str(args.batch), "--device", device_of(args),
           "--dtype", args.dtype] + (["--memory-checkpointing"] if checkpointing else [])
    env = {**os.environ}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"memory worker '{kind}' failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> None:
    args = parse_args()
    if args.threads and device_of(args) == "cpu":
        torch.set_num_threads(args.threads)
    device = device_of(args)
    if args.memory_model is None:
        args.memory_model = "sd15" if device == "cpu" else args.model
    if not args.memory_resolution:
        args.memory_resolution = 128 if device == "cpu" else (args.resolution or RESOLUTION[args.memory_model])
    if args.memory_worker:
        peak_memory_worker(args)
        return

    if not args.memory_only:
        time_steps(args, device)
    if not args.skip_memory:
        compare_memory(args)


def time_steps(args: argparse.Namespace, device: str) -> None:
    """(1) and (2): mmpref's step time with cached and on-the-fly encoding over the bare compute."""
    from mmpref.machine import describe_machine, machine_line
    from mmpref.testing.data import write_pickapic_parquet

    res = args.resolution or RESOLUTION[args.model]
    rows = (args.warmup + args.steps + 1) * args.batch
    print(f"# machine: {machine_line(describe_machine())}")
    print(f"# device {device}, mixed precision {mixed(args)}, torch threads {torch.get_num_threads()}, "
          f"model {args.model} at {res}px, {args.batch} pairs/step, {args.steps} timed steps after {args.warmup}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        pipe = build_pipeline(args.model, folder / "pipe")
        data = write_pickapic_parquet(folder / "pairs.parquet", n=rows, size=(res, res))
        print(f"# built pipeline and {rows} pairs in {time.perf_counter() - start:.0f}s")

        cached, trainer = mmpref_step_times(write_config(folder, pipe, data, args, cache=True, name="cached"), device)
        batch = next(iter(trainer.loader))
        bare_a = bare_step_times(trainer, batch, args.steps, args.warmup, device)
        del trainer
        on_the_fly, trainer = mmpref_step_times(write_config(folder, pipe, data, args, cache=False, name="fly"), device)
        bare_b = bare_step_times(trainer, next(iter(trainer.loader)), args.steps, args.warmup, device)
        del trainer

    timed = lambda xs: statistics.median(xs[args.warmup:])  # noqa: E731 - drop warm-up steps
    bare = statistics.median(bare_a + bare_b)
    step_cached, step_fly = timed(cached), timed(on_the_fly)
    unit = "wall s" if device == "cuda" else "CPU s"
    print(f"# times are {unit} per step (CPU: process time, which other jobs on the cores do not inflate)")
    print(f"bare compute (policy fwd+bwd + reference fwd): {bare:.3f} s/step "
          f"(medians of two runs: {statistics.median(bare_a):.3f}, {statistics.median(bare_b):.3f})")
    print(f"(1) mmpref DPO step, cached latents:      {step_cached:.3f} s/step  ratio {step_cached / bare:.3f}  "
          f"(goal <= 1.10)  {args.batch / step_cached:.2f} pairs/s")
    print(f"(2) mmpref DPO step, on-the-fly encoding: {step_fly:.3f} s/step  ratio {step_fly / bare:.3f}  "
          f"{args.batch / step_fly:.2f} pairs/s")



def compare_memory(args: argparse.Namespace) -> None:
    """(3): peak memory of the adapter-disabled reference over a separate reference copy."""
    # Without and with gradient checkpointing (the reference SDXL DPO scripts train with it on): the
    # reference copy costs one UNet of weights either way; checkpointing shrinks what both share.
    for checkpointing in (False, True):
        disabled = measure_memory(args, "disabled", checkpointing)
        copy = measure_memory(args, "copy", checkpointing)
        what = (f"{args.memory_model} UNet at {args.memory_resolution}px, {args.batch} pairs, gradient "
                f"checkpointing {'on' if checkpointing else 'off'}")
        if "cuda_peak_mb" in disabled:
            ratio = disabled["cuda_peak_mb"] / copy["cuda_peak_mb"]
            print(f"(3) peak CUDA memory, LoRA ({what}): adapter-disabled reference {disabled['cuda_peak_mb']:.0f} "
                  f"MiB, separate reference copy {copy['cuda_peak_mb']:.0f} MiB, ratio {ratio:.3f} (goal <= 0.6)")
        else:
            ratio = disabled["peak_rss_mb"] / copy["peak_rss_mb"]
            net = ((disabled["peak_rss_mb"] - disabled["baseline_rss_mb"])
                   / (copy["peak_rss_mb"] - copy["baseline_rss_mb"]))
            print(f"(3) peak resident memory, LoRA ({what}): adapter-disabled reference "
                  f"{disabled['peak_rss_mb']:.0f} MiB, separate reference copy {copy['peak_rss_mb']:.0f} MiB, "
                  f"ratio {ratio:.3f} (goal <= 0.6); net of the {disabled['baseline_rss_mb']:.0f} MiB after "
                  f"imports: {net:.3f}")


if __name__ == "__main__":
    main()
