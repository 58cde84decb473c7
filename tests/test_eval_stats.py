"""`mmpref eval` statistics against hand-computed values: bootstrap CIs, paired gains, win rates with ties."""

from __future__ import annotations

import numpy as np
import pytest

from mmpref.evaluation import stats
from mmpref.evaluation.engine import AccuracySettings, EvalSettings, ModelSamples, compare, parse_model


def numpy_bootstrap(per_unit: np.ndarray, resamples: int, seed: int) -> list[float]:
    """The textbook percentile bootstrap of a mean, written independently of mmpref."""
    rng = np.random.default_rng(seed)
    n = len(per_unit)
    idx = rng.integers(0, n, size=(resamples, n))
    means = per_unit[idx].mean(axis=1)
    return list(np.percentile(means, [2.5, 97.5]))


def test_mean_ci_is_the_numpy_percentile_bootstrap_with_the_same_seed():
    values = np.random.default_rng(5).normal(0.4, 0.2, size=57)
    idx = stats.resample_indices(len(values), 1000, seed=7)
    out = stats.mean_ci(values, idx)
    assert out["mean"] == pytest.approx(values.mean())
    assert out["ci95"] == pytest.approx(numpy_bootstrap(values, 1000, 7), abs=1e-12)
    assert out["ci95"][0] < values.mean() < out["ci95"][1]


def test_prompts_are_the_resampling_unit():
    """[prompts, seeds]: the CI is the bootstrap of per-prompt means (seeds move with their prompt)."""
    values = np.random.default_rng(1).integers(0, 2, size=(40, 4)).astype(float)
    idx = stats.resample_indices(40, 500, seed=3)
    out = stats.mean_ci(values, idx)
    assert out["ci95"] == pytest.approx(numpy_bootstrap(values.mean(axis=1), 500, 3), abs=1e-12)
    # a constant has a zero-width interval
    assert stats.mean_ci(np.ones((10, 3)), stats.resample_indices(10, 200))["ci95"] == [1.0, 1.0]


def test_paired_difference_by_hand():
    base = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 1.0]])
    new = np.array([[1.0, 1.0], [0.5, 1.0], [1.0, 0.0]])
    idx = stats.resample_indices(3, 300, seed=0)
    out = stats.difference_ci(new, base, idx)
    assert out["diff"] == pytest.approx(new.mean() - base.mean())
    per_prompt = (new - base).mean(axis=1)  # [0.5, 0.25, -0.5]
    assert out["ci95"] == pytest.approx(numpy_bootstrap(per_prompt, 300, 0), abs=1e-12)


def test_win_rate_with_ties_by_hand():
    # 3 prompts x 4 seeds: outcomes  W T L W | T T W W | L T T T  -> 4 wins, 2 losses, 6 ties
    ref = np.zeros((3, 4))
    new = np.array([[1, 0, -1, 0.2], [0, 1e-12, 0.5, 0.5], [-0.3, 0, 0, 0]], dtype=float)
    idx = stats.resample_indices(3, 400, seed=11)
    wr = stats.win_rate(new, ref, idx)
    assert (wr.wins, wr.losses, wr.ties) == (4, 2, 6)
    assert wr.win_rate == pytest.approx(4 / 6)
    assert wr.tie_share == pytest.approx(6 / 12)
    # the CI by hand: per-prompt wins (2, 2, 0) and losses (1, 0, 1), pooled per resample
    w, l_ = np.array([2, 2, 0]), np.array([1, 0, 1])
    rng = np.random.default_rng(11)
    draws = rng.integers(0, 3, size=(400, 3))
    ws, ls = w[draws].sum(axis=1), l_[draws].sum(axis=1)
    rates = (ws / np.where(ws + ls > 0, ws + ls, 1))[ws + ls > 0]
    assert wr.ci95 == pytest.approx(list(np.percentile(rates, [2.5, 97.5])), abs=1e-12)
    # all ties: no rate, tie share 1
    allties = stats.win_rate(ref, ref, idx)
    assert np.isnan(allties.win_rate) and allties.tie_share == 1.0 and allties.wins == allties.losses == 0


