"""`mmpref env`: versions, devices and optional extras, for bug reports and setup checks."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import platform

CORE = ["torch", "diffusers", "transformers", "accelerate", "peft", "datasets", "open_clip_torch", "safetensors"]
EXTRAS = {
    "tensorboard": "TensorBoard logging",
    "wandb": "Weights & Biases logging",
    "xformers": "memory-efficient attention",
    "bitsandbytes": "8-bit Adam",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("env", help="show versions, devices and optional extras")


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def run(args: argparse.Namespace) -> int:
    import torch

    from mmpref import __version__
    from mmpref.machine import describe_machine

    print(f"mmpref {__version__}, Python {platform.python_version()} on {platform.platform()}")
    print("core packages:")
    for dist in CORE:
        print(f"  {dist:16s} {_version(dist) or 'MISSING (reinstall mmpref)'}")
    print("devices:")
    machine = describe_machine()
    print(f"  cpu              {machine['cpu']}, {machine['cores']} cores usable, torch kernels "
          f"{machine['cpu_capability']}, {torch.get_num_threads()} torch threads")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            bf16 = "bf16" if torch.cuda.is_bf16_supported() else "fp16 only"
            print(f"  cuda:{i}           {props.name}, {props.total_memory / 2**30:.0f} GiB, {bf16}")
        print(f"  CUDA runtime     {torch.version.cuda}")
    else:
        print("  cuda             not available (training runs on the CPU)")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        print("  mps              available")
    print("optional extras:")
    for dist, what in EXTRAS.items():
        version = _version(dist)
        state = version if version else f"not installed (pip install {dist})"
        print(f"  {dist:16s} {state}  - {what}")
    return 0
