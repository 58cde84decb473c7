"""`mmpref generate` config options end to end on the tiny SD pipeline: scheduler swap, composite scorer,
all pairs above a margin, the winner-score filter, batching across prompts and the progress bar."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import test_generate_support as support
import torch

from mmpref.errors import ConfigError
from mmpref.pipelines.image_sampler import DiffusersImageSampler, ImageModelConfig, ImageSamplingConfig
from mmpref.pipelines.sampling import SampleRequest
from mmpref.pipelines.writer import decode_png

PROMPTS = ["a red cat", "a blue dog", "a green tree"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return support.build_model(tmp_path_factory.mktemp("tiny") / "sd")


def _midpoint(values: list[float], k: int) -> float:
    """A threshold strictly between the k-th and (k+1)-th smallest distinct values."""
    distinct = sorted(set(values))
    return (distinct[k] + distinct[k + 1]) / 2


def test_scheduler_composite_scorer_all_pairs_and_filters(model, tmp_path, monkeypatch):
    from mmpref.reward_models import build_scorer

    fragile = support.register_fragile_scorer(monkeypatch)
    composite = {"name": "composite", "standardize": "none",
                 "members": [{"name": "brightness", "weight": 1.0}, {"name": fragile, "weight": -0.5}]}
    base = support.config_dict(model, tmp_path / "all", prompts=PROMPTS, scorer=composite,
                               sampling={"samples_per_prompt": 4}, pairing={"strategy": "all_pairs"})
    base["model"]["scheduler"] = "EulerDiscreteScheduler"
    summary = support.run_config(base)
    rows = support.read_pairs(tmp_path / "all").to_list()
    assert summary["pairs"]["candidates"] == 3 * 6 == len(rows), "C(4, 2) pairs per prompt, none dropped"
    assert summary["scorer"] == f"composite(1*brightness + -0.5*{fragile})"

    bright, red = build_scorer("brightness"), build_scorer(fragile)
    for row in rows:
        assert row["scorer"] == summary["scorer"] and row["strategy"] == "all_pairs"
        for side in ("chosen", "rejected"):
            pixels = decode_png(row[side])
            expected = float(bright.score([pixels], [row["prompt"]])[0]) - 0.5 * float(red.score([pixels], [row["prompt"]])[0])
            assert row[f"{side}_score"] == pytest.approx(expected, abs=1e-6), "the composite's weighted sum"

    # The swapped-in scheduler is the one that made the images (the model ships DDIM).
    sampling = ImageSamplingConfig(**base["sampling"])
    euler = DiffusersImageSampler(ImageModelConfig(path=str(model), scheduler="EulerDiscreteScheduler"), sampling,
                                  torch.device("cpu"))
    ddim = DiffusersImageSampler(ImageModelConfig(path=str(model)), sampling, torch.device("cpu"))
    assert type(euler.pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    assert type(ddim.pipe.scheduler).__name__ == "DDIMScheduler"
    # The run's first batch (batch_size 4) is prompt row 0's four samples: the same call reproduces them exactly.
    from mmpref.pipelines.seeds import derive_seed

    batch = [SampleRequest(0, s, derive_seed(7, 0, s), PROMPTS[0], PROMPTS[0]) for s in range(4)]
    stored = {r[f"{side}_sample_index"]: decode_png(r[side]) for r in rows if r["prompt_index"] == 0
              for side in ("chosen", "rejected")}
    assert sorted(stored) == [0, 1, 2, 3]
    for s, (with_euler, with_ddim) in enumerate(zip(euler.sample(batch), ddim.sample(batch))):
        assert np.array_equal(with_euler.sample, stored[s]), "made with the configured scheduler"
        assert (with_ddim.sample != stored[s]).mean() > 0.05, "the model's own scheduler gives other pixels"
    with pytest.raises(ConfigError, match="Did you mean 'EulerDiscreteScheduler'"):
        DiffusersImageSampler(ImageModelConfig(path=str(model), scheduler="EulerDiscreteSchedular"), sampling,
                              torch.device("cpu"))

    # Same run with a margin and a winner-score filter: exactly the qualifying pairs stay, drops counted.
    min_margin = _midpoint([r["margin"] for r in rows], len(rows) // 3)
    above = [r for r in rows if r["margin"] >= min_margin]
    min_winner = _midpoint([r["chosen_score"] for r in above], 0)
    filtered = dict(base, output={**base["output"], "dir": str(tmp_path / "filtered")},
                    filters={"min_margin": min_margin, "min_winner_score": min_winner})
    summary = support.run_config(filtered)
    kept = support.read_pairs(tmp_path / "filtered").to_list()
    assert kept == [r for r in above if r["chosen_score"] >= min_winner]
    assert 0 < len(kept) < len(above) < len(rows)
    dropped = summary["pairs"]["dropped"]
    assert dropped["min_margin"] == len(rows) - len(above) and dropped["min_winner_score"] == len(above) - len(kept)
    assert summary["pairs"]["kept"] + sum(dropped.values()) == summary["pairs"]["candidates"] == len(rows)


class RecordingSampler:
    """The real sampler, remembering which (prompt, sample) went into each call."""

    def __init__(self, inner: DiffusersImageSampler) -> None:
        self.inner, self.modality, self.calls = inner, inner.modality, []

    def sample(self, requests):
        self.calls.append([(r.prompt_index, r.sample_index) for r in requests])
        return self.inner.sample(requests)


def test_samples_are_batched_across_prompts(model):
    from mmpref.pipelines.filters import FiltersConfig
    from mmpref.pipelines.pairing import PairingConfig
    from mmpref.pipelines.prompts import Prompt
    from mmpref.pipelines.worker import ShardWorker
    from mmpref.reward_models import build_scorer

    config = support.config_dict(model, Path("unused"))
    sampler = RecordingSampler(DiffusersImageSampler(ImageModelConfig(path=str(model)),
                                                     ImageSamplingConfig(**config["sampling"]), torch.device("cpu")))
    worker = ShardWorker(sampler, build_scorer("brightness"), samples_per_prompt=3, seed=7, batch_size=4,
                         pairing=PairingConfig(), filters=FiltersConfig())
    done: list[int] = []
    result = worker.run([Prompt(i, text) for i, text in enumerate(PROMPTS)], on_prompt_done=done.append)
    assert sampler.calls == [[(0, 0), (0, 1), (0, 2), (1, 0)], [(1, 1), (1, 2), (2, 0), (2, 1)], [(2, 2)]]
    assert done == [1, 1, 1] and len(result.samples) == 9 and len(result.rows) == 3


def test_progress_bar_shows_prompts_per_second_and_eta(model, tmp_path, capsys):
    config = support.config_dict(model, tmp_path / "out", runtime={"progress": True})
    capsys.readouterr()
    support.run_config(config)
    err = capsys.readouterr().err
    assert re.search(r"generate: +100%.*6/6 \[\d\d:\d\d<\d\d:\d\d, +\d+(\.\d+)?prompt/s", err), err[-500:]


def test_guidance_scale_reaches_the_pipeline(model):
    """The configured guidance scale is the one the images are made with: a stock pipeline call with the
    same seed and scale reproduces them, and another scale gives other pixels."""
    from diffusers import StableDiffusionPipeline

    from mmpref.pipelines.seeds import derive_seed

    request = [SampleRequest(0, 0, derive_seed(7, 0, 0), PROMPTS[0], PROMPTS[0])]
    made = {}
    for scale in (1.5, 6.0):
        sampling = ImageSamplingConfig(samples_per_prompt=2, steps=2, guidance_scale=scale, height=32, width=32)
        made[scale] = DiffusersImageSampler(ImageModelConfig(path=str(model)), sampling, torch.device("cpu")).sample(request)[0].sample
    stock = StableDiffusionPipeline.from_pretrained(str(model), safety_checker=None)
    stock.set_progress_bar_config(disable=True)
    image = stock(PROMPTS[0], num_inference_steps=2, guidance_scale=6.0, height=32, width=32, output_type="np",
                  generator=torch.Generator().manual_seed(request[0].seed)).images[0]
    assert np.abs(np.round(image * 255).astype(np.int16) - made[6.0].astype(np.int16)).max() <= 1
    assert (made[1.5] != made[6.0]).mean() > 0.05
