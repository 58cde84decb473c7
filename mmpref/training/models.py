"""Policy and reference: LoRA through peft (reference = adapters disabled), or a frozen copy for full fine-tuning.

With LoRA the base weights exist once; the reference pass runs the same module inside peft's
`disable_adapter()` context. Full fine-tuning keeps a frozen reference copy in the weight dtype and,
optionally, diffusers' `EMAModel` of the trained weights.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from mmpref.errors import UserError
from mmpref.training.config import EMASettings, LoraSettings


def lora_config(settings: LoraSettings, default_targets: tuple[str, ...]) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha if settings.alpha is not None else settings.rank,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules or default_targets),
        init_lora_weights="gaussian",
    )


def apply_lora(module: torch.nn.Module, settings: LoraSettings, default_targets: tuple[str, ...],
               weight_dtype: torch.dtype) -> Any:
    """Freeze `module` (cast to the weight dtype) and wrap it in a peft LoRA model with fp32 adapters."""
    from peft import get_peft_model

    module.requires_grad_(False)
    if next(module.parameters()).dtype != weight_dtype:
        module.to(dtype=weight_dtype)
    config = lora_config(settings, default_targets)
    try:
        model = get_peft_model(module, config)
    except ValueError as err:
        raise UserError(f"model.lora.target_modules: {err}".splitlines()[0]) from None
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    return model


class Reference:
    """Gives the reference module inside a context: the LoRA model with adapters off, or a frozen copy."""

    def __init__(self, module: torch.nn.Module | None = None, peft_model: Any = None) -> None:
        self.module, self.peft_model = module, peft_model

    @classmethod
    def frozen_copy(cls, module: torch.nn.Module, weight_dtype: torch.dtype) -> Reference:
        ref = copy.deepcopy(module).requires_grad_(False).eval().to(dtype=weight_dtype)
        return cls(module=ref)

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Any]:
        if self.peft_model is not None:
            with self.peft_model.disable_adapter():
                yield self.peft_model
        else:
            yield self.module


def make_ema(params: list[torch.nn.Parameter], settings: EMASettings) -> Any:
    """diffusers' EMAModel over the trained parameters; `finish` copies its averages into them before saving."""
    from diffusers.training_utils import EMAModel

    return EMAModel(params, decay=settings.decay, update_after_step=settings.update_after_step)


def save_ema(ema: Any, folder: Path) -> None:
    """EMA shadow weights as safetensors, its counters as JSON (no pickle)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = ema.state_dict()
    shadow = state.pop("shadow_params")
    save_file({f"{i:05d}": t.detach().contiguous().cpu() for i, t in enumerate(shadow)}, str(folder / "shadow.safetensors"))
    (folder / "ema.json").write_text(json.dumps(state))


def load_ema(ema: Any, folder: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(folder / "shadow.safetensors"))
    state = json.loads((folder / "ema.json").read_text())
    state["shadow_params"] = [tensors[k] for k in sorted(tensors)]
    device = ema.shadow_params[0].device if ema.shadow_params else "cpu"
    ema.load_state_dict(state)
    ema.to(device)
