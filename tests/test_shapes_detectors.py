"""The two imperfect detectors do what their docstrings say, on hand-placed images."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mmpref.sandbox.shapes import color_blob_detector, render, shape_detector, truth_scores
from mmpref.sandbox.shapes.render import PlacedShape, draw


def scene(*objects: tuple[str, str, float, float]) -> np.ndarray:
    return np.asarray(draw([PlacedShape(c, s, x, y, 10.0) for c, s, x, y in objects]))


RED_SQUARE = scene(("red", "square", 16, 16))
RED_CIRCLE_LEFT_OF_BLUE_TRIANGLE = scene(("red", "circle", 8, 16), ("blue", "triangle", 24, 16))


@pytest.mark.parametrize("detector", [color_blob_detector, shape_detector])
def test_detectors_score_a_batch_in_unit_range(detector):
    images = [render("two red circles", 0), render("a blue square left of a yellow triangle", 1)]
    prompts = ["two red circles", "a blue square left of a yellow triangle"]
    for batch in (images, np.stack([np.asarray(im) for im in images])):
        scores = detector(batch, prompts)
        assert scores.shape == (2,) and scores.dtype == np.float64
        assert np.all(scores == 1.0)
    with pytest.raises(ValueError):
        detector(images, prompts[:1])


def test_color_blob_detector_is_blind_to_shape():
    assert color_blob_detector([RED_SQUARE], ["a red circle"])[0] == 1.0
    assert truth_scores([RED_SQUARE], ["a red circle"])[0] < 1.0
    assert color_blob_detector([RED_SQUARE], ["a blue square"])[0] < 0.5
    assert color_blob_detector([RED_SQUARE], ["two red squares"])[0] == pytest.approx(2 / 3)


def test_color_blob_detector_checks_relations_and_stray_colours():
    image = RED_CIRCLE_LEFT_OF_BLUE_TRIANGLE
    assert color_blob_detector([image], ["a red square left of a blue circle"])[0] == 1.0
    assert color_blob_detector([image], ["a red circle above a blue triangle"])[0] == pytest.approx(5 / 6)
    assert color_blob_detector([image], ["a red circle"])[0] == pytest.approx(2 / 3)  # blue is stray


def test_shape_detector_is_blind_to_colour():
    assert shape_detector([RED_SQUARE], ["a blue square"])[0] == 1.0
    assert truth_scores([RED_SQUARE], ["a blue square"])[0] < 0.5
    assert shape_detector([RED_SQUARE], ["a red triangle"])[0] == pytest.approx(
        0.5
    )  # count right, shape wrong


def test_shape_detector_checks_shape_order_in_relations():
    image = RED_CIRCLE_LEFT_OF_BLUE_TRIANGLE
    assert shape_detector([image], ["a green circle left of a yellow triangle"])[0] == 1.0
    assert shape_detector([image], ["a red triangle left of a blue circle"])[0] == pytest.approx(2 / 3)


def test_shape_detector_is_noisier_on_blur_than_the_ground_truth():
    """Its fill-ratio rule mistakes blurred small squares for circles; the ground truth does not."""
    from PIL import ImageFilter

    squares = [
        draw([PlacedShape("green", "square", 16, 16, side)]).filter(ImageFilter.GaussianBlur(1.0))
        for side in (7.0, 7.5, 8.0, 8.5)
    ]
    prompts = ["a green square"] * len(squares)
    assert np.all(truth_scores(squares, prompts) == 1.0)
    assert np.any(shape_detector(squares, prompts) < 1.0)


def test_scorers_register_and_score_through_the_registry():
    """In a fresh interpreter, so registering does not leak into other tests' view of the registry."""
    code = """
import numpy as np
import mmpref.sandbox.shapes.scorers
from mmpref.reward_models import build_scorer
from mmpref.sandbox.shapes import render
images = [render("a red circle", 0), render("a red square", 1)]
for name in ("shapes_truth", "shapes_color_blobs", "shapes_shape_detector"):
    scorer = build_scorer(name)
    assert scorer.needs_prompt and not scorer.differentiable
    print(name, scorer.score(images, ["a red circle"] * 2).tolist())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    scores = {line.split()[0]: json.loads(line.split(maxsplit=1)[1]) for line in out.stdout.splitlines()}
    assert scores["shapes_truth"] == [1.0, 0.75]
    assert scores["shapes_color_blobs"] == [1.0, 1.0]
    assert scores["shapes_shape_detector"] == [1.0, 0.5]
