"""SimPO and CPO against their formulas, written out by hand with `math`."""

from __future__ import annotations

import math

import pytest
import torch

from mmpref.objectives import PairwiseInputs, build_objective

PC = [-4.0, -10.0, -3.0]
PR = [-6.0, -8.0, -9.0]
LC = [4.0, 5.0, 2.0]
LR = [3.0, 8.0, 6.0]


def neg_logsig(x: float) -> float:
    return math.log1p(math.exp(-x))


def test_simpo_is_length_normalised_with_a_margin() -> None:
    beta, gamma = 2.0, 0.8
    obj = build_objective("simpo", beta=beta, gamma=gamma)
    assert obj.needs_reference is False
    out = obj(
        PairwiseInputs(
            torch.tensor(PC),
            torch.tensor(PR),
            chosen_lengths=torch.tensor(LC),
            rejected_lengths=torch.tensor(LR),
        )
    )
    expected = [neg_logsig(beta / lc * pc - beta / lr * pr - gamma) for pc, pr, lc, lr in zip(PC, PR, LC, LR)]
    torch.testing.assert_close(out.losses, torch.tensor(expected), atol=1e-6, rtol=1e-6)
    # TRL's CPO/SimPO rewards: β times the (averaged) policy log-likelihood.
    assert out.metrics["rewards/chosen"].item() == pytest.approx(
        sum(beta * p / n for p, n in zip(PC, LC)) / 3
    )


def test_simpo_without_lengths_uses_the_estimates_as_they_are() -> None:
    """Diffusion adapters give no token counts: their error is already a mean."""
    beta, gamma = 2.0, 1.0
    out = build_objective("simpo")(PairwiseInputs(torch.tensor(PC) / 10, torch.tensor(PR) / 10))
    expected = [neg_logsig(beta * (pc - pr) / 10 - gamma) for pc, pr in zip(PC, PR)]
    torch.testing.assert_close(out.losses, torch.tensor(expected), atol=1e-6, rtol=1e-6)


def test_cpo_adds_nll_and_ignores_references() -> None:
    beta, lam = 0.1, 1.0
    obj = build_objective("cpo")
    assert obj.needs_reference is False
    junk = torch.tensor([100.0, -50.0, 7.0])  # reference values must not matter
    out = obj(
        PairwiseInputs(
            torch.tensor(PC),
            torch.tensor(PR),
            reference_chosen=junk,
            reference_rejected=-junk,
            chosen_lengths=torch.tensor(LC),
            rejected_lengths=torch.tensor(LR),
        )
    )
    expected = [neg_logsig(beta * (pc - pr)) + lam * (-pc / lc) for pc, pr, lc in zip(PC, PR, LC)]
    torch.testing.assert_close(out.losses, torch.tensor(expected), atol=1e-6, rtol=1e-6)


def test_reference_free_composes_with_label_smoothing() -> None:
    beta, gamma, eps = 2.0, 1.0, 0.1
    out = build_objective("simpo", labels="smoothing", label_smoothing=eps)(
        PairwiseInputs(torch.tensor(PC) / 10, torch.tensor(PR) / 10)
    )
    hs = [beta * (pc - pr) / 10 for pc, pr in zip(PC, PR)]
    expected = [(1 - eps) * neg_logsig(h - gamma) + eps * neg_logsig(-h - gamma) for h in hs]
    torch.testing.assert_close(out.losses, torch.tensor(expected), atol=1e-6, rtol=1e-6)
