"""Per-form accuracy (mmpref.sandbox.form_accuracy) against hand-counted verdicts of the real shapes judge."""

from __future__ import annotations

import numpy as np
import pytest

from mmpref.sandbox.form_accuracy import accuracy_by_form
from mmpref.sandbox.shapes.grammar import FORMS, parse_prompt
from mmpref.sandbox.shapes.render import render
from mmpref.sandbox.shapes.truth import judge_batch


def test_counts_correct_samples_per_form_and_over_seeds():
    calls = []

    def sample(prompts, seeds):
        calls.append((list(prompts), list(seeds)))
        # the single is drawn right at every seed; the count prompt is drawn with one square too few at seed 1
        wrong = parse_prompt("a blue square")
        return np.stack([np.asarray(render(wrong if (p.form == "count" and s == 1) else p, s))
                         for p, s in zip(prompts, seeds)])

    result = accuracy_by_form(["a red circle", "two blue squares"], (s for s in (0, 1)), parse=parse_prompt,
                              sample=sample, judge=judge_batch, forms=FORMS)
    assert calls == [([parse_prompt("a red circle"), parse_prompt("two blue squares")] * 2, [0, 0, 1, 1])]
    assert result["n"] == 4
    assert result["all"] == pytest.approx(3 / 4)
    assert result["single"] == 1.0 and result["count"] == pytest.approx(1 / 2)
    assert "relation" not in result  # no prompt of that form
    # the wrong sample passes its colour and shape checks but not its count: the graded score is below 1
    assert 0.75 < result["score"] < 1.0
