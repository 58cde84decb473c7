"""Confidence intervals and win rates for model comparisons, by a seeded percentile bootstrap.

Scores come as a [prompts, seeds] array per model (the same prompts and seeds for every model). The
resampling unit is the prompt: the samples of one prompt are correlated (they share its difficulty),
so resampling prompts with replacement, each with all its seeds, keeps the CI honest where resampling
single images would make it too narrow. With one seed per prompt this is the textbook bootstrap.

Procedure (the tests reproduce it with numpy): `rng = np.random.default_rng(seed)`, one index matrix
`idx = rng.integers(0, n_prompts, size=(resamples, n_prompts))`, a statistic per row, and the
2.5 / 97.5 percentiles (`np.percentile`, linear interpolation) as the 95 % interval. Every statistic
of one report uses the same index matrix, so a difference between two models is a paired bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
TIE_TOLERANCE = 1e-9


def resample_indices(n_units: int, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """The bootstrap index matrix [resamples, n_units] (prompts drawn with replacement)."""
    if n_units < 1:
        raise ValueError("the bootstrap needs at least one prompt")
    if resamples < 1:
        raise ValueError("the bootstrap needs at least one resample")
    return np.random.default_rng(seed).integers(0, n_units, size=(resamples, n_units))


def _as_units(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[:, None] if values.ndim == 1 else values


def percentile_interval(stats: np.ndarray, level: float = 0.95) -> list[float]:
    """[low, high] percentiles of the resampled statistics (NaN resamples ignored)."""
    tail = 100.0 * (1.0 - level) / 2.0
    finite = stats[np.isfinite(stats)]
    if finite.size == 0:
        return [float("nan"), float("nan")]
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return [float(low), float(high)]


def prompt_means(values: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt means of a [prompts, seeds] (or [prompts]) array and the mean of each bootstrap resample of them;
    ratios and other statistics of several arrays take their resamples from here, so they stay paired."""
    per_unit = _as_units(values).mean(axis=1)  # every prompt has the same number of seeds
    return per_unit, per_unit[idx].mean(axis=1)


def mean_ci(values: np.ndarray, idx: np.ndarray, level: float = 0.95) -> dict[str, object]:
    """Mean of a [prompts, seeds] (or [prompts]) array and its bootstrap CI over prompts."""
    per_unit, stats = prompt_means(values, idx)
    return {"mean": float(per_unit.mean()), "ci95": percentile_interval(stats, level)}


def difference_ci(values: np.ndarray, reference: np.ndarray, idx: np.ndarray, level: float = 0.95) -> dict[str, object]:
    """Mean of `values` minus mean of `reference` (paired by prompt and seed) with its bootstrap CI."""
    diff = _as_units(values) - _as_units(reference)
    out = mean_ci(diff, idx, level)
    return {"diff": out["mean"], "ci95": out["ci95"]}


@dataclass
class WinRate:
    """Paired comparison of a model against a reference on the same prompts and seeds."""

    wins: int
    losses: int
    ties: int
    win_rate: float  # wins / (wins + losses); NaN when every comparison is a tie
    ci95: list[float]
    tie_share: float  # ties / all comparisons

    def to_json(self) -> dict[str, object]:
        return {"win_rate": self.win_rate, "win_rate_ci95": self.ci95, "wins": self.wins,
                "losses": self.losses, "ties": self.ties, "tie_share": self.tie_share}


def outcomes(values: np.ndarray, reference: np.ndarray, tolerance: float = TIE_TOLERANCE) -> np.ndarray:
    """+1 win, -1 loss, 0 tie per (prompt, seed): higher is better, |difference| <= tolerance is a tie."""
    diff = _as_units(values) - _as_units(reference)
    return np.where(diff > tolerance, 1, np.where(diff < -tolerance, -1, 0))


def win_rate(values: np.ndarray, reference: np.ndarray, idx: np.ndarray, level: float = 0.95,
             tolerance: float = TIE_TOLERANCE) -> WinRate:
    """Win rate of `values` over `reference`, ties excluded from the rate and reported as a share.

    The CI resamples prompts (as `mean_ci`); a resample with no decided comparison is skipped.
    """
    o = outcomes(values, reference, tolerance)
    wins_u, losses_u = (o == 1).sum(axis=1), (o == -1).sum(axis=1)
    wins, losses = int(wins_u.sum()), int(losses_u.sum())
    ties = int(o.size - wins - losses)
    w, l_ = wins_u[idx].sum(axis=1).astype(float), losses_u[idx].sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        stats = np.where(w + l_ > 0, w / (w + l_), np.nan)
    rate = wins / (wins + losses) if wins + losses else float("nan")
    return WinRate(wins, losses, ties, float(rate), percentile_interval(stats, level), ties / o.size)
