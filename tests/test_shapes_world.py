"""Shapes world: grammar round-trips, a disjoint split, and a ground truth that is right.

The ground truth must accept clean renders of every prompt form (>= 98 %), keep accepting them under the
blur and noise a small diffusion model produces, and reject renders scored against a different prompt,
both random ones and near misses that differ in a single attribute. Rates are printed (pytest -s).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import ImageFilter

from mmpref.sandbox.shapes import (
    FORMS,
    Prompt,
    PromptError,
    all_prompts,
    judge,
    near_misses,
    parse_prompt,
    render,
    render_batch,
    split_prompts,
    truth_correct,
    truth_scores,
)

SEEDS_PER_FORM = 250


def test_every_sentence_round_trips_through_text():
    prompts = all_prompts()
    assert len(prompts) == len(set(prompts)) == 12 + 24 + 432
    for p in prompts:
        assert Prompt.parse(p.text) == p
        assert str(parse_prompt(p.text)) == p.text


def test_parser_tolerates_aliases_and_rejects_nonsense():
    assert parse_prompt("One Red Circle.") == parse_prompt("a red circle")
    assert parse_prompt("a blue square to the left of a red circle").relation == "left of"
    assert parse_prompt("two  green   triangles").groups[0].count == 2
    for bad in (
        "a purple circle",
        "two red circle",
        "a red circles",
        "a red circle left of a red square",
        "hello",
    ):
        with pytest.raises(PromptError):
            parse_prompt(bad)


def test_mirrored_relations_are_one_scene():
    a = parse_prompt("a red circle left of a blue square")
    b = parse_prompt("a blue square right of a red circle")
    assert a != b and a.same_scene(b) and a.canonical() == b.canonical()


def test_split_is_deterministic_disjoint_and_covers_every_form():
    split = split_prompts(seed=0)
    assert split == split_prompts(seed=0) and split != split_prompts(seed=1)
    train_scenes = {p.canonical() for p in split.train}
    held_scenes = {p.canonical() for p in split.heldout}
    assert not train_scenes & held_scenes
    assert set(split.train) | set(split.heldout) == set(all_prompts())
    for form in FORMS:
        assert any(p.form == form for p in split.heldout) and any(p.form == form for p in split.train)
    # Held-out combinations are unseen as wholes, but their parts are all seen in training.
    seen = {(g.color, g.shape) for p in split.train for g in p.groups}
    assert all((g.color, g.shape) in seen for p in split.heldout for g in p.groups)


def test_renders_are_deterministic_and_sized():
    a, b = render("two red circles", seed=3), render("two red circles", seed=3)
    assert a.size == (32, 32) and np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(render("two red circles", seed=4)))
    assert render("a red circle", seed=0, size=64).size == (64, 64)
    assert render_batch(["a red circle", "a blue square"], [0, 1]).shape == (2, 32, 32, 3)


def _cases(form: str, n: int, rng: np.random.Generator) -> list[tuple[Prompt, int]]:
    prompts = all_prompts(form)
    return [(prompts[rng.integers(len(prompts))], int(rng.integers(10**6))) for _ in range(n)]


def _degrade(image, rng: np.random.Generator) -> np.ndarray:
    """Blur, dim and add pixel noise, like a small diffusion model's output."""
    blurred = np.asarray(
        image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.0)))), dtype=np.float32
    )
    noisy = blurred * rng.uniform(0.9, 1.0) + rng.normal(0.0, 10.0, blurred.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("form", FORMS)
def test_ground_truth_accepts_clean_and_degraded_renders(form):
    rng = np.random.default_rng(FORMS.index(form))
    cases = _cases(form, SEEDS_PER_FORM, rng)
    images = [render(p, s) for p, s in cases]
    prompts = [p for p, _ in cases]
    clean = truth_correct(images, prompts).mean()
    degraded = truth_correct(np.stack([_degrade(im, rng) for im in images]), prompts).mean()
    print(
        f"\n{form}: ground truth accepts {clean:.1%} of clean renders, {degraded:.1%} of blurred+noisy ones"
    )
    assert clean >= 0.98
    assert degraded >= 0.95
    assert np.all(truth_scores(images, prompts)[truth_correct(images, prompts)] == 1.0)


@pytest.mark.parametrize("form", FORMS)
def test_ground_truth_rejects_mismatched_prompts(form):
    rng = np.random.default_rng(10 + FORMS.index(form))
    everything = all_prompts()
    random_wrong, near_wrong = [], []
    for prompt, seed in _cases(form, SEEDS_PER_FORM // 2, rng):
        image = render(prompt, seed)
        while (other := everything[rng.integers(len(everything))]).same_scene(prompt):
            pass
        misses = near_misses(prompt)
        near = misses[rng.integers(len(misses))]
        random_wrong.append(not judge(image, other).correct)
        near_wrong.append(not judge(image, near).correct)
    rate_random, rate_near = np.mean(random_wrong), np.mean(near_wrong)
    print(f"\n{form}: rejects {rate_random:.1%} of random mismatched prompts, {rate_near:.1%} of near misses")
    assert rate_random >= 0.95
    assert rate_near >= 0.95


def test_graded_score_counts_the_share_of_checks():
    image = render("a red circle left of a blue square", seed=5)
    assert judge(image, "a red circle left of a blue square").score == 1.0
    swapped = judge(image, "a red circle right of a blue square")  # only the relation fails
    assert not swapped.correct and swapped.checks["right of"] == 0.0
    assert swapped.score == pytest.approx(7 / 8)
    blank = np.full((32, 32, 3), 245, dtype=np.uint8)
    assert judge(blank, "a red circle").score == pytest.approx(1 / 4)  # only "nothing else" holds


def test_relation_outcome_tells_reversed_from_other_failures():
    from mmpref.sandbox.shapes.truth import relation_outcome

    prompt = "a red circle left of a blue square"
    outcomes = {relation_outcome(render(prompt, seed=s), prompt) for s in range(20)}
    assert outcomes == {"right"}
    swapped = "a blue square left of a red circle"  # the same words, the objects' places exchanged
    assert {relation_outcome(render(swapped, seed=s), prompt) for s in range(20)} == {"reversed"}
    assert {relation_outcome(render("a red circle above a blue square", seed=s), prompt)
            for s in range(20)} == {"other"}
    assert relation_outcome(render("a red circle", seed=0), prompt) == "missing"
    assert relation_outcome(render("two red circles", seed=0), "two red circles") is None


def test_scores_accept_arrays_in_every_layout():
    image = np.asarray(render("three green triangles", seed=2))
    as_float_chw = image.transpose(2, 0, 1).astype(np.float32) / 255.0
    scores = truth_scores([image, as_float_chw, image[None][0]], ["three green triangles"] * 3)
    assert np.all(scores == 1.0)
    with pytest.raises(ValueError):
        truth_scores(image[None], ["a", "b"])