def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    p, n, reps = 0.6, 150, 200
    hits = 0
    for r in range(reps):
        sample = (rng.random(n) < p).astype(float)
        low, high = stats.mean_ci(sample, stats.resample_indices(n, 1000, seed=r))["ci95"]
        hits += low <= p <= high
    assert 0.89 <= hits / reps <= 0.99


def _samples(name: str, truth: np.ndarray, other: np.ndarray) -> ModelSamples:
    images = [[np.zeros((4, 4, 3), np.uint8)] * truth.shape[1] for _ in range(truth.shape[0])]
    return ModelSamples(name, {"kind": "pipeline", "path": name, "base": None}, images,
                        {"shapes_truth": truth, "other": other}, [], 0.0)


def test_compare_reports_accuracy_gain_and_win_rate():
    base_truth = np.array([[1.0, 0.5], [0.5, 0.5], [1.0, 0.0], [0.25, 1.0]])
    new_truth = np.array([[1.0, 1.0], [0.75, 0.5], [1.0, 0.5], [0.25, 0.75]])
    settings = EvalSettings(models=[], scorers=["shapes_truth", "other"], seeds_per_prompt=2, resamples=500,
                            accuracy=AccuracySettings(scorer="shapes_truth", threshold=1.0))
    texts = ["a red circle", "two blue squares", "a red circle left of a blue square", "a green triangle"]
    report = compare([_samples("base", base_truth, base_truth), _samples("new", new_truth, -new_truth)],
                     settings, texts, "shapes_truth")
    base, new = report["models"]
    assert base["metrics"]["accuracy"]["mean"] == pytest.approx(3 / 8)
    assert new["metrics"]["accuracy"]["mean"] == pytest.approx(3 / 8)
    assert new["metrics"]["shapes_truth"]["mean"] == pytest.approx(new_truth.mean())
    v = new["vs_first"]
    assert v["win_rate_scorer"] == "shapes_truth"  # the first scorer unless win_rate_scorer says otherwise
    # score differences 0, +.5 | +.25, 0 | 0, +.5 | 0, -.25
    assert (v["wins"], v["losses"], v["ties"]) == (3, 1, 4)
    assert v["win_rate"] == pytest.approx(3 / 4) and v["tie_share"] == pytest.approx(4 / 8)
    assert v["gain"]["shapes_truth"]["diff"] == pytest.approx(new_truth.mean() - base_truth.mean())
    idx = stats.resample_indices(4, 500, 0)
    assert v["gain"]["accuracy"]["ci95"] == pytest.approx(
        stats.difference_ci((new_truth >= 1).astype(float), (base_truth >= 1).astype(float), idx)["ci95"])
    assert new["accuracy_by_form"] == {"single": 0.5, "count": 0.0, "relation": 0.5}
    assert base["relation_outcomes"] == {"right": 0.0, "reversed": 0.0, "other": 0.0, "missing": 1.0}  # blank images
    assert report["bootstrap"]["resamples"] == 500 and report["bootstrap"]["seed"] == 0


def test_relation_outcomes_count_reversed_layouts():
    from mmpref.sandbox.shapes import render

    prompt = "a red circle left of a blue square"
    truth = np.ones((2, 2))
    samples = _samples("m", truth, truth)
    samples.images[1] = [np.asarray(render(prompt, seed=1)), np.asarray(render("a blue square left of a red circle", seed=2))]
    settings = EvalSettings(models=[], scorers=["shapes_truth"], seeds_per_prompt=2, resamples=50)
    report = compare([samples], settings, ["a red circle", prompt], None)
    assert report["models"][0]["relation_outcomes"] == {"right": 0.5, "reversed": 0.5, "other": 0.0, "missing": 0.0}


@pytest.mark.parametrize(("spec", "expected"), [
    ("base=shapes_base", {"name": "base", "path": "shapes_base"}),
    ("aligned=out/dpo@shapes_base", {"name": "aligned", "path": "out/dpo", "base": "shapes_base"}),
    ("some/dir", {"name": "model2", "path": "some/dir"}),
])
def test_model_specs(spec, expected):
    assert parse_model(spec, 2) == expected
