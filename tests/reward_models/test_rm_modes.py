"""Batch invariance of inference mode, and differentiable mode: gradients reach the pixels and the
scores agree with inference mode.

Stated tolerance for the two modes: identical preprocessing when no resize is needed (agreement to
1e-5); after a resize, PIL (inference) rounds to uint8 where torch (differentiable) stays in float,
which moves scores by less than 2 % of the spread of scores across images, so rankings agree.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rm_helpers import PROMPTS, smooth_images, to_pixels

DIFFERENTIABLE = ["pickscore", "hpsv2.1", "clip_score", "clip_score_open_clip", "aesthetic", "imagereward",
                  "brightness"]


@pytest.mark.parametrize("key", DIFFERENTIABLE)
def test_batch_of_8_equals_8_single_calls(scorers, key):
    scorer = scorers[key]
    images = smooth_images(4, 45, 61) + smooth_images(4, 64, 40, seed=1)  # mixed sizes in one batch
    batched = scorer.score(images, PROMPTS, batch_size=8)
    single = torch.cat([scorer.score([im], [p]) for im, p in zip(images, PROMPTS)])
    assert batched.shape == (8,) and batched.dtype == torch.float32
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)
    # internal chunking gives the same numbers too
    torch.testing.assert_close(scorer.score(images, PROMPTS, batch_size=3), batched, rtol=1e-5, atol=1e-5)


def test_clap_batch_of_8_equals_8_single_calls(clap_dir):
    from mmpref.reward_models import build_scorer

    scorer = build_scorer({"name": "clap", "weights": clap_dir, "sample_rate": 8000})
    rng = np.random.default_rng(1)
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (2000, 4000, 8000, 12000) * 2]  # 12000 > 1 s
    texts = PROMPTS
    batched = scorer.score(waves, texts)
    single = torch.cat([scorer.score([w], [t]) for w, t in zip(waves, texts)])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("key", DIFFERENTIABLE)
def test_differentiable_mode_has_pixel_gradients_and_matches_inference(scorers, key):
    scorer = scorers[key]
    assert scorer.differentiable

    # Same size as the model input: the two paths run identical preprocessing.
    exact = smooth_images(4, 32, 32, seed=2)
    pixels = to_pixels(exact).requires_grad_(True)
    out = scorer.score_pixels(pixels, PROMPTS[:4])
    assert out.shape == (4,) and out.requires_grad
    out.sum().backward()
    assert torch.isfinite(pixels.grad).all() and pixels.grad.abs().sum() > 0
    torch.testing.assert_close(out.detach(), scorer.score(exact, PROMPTS[:4]), rtol=1e-5, atol=1e-5)

    # Larger, non-square images: resized (and for HPS padded) inside the differentiable graph.
    big = smooth_images(8, 72, 96, seed=3)
    pixels = to_pixels(big).requires_grad_(True)
    out = scorer.score_pixels(pixels, PROMPTS)
    out.sum().backward()
    assert pixels.grad.abs().sum() > 0
    inference = scorer.score(big, PROMPTS)
    spread = float(inference.std())
    assert float((out.detach() - inference).abs().max()) <= 0.02 * spread + 1e-6


def test_model_weights_stay_frozen(scorers):
    scorer = scorers["pickscore"]
    pixels = torch.rand(2, 3, 32, 32, requires_grad=True)
    scorer.score_pixels(pixels, "a cat").sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in scorer.clip.model.parameters())
    assert not scorer.clip.model.training


def test_score_pixels_rejects_bad_input(scorers):
    from mmpref.errors import UserError

    with pytest.raises(UserError, match=r"\[B, 3, H, W\]"):
        scorers["pickscore"].score_pixels(torch.rand(3, 32, 32), "a cat")
    with pytest.raises(UserError, match="uint8"):
        scorers["pickscore"].score_pixels(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "a cat")
    with pytest.raises(UserError, match="one prompt per sample"):
        scorers["pickscore"].score(smooth_images(2, 32, 32), ["only one"])


def test_inputs_may_be_uint8_arrays_or_pil(scorers):
    images = smooth_images(2, 40, 40)
    arrays = [np.array(im) for im in images]
    torch.testing.assert_close(scorers["hpsv2.1"].score(arrays, "a cat"), scorers["hpsv2.1"].score(images, "a cat"))


def test_torch_resize_matches_pil_resize_within_uint8_rounding():
    from torchvision.transforms import functional as TF

    from mmpref.reward_models.preprocess import clip_pil_transform, resize_shortest_center_crop

    image = smooth_images(1, 90, 130, seed=4)[0]
    pil_path = clip_pil_transform(image, 32)
    torch_path = resize_shortest_center_crop(to_pixels([image]), 32, 32)[0]
    reference = TF.to_tensor(TF.center_crop(TF.resize(image, 32, interpolation=TF.InterpolationMode.BICUBIC), 32))
    torch.testing.assert_close(pil_path, reference)  # our PIL path is the torchvision reference transform
    assert float((torch_path - pil_path).abs().max()) <= 3 / 255
