"""Building scorers: parameter validation, offline and unsafe-weights errors, procedural scorers,
composites, and configs naming scorers through the generic validator."""

from __future__ import annotations

import math

import pytest
import torch
from rm_helpers import PROMPTS, smooth_images, to_pixels

from mmpref.errors import UserError
from mmpref.registry import REWARD_MODELS
from mmpref.reward_models import build_scorer, procedural_scorer, register_procedural

BUNDLED = {"pickscore", "hpsv2", "hpsv2.1", "clip_score", "aesthetic", "imagereward", "clap", "owlv2",
           "grounding_dino", "composite", "brightness"}


def test_every_scorer_is_registered_with_a_summary():
    assert BUNDLED <= set(REWARD_MODELS.names())
    for entry in REWARD_MODELS.entries():
        assert entry.summary and "\n" not in entry.summary


def test_unknown_names_and_keys_get_did_you_mean():
    with pytest.raises(UserError, match="Did you mean 'pickscore'"):
        build_scorer("pickscor")
    with pytest.raises(UserError, match="no parameter 'weigths'. Did you mean 'weights'"):
        build_scorer({"name": "pickscore", "weigths": "/x"})
    with pytest.raises(UserError, match="must be int"):
        build_scorer({"name": "pickscore", "batch_size": "many"})
    with pytest.raises(UserError, match="batch_size must be at least 1"):
        build_scorer({"name": "brightness", "batch_size": 0})
    with pytest.raises(UserError, match="one of 'count', 'presence'"):
        build_scorer({"name": "owlv2", "mode": "counts"})
    with pytest.raises(UserError, match="needs a 'name'"):
        build_scorer({"weights": "x"})


def test_offline_hub_errors_say_which_file_and_how_to_point_at_it(tmp_path):
    with pytest.raises(UserError) as info:  # tests run with HF_HUB_OFFLINE=1
        build_scorer("hpsv2.1")
    message = str(info.value)
    assert "HPS_v2.1_compressed.pt" in message and "xswu/HPSv2" in message and "--weights hpsv2.1=" in message
    assert "\n" not in message
    with pytest.raises(UserError, match="hf download yuvalkirstain/PickScore_v1"):
        build_scorer("pickscore")
    with pytest.raises(UserError, match="does not exist"):
        build_scorer({"name": "imagereward", "weights": str(tmp_path / "missing" / "ImageReward.pt")})
    with pytest.raises(UserError, match="directory without 'ImageReward.pt'"):
        build_scorer({"name": "imagereward", "weights": str(tmp_path)})


@pytest.mark.parametrize("name, names_what", [
    ("hpsv2", "HPS_v2_compressed.pt"),
    ("imagereward", "ImageReward.pt"),
    ("aesthetic", "sac+logos+ava1-l14-linearMSE.pth"),
    ("clip_score", "openai/clip-vit-large-patch14"),
    ("clap", "laion/clap-htsat-unfused"),
    ("owlv2", "google/owlv2-base-patch16-ensemble"),
    ("grounding_dino", "IDEA-Research/grounding-dino-tiny"),
])
def test_every_default_checkpoint_fails_offline_with_one_line_naming_it(tmp_path, monkeypatch, name, names_what):
    monkeypatch.setenv("MMPREF_CACHE", str(tmp_path))  # the aesthetic .pth is not cached there
    with pytest.raises(UserError) as info:
        build_scorer(name)
    message = str(info.value)
    assert names_what in message and "\n" not in message
    assert "--weights" in message or "weights:" in message  # and says where to point the scorer


def test_hpsv2_and_hpsv2_1_find_their_own_file_in_a_directory(tmp_path, hps_files):
    import shutil

    config, checkpoint = hps_files
    shutil.copy(checkpoint, tmp_path / "HPS_v2_compressed.pt")
    v2 = build_scorer({"name": "hpsv2", "weights": str(tmp_path), "model_config": config})
    assert v2.name == "hpsv2"
    with pytest.raises(UserError, match="without 'HPS_v2.1_compressed.pt'"):
        build_scorer({"name": "hpsv2.1", "weights": str(tmp_path), "model_config": config})


