"""`pipeline: text_to_image_pairs`: on-policy image preference pairs from any diffusers text-to-image model.

Samples N images per prompt from the model being aligned, scores them with a registered reward model,
pairs and filters them on the scores, and writes a dataset `mmpref train` reads as it is (the generic
`prompt`/`chosen`/`rejected` schema, PNG bytes). With pairing.strategy: unpaired it writes every scored
sample once, labelled by pairing.threshold (the `single` schema: `prompt`/`image`/`label`) for unpaired
objectives such as KTO. Resumable, and splittable over processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from mmpref.config import REQUIRED, Component, component, to_plain
from mmpref.pipelines.engine import Job, run_generation
from mmpref.pipelines.filters import FiltersConfig
from mmpref.pipelines.image_sampler import DiffusersImageSampler, ImageModelConfig, ImageSamplingConfig
from mmpref.pipelines.lora import model_fingerprint
from mmpref.pipelines.pairing import PairingConfig, pairing_fingerprint
from mmpref.pipelines.prompts import PromptsConfig
from mmpref.pipelines.settings import OutputConfig, RuntimeConfig
from mmpref.registry import PIPELINES

NAME = "text_to_image_pairs"


@dataclass
class TextToImagePairsConfig:
    model: ImageModelConfig = REQUIRED  # type: ignore[assignment]
    prompts: PromptsConfig = REQUIRED  # type: ignore[assignment]
    sampling: ImageSamplingConfig = field(default_factory=ImageSamplingConfig)
    scorer: Component = component("reward_models")  # one scorer, or a composite scorer of several
    pairing: PairingConfig = field(default_factory=PairingConfig)
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    output: OutputConfig = REQUIRED  # type: ignore[assignment]
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def check(self) -> None:
        if getattr(self.scorer.params, "standardize", None) == "running":
            raise ValueError("scorer.standardize: running statistics make a score depend on what was scored "
                             "before it, so resumed and multi-process runs would differ; use standardize: fixed "
                             "(mean and std per member) or none.")
        if self.pairing.unpaired:
            self.pairing.check_unpaired()
            self.filters.check_unpaired()


def _open_scorer(config: TextToImagePairsConfig, device: torch.device) -> Any:
    from mmpref.reward_models.build import resolve_dtype

    return config.scorer.build(device=device, dtype=resolve_dtype(config.runtime.scorer_dtype))


def make_job(config: TextToImagePairsConfig) -> Job:
    """Describe the run to the modality-agnostic engine (module-level, so worker processes can rebuild it)."""
    prompts = to_plain(config.prompts)
    content = {
        "model": model_fingerprint(config.model),
        "sampling": to_plain(config.sampling),
        "scorer": to_plain(config.scorer),
        "pairing": pairing_fingerprint(config.pairing),
        "filters": to_plain(config.filters),
        "prompt_options": {k: prompts[k] for k in ("column", "split", "limit", "dedup", "transform")},
        "prompts_per_shard": config.output.prompts_per_shard,
    }
    return Job(
        pipeline=NAME,
        prompts=config.prompts,
        samples_per_prompt=config.sampling.samples_per_prompt,
        seed=config.sampling.seed,
        pairing=config.pairing,
        filters=config.filters,
        output=config.output,
        runtime=config.runtime,
        content=content,
        config={"pipeline": NAME, **to_plain(config)},
        open_sampler=lambda device: DiffusersImageSampler(config.model, config.sampling, device),
        open_scorer=lambda device: _open_scorer(config, device),
        plugin_modules=(config.scorer.entry().obj.__module__,),
    )


@PIPELINES.register(NAME, summary="sample a diffusers text-to-image model, score, pair and filter into a "
                    "preference dataset, or label every sample (resumable, multi-process)", params=TextToImagePairsConfig)
def run(config: TextToImagePairsConfig) -> dict[str, Any]:
    """Run the pipeline; returns the summary that is also written to OUTPUT_DIR/summary.json."""
    return run_generation(make_job, config)
