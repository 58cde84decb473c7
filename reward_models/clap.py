"""CLAP (Wu et al. 2023) text-audio similarity through transformers' ClapModel, for text-to-audio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mmpref.registry import REWARD_MODELS

from .audio import resample, to_mono
from .base import Scorer, ScorerParams
from .clip_hf import pooled
from .weights import model_and_processor


@dataclass
class ClapParams(ScorerParams):
    weights: str = "laion/clap-htsat-unfused"
    sample_rate: int = 16000  # rate of bare waveforms (Tango / AudioLDM output); (array, rate) pairs carry their own
    scaled: bool = True  # logit_scale_a.exp() * cos (the model's audio logits); False: raw cosine
    seed: int = 0  # the feature extractor crops clips longer than its window at random: fix that choice


class ClapScorer(Scorer):
    """CLAP score = logit_scale_a.exp() x cosine(audio, prompt) (`scaled: false` gives the raw cosine).

    Scale: the released models have logit_scale_a.exp() of about 33 so scaled scores sit around
    5-20; the raw cosine is what Tango 2 reports (0.57 for Tango 2 vs 0.54 for Tango) and what
    Audio-Alpaca's thresholds (winner >= 0.45, gap 0.05-0.35) use. Waveforms are mono-mixed and
    resampled to the feature extractor's rate (48 kHz) with a windowed-sinc filter.
    """

    name = "clap"
    modality = "audio"
    differentiable = False
    scale = "logit_scale_a.exp() * cos (~5-20); raw cos ~0.3-0.6 with scaled=false"

    def __init__(self, model: Any, processor: Any, *, sample_rate: int = 16000, scaled: bool = True,
                 seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = self._freeze(model)
        self.feature_extractor = processor.feature_extractor
        self.tokenizer = processor.tokenizer
        self.sample_rate = int(sample_rate)
        self.scaled = scaled
        self.seed = seed

    def _features(self, sample: Any) -> dict[str, torch.Tensor]:
        waveform, rate = sample if isinstance(sample, tuple) else (sample, self.sample_rate)
        target = int(self.feature_extractor.sampling_rate)
        wave = resample(to_mono(waveform), int(rate), target)
        state = np.random.get_state()
        np.random.seed(self.seed)  # same crop for a clip whatever batch it arrives in
        try:
            return self.feature_extractor(wave, sampling_rate=target, return_tensors="pt")
        finally:
            np.random.set_state(state)

    def _score_batch(self, samples: list[Any], prompts: list[str]) -> torch.Tensor:
        feats = [self._features(s) for s in samples]
        audio = {key: torch.cat([f[key] for f in feats]).to(self.device) for key in feats[0]}
        audio["input_features"] = audio["input_features"].to(self.dtype)
        audio_embeds = F.normalize(pooled(self.model.get_audio_features(**audio)).float(), dim=-1)
        unique = list(dict.fromkeys(prompts))
        tokens = self.tokenizer(unique, padding=True, truncation=True, return_tensors="pt").to(self.device)
        text = F.normalize(pooled(self.model.get_text_features(input_ids=tokens["input_ids"],
                                                               attention_mask=tokens["attention_mask"])).float(), dim=-1)
        text = text[torch.tensor([unique.index(p) for p in prompts], device=text.device)]
        cosine = (audio_embeds * text).sum(-1)
        return self.model.logit_scale_a.float().exp() * cosine if self.scaled else cosine


@REWARD_MODELS.register("clap", summary="CLAP text-audio score: logit_scale_a.exp()*cos (or raw cos)",
                        params=ClapParams)
def build(params: ClapParams, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> ClapScorer:
    from transformers import ClapModel

    model, processor = model_and_processor(ClapModel, params.weights, scorer="clap")
    return ClapScorer(model, processor, sample_rate=params.sample_rate, scaled=params.scaled, seed=params.seed,
                      device=device, dtype=dtype, batch_size=params.batch_size)
