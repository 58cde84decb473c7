"""`model.adapter: text_to_image`: Stable Diffusion 1.x / 2.x and SDXL through stock diffusers classes.

Loads a diffusers pipeline directory (or hub id) component by component with `from_pretrained`
(safetensors only), follows the scheduler's prediction type (epsilon or v-prediction), encodes prompts
with the pipeline's own `encode_prompt` (SDXL: both encoders' penultimate states, pooled embedding of the
second) and gives SDXL its `add_time_ids` per image, as diffusers' SDXL training does.

Log-likelihoods follow the ½-factor convention of `mmpref.adapters.diffusion` (`logp_scale: 0.5`):
`objective: {name: dpo, beta: 5000}` is the published Diffusion-DPO SDXL loss.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from mmpref.adapters.base import Encoded
from mmpref.adapters.diffusion import DiffusionAdapter, lora_metadata, move_and_cast, weight_files_signature
from mmpref.adapters.prediction import check_timestep_range
from mmpref.config import REQUIRED
from mmpref.data.images import image_problem, open_image, paired_crop_flip
from mmpref.errors import UserError
from mmpref.registry import ADAPTERS


@dataclass
class TextToImageParams:
    pretrained: str = REQUIRED  # diffusers pipeline directory or hub id: SD 1.x, SD 2.x, SDXL
    revision: str | None = None  # hub revision (branch, tag or commit)
    variant: str | None = None  # weight file variant to load, e.g. fp16
    vae: str | None = None  # another VAE (directory or hub id), e.g. madebyollin/sdxl-vae-fp16-fix for fp16 SDXL
    resolution: int = 512  # training resolution (square); SD1.5 512, SD2.x 768, SDXL 1024
    random_crop: bool = False  # random square crop (same for both images of a pair); center crop when false
    random_flip: bool = True  # horizontal flip with p = 0.5 (same for both images of a pair)
    logp_scale: float = 0.5  # logp = −scale·MSE; 0.5 is the paper's ½-factor convention (beta 5000 SDXL, 2000 SD1.5)
    prediction_type: Literal["auto", "epsilon", "v_prediction"] = "auto"  # auto: the scheduler config's
    vae_dtype: Literal["auto", "float32", "weight"] = "auto"  # auto: float32 for SDXL's VAE unless `vae` is set
    timestep_range: list[float] = field(default_factory=lambda: [0.0, 1.0])  # training t drawn in [low·T, high·T)

    def check(self) -> None:
        if self.resolution < 8 or self.resolution % 8:
            raise ValueError(f"resolution must be a positive multiple of 8, got {self.resolution}")
        if not self.logp_scale > 0:
            raise ValueError(f"logp_scale must be > 0, got {self.logp_scale}")
        check_timestep_range(self.timestep_range)


def prepare_images(values: Sequence[Any], rng: Any, *, resolution: int, random_crop: bool,
                   random_flip: bool) -> dict[str, torch.Tensor]:
    """Decode the images of one row and give them one shared crop/flip: pixel values and SDXL time ids."""
    pixels, time_ids = paired_crop_flip([open_image(v) for v in values], resolution, rng, random_crop, random_flip)
    return {"pixel_values": pixels, "time_ids": time_ids}


class TextToImageAdapter(DiffusionAdapter):
    """SD 1.x/2.x and SDXL: VAE latents, CLIP text conditioning, a UNet2DConditionModel denoiser."""

    media = "image"

    def __init__(self, params: TextToImageParams) -> None:
        self.params = params
        self.logp_scale = float(params.logp_scale)
        self.is_xl = False
        self.unet: Any = None
        self.pipeline: Any = None
        self.device = torch.device("cpu")
        self.weight_dtype = torch.float32

    # ---- loading -------------------------------------------------------------------------------
    def _from_pretrained(self, cls: Any, subfolder: str | None, source: str | None = None, weights: bool = True,
                         **kw: Any) -> Any:
        """`cls.from_pretrained` with safetensors only, and one actionable line when it fails."""
        p = self.params
        source = source or p.pretrained
        args: dict[str, Any] = {"revision": p.revision, **kw}
        if weights:
            args["use_safetensors"] = True
            if p.variant and source == p.pretrained:
                args["variant"] = p.variant
        if subfolder:
            args["subfolder"] = subfolder
        try:
            return cls.from_pretrained(source, **args)
        except (OSError, ValueError) as err:
            where = f"{source}/{subfolder}" if subfolder else source
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(
                f"model.adapter.pretrained: cannot load {cls.__name__} from {where} ({first}). Give a diffusers "
                "pipeline directory or hub id with safetensors weights (mmpref never loads pickled .bin files); "
                "offline, download it first."
            ) from None

    def load(self, device: torch.device, weight_dtype: torch.dtype) -> None:
        import diffusers
        import transformers
        from diffusers import AutoencoderKL, DDPMScheduler, DiffusionPipeline, UNet2DConditionModel

        from mmpref.adapters.prediction import DiffusionProcess

        p = self.params
        try:
            index = DiffusionPipeline.load_config(p.pretrained, revision=p.revision)
        except (OSError, ValueError) as err:
            raise UserError(
                f"model.adapter.pretrained: '{p.pretrained}' is not a diffusers pipeline directory or reachable hub id "
                f"({str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__})."
            ) from None
        self.is_xl = bool(index.get("text_encoder_2") and index["text_encoder_2"][0])
        if not index.get("unet") or index["unet"][1] != "UNet2DConditionModel":
            raise UserError(
                f"model.adapter.pretrained: {p.pretrained} has no UNet2DConditionModel (found {index.get('unet')}); "
                "the text_to_image adapter covers Stable Diffusion 1.x/2.x and SDXL pipelines."
            )
        self.device, self.weight_dtype = torch.device(device), weight_dtype

        def text_part(name: str) -> tuple[Any, Any]:
            lib, cls_name = index[name]
            tok = self._from_pretrained(transformers.AutoTokenizer, name.replace("text_encoder", "tokenizer"),
                                        weights=False)
            enc = self._from_pretrained(getattr(transformers, cls_name), name)
            return tok, move_and_cast(enc.requires_grad_(False).eval(), device, weight_dtype)

        tokenizer, text_encoder = text_part("text_encoder")
        vae_dtype = {"float32": torch.float32, "weight": weight_dtype}.get(
            p.vae_dtype, torch.float32 if (self.is_xl and p.vae is None) else weight_dtype
        )
        vae = (self._from_pretrained(AutoencoderKL, None, source=p.vae) if p.vae
               else self._from_pretrained(AutoencoderKL, "vae"))
        self.vae = move_and_cast(vae.requires_grad_(False).eval(), device, vae_dtype)
        unet = self._from_pretrained(UNet2DConditionModel, "unet")
        self.unet = unet.to(device).train()
        noise_scheduler = self._from_pretrained(DDPMScheduler, "scheduler", weights=False)
        self.process = DiffusionProcess(noise_scheduler, p.prediction_type, tuple(p.timestep_range))
        sched_cls = getattr(diffusers, index["scheduler"][1])
        scheduler = self._from_pretrained(sched_cls, "scheduler", weights=False)
        if p.prediction_type != "auto":
            scheduler.register_to_config(prediction_type=p.prediction_type)
        components: dict[str, Any] = dict(vae=self.vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                          unet=self.unet, scheduler=scheduler)
        if self.is_xl:
            tokenizer_2, text_encoder_2 = text_part("text_encoder_2")
            components.update(text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2)
            self.pipeline = diffusers.StableDiffusionXLPipeline(**components)
        else:
            components.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
            self.pipeline = diffusers.StableDiffusionPipeline(**components)
        self.pipeline.set_progress_bar_config(disable=True)

    @property
    def trainable(self) -> torch.nn.Module:
        return self.unet

    # ---- data ----------------------------------------------------------------------------------
    @staticmethod
    def check_media(value: Any) -> str | None:
        return image_problem(value)

    def media_transform(self) -> Callable[[Sequence[Any], Any], dict[str, torch.Tensor]]:
        p = self.params
        return functools.partial(prepare_images, resolution=p.resolution, random_crop=p.random_crop,
                                 random_flip=p.random_flip)

    def cache_identity(self) -> dict[str, Any]:
        p = self.params
        identity: dict[str, Any] = {
            "adapter": "text_to_image", "pretrained": p.pretrained, "revision": p.revision, "variant": p.variant,
            "vae": p.vae, "resolution": p.resolution, "random_crop": p.random_crop, "random_flip": p.random_flip,
        }
        if os.path.isdir(p.pretrained):
            identity["pretrained"] = str(Path(p.pretrained).resolve())
            identity["files"] = weight_files_signature(p.pretrained, ["vae", "text_encoder", "text_encoder_2"])
        if p.vae and os.path.isdir(p.vae):
            identity["vae_files"] = weight_files_signature(p.vae, ["."])
        return identity

    # ---- encoding ------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Text conditioning per prompt, exactly as the pipeline computes it at inference."""
        if self.is_xl:
            embeds, _, pooled, _ = self.pipeline.encode_prompt(
                list(prompts), device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=False
            )
            return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}
        embeds, _ = self.pipeline.encode_prompt(
            list(prompts), device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
        return {"prompt_embeds": embeds}

    @torch.no_grad()
    def encode_pixels(self, pixels: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """VAE latents (a posterior sample, as the reference implementations take), scaled, in float32."""
        vae = self.vae
        dist = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist
        latents = dist.sample(generator=generator).float()
        shift = getattr(vae.config, "shift_factor", None)
        if shift is not None:
            latents = latents - shift
        return latents * vae.config.scaling_factor

    def encode_for_cache(self, batch: dict[str, Any], generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        pixels = batch["pixel_values"]  # [B, G, 3, H, W]
        b, g = pixels.shape[:2]
        latents = self.encode_pixels(pixels.flatten(0, 1), generator)
        out = {"latents": latents.view(b, g, *latents.shape[1:])}
        out.update(self.encode_prompts(batch["prompt"]))
        out["time_ids"] = batch["time_ids"]
        return {k: v.detach().cpu() for k, v in out.items()}

    def encode(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Encoded:
        if "latents" in batch:
            latents = batch["latents"].to(self.device, torch.float32)
        else:
            pixels = batch["pixel_values"]
            b0, g0 = pixels.shape[:2]
            flat = self.encode_pixels(pixels.flatten(0, 1), generator)
            latents = flat.view(b0, g0, *flat.shape[1:])
        b, g = latents.shape[:2]
        samples = latents.transpose(0, 1).reshape(g * b, *latents.shape[2:])
        text = ({k: batch[k] for k in ("prompt_embeds", "pooled_prompt_embeds") if k in batch}
                if "prompt_embeds" in batch else self.encode_prompts(batch["prompt"]))
        cond = {k: v.to(self.device, self.weight_dtype).repeat(g, *([1] * (v.ndim - 1))) for k, v in text.items()}
        if self.is_xl:
            cond["time_ids"] = batch["time_ids"].to(self.device).transpose(0, 1).reshape(g * b, -1).to(self.weight_dtype)
        return Encoded(samples=samples, cond=cond, group_size=g)

    def denoise(self, module: Callable[..., Any], noisy: torch.Tensor, timesteps: torch.Tensor,
                cond: dict[str, torch.Tensor]) -> torch.Tensor:
        kwargs: dict[str, Any] = {"encoder_hidden_states": cond["prompt_embeds"]}
        if self.is_xl:
            kwargs["added_cond_kwargs"] = {"text_embeds": cond["pooled_prompt_embeds"], "time_ids": cond["time_ids"]}
        return module(noisy, timesteps, return_dict=False, **kwargs)[0]

    # ---- sampling and outputs -------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, prompts: Sequence[str], seeds: Sequence[int], steps: int = 25,
               guidance_scale: float = 7.5, resolution: int | None = None, **_: Any) -> list[Any]:
        """Images for every (prompt, seed), prompt-major, with the UNet's current (LoRA-active) weights."""
        size = resolution or self.params.resolution
        images = []
        with self.sampling_mode():
            for prompt in prompts:
                generators = [torch.Generator(self.device).manual_seed(int(s)) for s in seeds]
                out = self.pipeline(
                    [prompt] * len(seeds), num_inference_steps=steps, guidance_scale=guidance_scale,
                    height=size, width=size, generator=generators,
                )
                images.extend(out.images)
        return images

    def pipeline_class(self) -> Any:
        import diffusers

        return diffusers.StableDiffusionXLPipeline if self.is_xl else diffusers.StableDiffusionPipeline

    def save_lora(self, output_dir: Path, lora_state_dict: dict[str, torch.Tensor], lora_config: dict[str, Any]) -> Path:
        """`pytorch_lora_weights.safetensors` that `load_lora_weights` reads, with the LoRA config as metadata.

        Keys keep peft's `lora_A/lora_B` names: diffusers' `convert_state_dict_to_diffusers` renames only
        attention layers (to `lora.down/up`), and a file mixing both namings loads with its attention
        layers silently dropped once targets go beyond attention (`proj_in`, `ff.net.*`).
        """
        layers = {k: v.detach().float().cpu() for k, v in lora_state_dict.items()}
        metadata = lora_metadata(lora_config)
        self.pipeline_class().save_lora_weights(
            str(output_dir), unet_lora_layers=layers, unet_lora_adapter_metadata=metadata
        )
        return Path(output_dir) / "pytorch_lora_weights.safetensors"

    def save_full(self, output_dir: Path, module: torch.nn.Module) -> Path:
        """A complete pipeline directory: the trained UNet plus the original components, freshly loaded."""
        from diffusers import AutoencoderKL

        extra: dict[str, Any] = {"unet": module}
        if self.params.vae:
            extra["vae"] = self._from_pretrained(AutoencoderKL, None, source=self.params.vae)
        pipe = self._from_pretrained(self.pipeline_class(), None, **extra)
        pipe.save_pretrained(str(output_dir), safe_serialization=True)
        return Path(output_dir)


@ADAPTERS.register(
    "text_to_image",
    summary="Stable Diffusion 1.x/2.x and SDXL (diffusers): Diffusion-DPO and any objective on image pairs",
    params=TextToImageParams,
)
def build_text_to_image(params: TextToImageParams) -> TextToImageAdapter:
    """Nothing heavy happens here; the trainer calls `load` when it runs (so --dry-run stays instant)."""
    return TextToImageAdapter(params)
