"""Open-vocabulary detectors: well-formed detections from tiny random OWLv2 / Grounding DINO, the
documented presence / count agreement on constructed detections, and prompt parsing."""

from __future__ import annotations

import math

import pytest
import torch
from rm_helpers import smooth_images

from mmpref.reward_models import Detection, ObjectPhrase, build_scorer, object_agreement, parse_objects
from mmpref.reward_models.detection import DetectorScorer


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("two red circles and a dog", [("red circle", 2), ("dog", 1)]),
        ("a photo of a cat sitting on a sofa", [("cat", 1), ("sofa", 1)]),
        ("three apples, a knife and 2 glasses on a wooden table",
         [("apple", 3), ("knife", 1), ("glass", 2), ("wooden table", 1)]),
        ("A pair of shoes next to five puppies.", [("shoe", 2), ("puppy", 5)]),
        ("an elephant and an elephant", [("elephant", 2)]),
        ("", []),
    ],
)
def test_parse_objects(prompt, expected):
    assert [(o.phrase, o.count) for o in parse_objects(prompt)] == expected


def test_parse_marks_explicit_numbers_only():
    objects = {o.phrase: o for o in parse_objects("two red circles and a dog")}
    assert objects["red circle"].exact and not objects["dog"].exact


def box(label: str, score: float = 0.9) -> Detection:
    return Detection((0.0, 0.0, 10.0, 10.0), label, score)


def test_object_agreement_as_documented():
    objects = parse_objects("two red circles and a dog")
    both = [box("red circle"), box("red circle"), box("dog")]
    assert object_agreement(both, objects) == 1.0
    # one of two circles: s = 1 - |1 - 2| / 2 = 0.5, dog present: 1 -> mean 0.75
    assert object_agreement([box("red circle"), box("dog")], objects) == 0.75
    # three circles: 1 - 1/2; four circles: 0; an "a dog" phrase is satisfied by any number >= 1
    assert object_agreement([box("red circle")] * 3 + [box("dog")] * 2, objects) == 0.75
    assert object_agreement([box("red circle")] * 4 + [box("dog")], objects) == 0.5
    # detections under the threshold do not count; labels outside the prompt do not count
    assert object_agreement([box("red circle"), box("red circle"), box("dog", 0.05), box("cat")], objects,
                            threshold=0.1) == 0.5
    # presence mode ignores numbers
    assert object_agreement([box("red circle"), box("dog")], objects, mode="presence") == 1.0
    assert object_agreement([box("red circle")], objects, mode="presence") == 0.5
    assert object_agreement([], objects) == 0.0
    assert math.isnan(object_agreement([box("dog")], []))


class FixedDetector(DetectorScorer):
    """Returns constructed detections, to check the scorer plumbing around `object_agreement`."""

    name = "fixed"

    def __init__(self, detections, **kwargs):
        super().__init__(**kwargs)
        self.detections = detections

    def _detect_batch(self, images, phrases):
        return [self.detections[: len(p)] and list(self.detections) for p in phrases]


def test_detector_scorer_scores_prompts_from_detections():
    detections = [box("red circle"), box("red circle"), box("dog", 0.3)]
    scorer = FixedDetector(detections, threshold=0.5)
    scores = scorer.score(smooth_images(2, 8, 8), ["two red circles and a dog", "a red circle"])
    torch.testing.assert_close(scores, torch.tensor([0.5, 1.0]))
    assert FixedDetector(detections, threshold=0.2).score(smooth_images(1, 8, 8), "two red circles and a dog") == 1.0
    with pytest.raises(Exception, match="not differentiable"):
        scorer.score_pixels(torch.rand(1, 3, 8, 8), "a dog")


@pytest.mark.parametrize("which", ["owlv2", "grounding_dino"])
def test_tiny_detectors_return_well_formed_detections(request, which):
    directory = request.getfixturevalue(f"{which}_dir")
    detector = build_scorer({"name": which, "weights": directory, "threshold": 0.0})
    images = smooth_images(2, 48, 80) + smooth_images(1, 64, 40, seed=1)
    prompts = ["two red circles and a dog", "a cat", "a blue square on a table"]
    results = detector.detect(images, prompts)
    assert len(results) == 3
    for image, prompt, detections in zip(images, prompts, results):
        phrases = {o.phrase for o in parse_objects(prompt)}
        assert detections, "threshold 0 keeps at least one box"
        width, height = image.size
        for d in detections:
            x0, y0, x1, y1 = d.box
            assert 0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height
            assert d.label in phrases and 0.0 <= d.score <= 1.0
        scores = [d.score for d in detections]
        assert scores == sorted(scores, reverse=True)
    # a batch gives the detections of single calls (same labels, scores and boxes)
    for batched, image, prompt in zip(results, images, prompts):
        single = detector.detect([image], [prompt])[0]
        assert [d.label for d in single] == [d.label for d in batched]
        torch.testing.assert_close(torch.tensor([d.box + (d.score,) for d in single]),
                                   torch.tensor([d.box + (d.score,) for d in batched]), rtol=1e-4, atol=1e-3)
    # explicit phrase lists work too, and the scorer interface returns agreement in [0, 1]
    assert all(d.label == "dog" for d in detector.detect(images[:1], [["dog"]])[0])
    agreement = detector.score(images, prompts)
    assert agreement.shape == (3,) and ((agreement >= 0) & (agreement <= 1)).all()
    # a higher threshold keeps a subset of the boxes, all at or above it
    # (the cut sits between two distinct scores, and boxes match within float tolerance: a single-image
    # call may differ from the batched one in the last bits)
    ranked = sorted({round(d.score, 4) for d in results[2]}, reverse=True)
    cut = (ranked[len(ranked) // 2 - 1] + ranked[len(ranked) // 2]) / 2 if len(ranked) > 1 else ranked[0] - 1e-3
    strict = build_scorer({"name": which, "weights": directory, "threshold": cut}).detect(images[2:], prompts[2:])[0]
    assert strict and all(d.score >= cut for d in strict)

    def close(a, b) -> bool:
        return a.label == b.label and all(abs(x - y) < 1e-3 for x, y in zip(a.box + (a.score,), b.box + (b.score,)))

    assert all(any(close(d, ref) for ref in results[2]) for d in strict)
    assert len(strict) < len(results[2]) or len(ranked) == 1


def test_object_phrase_is_a_tuple_with_exactness():
    assert ObjectPhrase("dog", 2, True)[:2] == ("dog", 2)