@pytest.mark.parametrize("key", ["pickscore", "hpsv2.1", "aesthetic", "imagereward"])
def test_dtype_from_the_config_reaches_the_model(image_specs, scorers, key):
    scorer = build_scorer(image_specs[key], dtype="bfloat16")
    modules = [m for m in vars(scorer).values() if isinstance(m, torch.nn.Module)]
    modules += [scorer.clip.model] if hasattr(scorer, "clip") else []
    assert modules and all(p.dtype == torch.bfloat16 for m in modules for p in m.parameters())
    images = smooth_images(4, 40, 40)
    reference = scorers[key].score(images, PROMPTS[:4])
    low = scorer.score(images, PROMPTS[:4])
    assert low.dtype == torch.float32 and not torch.equal(low, reference)  # computed in bf16, returned as fp32
    # bf16 keeps ~3 significant digits: measured <= 1.5 % of the largest score on these tiny models
    assert float((low - reference).abs().max()) <= 0.05 * float(reference.abs().max())
    pixels = to_pixels(images).requires_grad_(True)
    scorer.score_pixels(pixels, PROMPTS[:4]).sum().backward()
    assert pixels.grad.dtype == torch.float32 and pixels.grad.abs().sum() > 0


class NotATensor:
    """A pickled object: weights_only loading must refuse to build it."""


def test_checkpoints_are_read_as_tensors_only(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"layers.0.weight": torch.zeros(2, 2), "payload": NotATensor()}, path)
    with pytest.raises(UserError, match="weights_only=True"):
        build_scorer({"name": "aesthetic", "weights": str(path)})


def test_a_config_component_builds_the_same_scorer(clip_dir):
    from mmpref.config.schema import Where, resolve_component

    component = resolve_component("reward_models", {"name": "pickscore", "weights": clip_dir, "batch_size": 4},
                                  Where("test.yaml", "reward"))
    scorer = build_scorer(component)
    assert scorer.name == "pickscore" and scorer.batch_size == 4
    with pytest.raises(UserError, match="Did you mean 'standardize'"):
        resolve_component("reward_models", {"name": "composite", "standardise": "fixed"}, Where("t.yaml", "reward"))


def test_procedural_scorers_register_and_score_any_size(monkeypatch):
    # a private copy of the table, so the test scorer does not leak into other tests (the README check)
    monkeypatch.setattr(REWARD_MODELS, "_entries", dict(REWARD_MODELS._entries))

    @procedural_scorer("test_redness", summary="mean red minus mean green")
    def redness(pixels, prompts):
        return pixels[:, 0].mean(dim=(1, 2)) - pixels[:, 1].mean(dim=(1, 2))

    scorer = build_scorer("test_redness")
    images = smooth_images(2, 20, 30) + smooth_images(1, 17, 9, seed=5)
    expected = torch.stack([redness(to_pixels([im]), [""])[0] for im in images])
    torch.testing.assert_close(scorer.score(images), expected)
    pixels = to_pixels(images[:2]).requires_grad_(True)
    scorer.score_pixels(pixels).sum().backward()
    assert pixels.grad.abs().sum() > 0
    with pytest.raises(UserError, match="already registered"):
        register_procedural("test_redness", lambda p, q: p.mean(), summary="again")
    assert "test_redness" in REWARD_MODELS.names()


def test_composite_weighted_sum_of_standardised_scores(scorers, hps_files):
    config, checkpoint = hps_files
    images = smooth_images(6, 40, 40)
    hps = scorers["hpsv2.1"].score(images, PROMPTS[:6])
    bright = scorers["brightness"].score(images)
    fixed = build_scorer({"name": "composite", "standardize": "fixed", "members": [
        {"name": "hpsv2.1", "weights": checkpoint, "model_config": config, "weight": 2.0, "mean": 0.25, "std": 0.1},
        {"name": "brightness", "weight": 0.5, "mean": 0.5, "std": 0.01},
    ]})
    expected = 2.0 * (hps - 0.25) / 0.1 + 0.5 * (bright - 0.5) / 0.01
    torch.testing.assert_close(fixed.score(images, PROMPTS[:6]), expected, rtol=1e-5, atol=1e-4)
    pixels = to_pixels(images).requires_grad_(True)
    fixed.score_pixels(pixels, PROMPTS[:6]).sum().backward()
    assert pixels.grad.abs().sum() > 0

    running = build_scorer({"name": "composite", "members": [{"name": "brightness"}]})
    first = running.score(images)  # statistics of the 6 scores seen so far
    torch.testing.assert_close(first, (bright - bright.mean()) / bright.std(), rtol=1e-4, atol=1e-4)
    member = running.members[0]
    assert member.stats.count == 6 and math.isclose(member.stats.mean, float(bright.mean()), rel_tol=1e-5)

    with pytest.raises(UserError, match="needs `mean` and `std`"):
        build_scorer({"name": "composite", "standardize": "fixed", "members": [{"name": "brightness"}]})
    with pytest.raises(UserError, match="at least one"):
        build_scorer({"name": "composite"})
