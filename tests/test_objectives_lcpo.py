"""LCPO: the EM posterior and η update by hand, checkpointing η, and recovery of a known noise rate."""

from __future__ import annotations

import math

import pytest
import torch

from mmpref.objectives import PairwiseInputs, build_objective

DELTA = [0.3, -0.8, 1.5, 4.0]


def neg_logsig(x: float) -> float:
    return math.log1p(math.exp(-x))


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def posterior(p_star: float, eta: float) -> float:
    return p_star * eta / (p_star * eta + (1 - p_star) * (1 - eta))


def margin_inputs(delta: list[float], requires_grad: bool = False) -> tuple[PairwiseInputs, torch.Tensor]:
    pc = torch.tensor(delta, requires_grad=requires_grad)
    return PairwiseInputs(pc, torch.zeros(len(delta)), torch.zeros(len(delta)), torch.zeros(len(delta))), pc


def test_lcpo_loss_is_the_posterior_weighted_dpo_loss() -> None:
    beta, eta = 0.5, 0.9
    obj = build_objective("lcpo", beta=beta).eval()
    out = obj(margin_inputs(DELTA)[0])
    w = [posterior(sig(beta * d), eta) for d in DELTA]  # p* = σ(h) for the sigmoid link
    expected = [wi * neg_logsig(beta * d) + (1 - wi) * neg_logsig(-beta * d) for wi, d in zip(w, DELTA)]
    torch.testing.assert_close(out.losses, torch.tensor(expected), atol=1e-6, rtol=1e-6)
    assert out.metrics["lcpo/posterior_mean"].item() == pytest.approx(sum(w) / len(w), abs=1e-6)
    assert out.metrics["lcpo/noise_rate"].item() == pytest.approx(1 - eta, abs=1e-6)
    assert obj.labels.eta.item() == pytest.approx(eta)  # eval mode: η is left alone


def test_eta_moves_towards_the_mean_posterior_in_training_only() -> None:
    beta, eta, alpha = 0.5, 0.8, 0.3
    obj = build_objective("lcpo", beta=beta, lcpo_eta0=eta, lcpo_alpha=alpha)
    obj.train()
    out = obj(margin_inputs(DELTA)[0])
    w = [posterior(sig(beta * d), eta) for d in DELTA]
    new_eta = (1 - alpha) * eta + alpha * sum(w) / len(w)
    assert obj.labels.eta.item() == pytest.approx(new_eta, abs=1e-6)
    assert out.metrics["lcpo/noise_rate"].item() == pytest.approx(1 - new_eta, abs=1e-6)
    obj.eval()
    obj(margin_inputs(DELTA)[0])
    assert obj.labels.eta.item() == pytest.approx(new_eta, abs=1e-6)


def test_posterior_is_detached() -> None:
    """d loss / d policy_chosen = β·(−w·σ(−h) + (1 − w)·σ(h)) with w a constant (EM's M-step)."""
    beta, eta = 0.5, 0.9
    obj = build_objective("lcpo", beta=beta).eval()
    inp, pc = margin_inputs(DELTA, requires_grad=True)
    obj(inp).losses.sum().backward()
    expected = []
    for d in DELTA:
        w = posterior(sig(beta * d), eta)
        expected.append(beta * (-w * sig(-beta * d) + (1 - w) * sig(beta * d)))
    torch.testing.assert_close(pc.grad, torch.tensor(expected), atol=1e-6, rtol=1e-6)


def test_lcpo_with_the_ipo_link_uses_the_links_own_belief() -> None:
    """p* = σ(ℓ(−Δ) − ℓ(Δ)) for any link; for IPO that is σ((−Δ − c)² − (Δ − c)²), c = 1/(2β)."""
    beta, eta = 0.5, 0.9
    c = 1 / (2 * beta)
    obj = build_objective("lcpo", beta=beta, link="ipo").eval()
    out = obj(margin_inputs(DELTA)[0])
    expected = []
    for d in DELTA:
        lp, ln = (d - c) ** 2, (-d - c) ** 2
        w = posterior(sig(ln - lp), eta)
        expected.append(w * lp + (1 - w) * ln)
    torch.testing.assert_close(out.losses, torch.tensor(expected), atol=1e-5, rtol=1e-5)


def test_state_dict_round_trip_restores_eta() -> None:
    torch.manual_seed(0)
    obj = build_objective("lcpo", beta=1.0)
    for _ in range(5):
        obj(margin_inputs((torch.randn(8) * 3).tolist())[0])
    state = obj.state_dict()
    assert "labels.eta" in state
    assert state["labels.eta"].item() != pytest.approx(0.9)
    fresh = build_objective("lcpo", beta=1.0)
    assert fresh.labels.eta.item() == pytest.approx(0.9)
    fresh.load_state_dict(state)
    assert fresh.labels.eta.item() == obj.labels.eta.item()
    probe = margin_inputs(DELTA)[0]
    torch.testing.assert_close(fresh.eval()(probe).losses, obj.eval()(probe).losses)


def auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """P(score of a positive > score of a negative), ties ½: the Mann–Whitney U from average ranks."""
    scores = torch.cat([positive, negative]).double()
    order = torch.argsort(scores)
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.double)
    _, groups = torch.unique(scores, return_inverse=True)  # average the ranks of tied scores
    rank_sum = torch.zeros(int(groups.max()) + 1, dtype=torch.double).index_add_(0, groups, ranks)
    count = torch.zeros_like(rank_sum).index_add_(0, groups, torch.ones_like(ranks))
    ranks = (rank_sum / count)[groups]
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_auc_helper() -> None:
    assert auc(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0])) == 1.0
    assert auc(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])) == 0.0
    assert auc(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])) == 0.5
    assert auc(torch.tensor([2.0]), torch.tensor([2.0])) == 0.5


@pytest.mark.parametrize("flip_rate", [0.2, 0.35])
def test_lcpo_recovers_the_noise_rate_and_finds_flipped_pairs(flip_rate: float) -> None:
    """Bradley–Terry pairs over linear features, labels flipped at a known rate, a linear scorer."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    n, d, batch, epochs = 4000, 8, 200, 150
    theta_true = torch.randn(d, generator=gen)
    theta_true = 4.0 * theta_true / theta_true.norm()  # margins ~ N(0, 5.7²): most pairs clear-cut
    xa, xb = torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen)
    a_wins = torch.rand(n, generator=gen) < torch.sigmoid((xa - xb) @ theta_true)  # BT labels
    xw = torch.where(a_wins[:, None], xa, xb)
    xl = torch.where(a_wins[:, None], xb, xa)
    flipped = torch.rand(n, generator=gen) < flip_rate
    xw, xl = torch.where(flipped[:, None], xl, xw), torch.where(flipped[:, None], xw, xl)

    obj = build_objective("lcpo", beta=1.0)
    theta = torch.zeros(d, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=0.05)
    zero = torch.zeros(batch)
    obj.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            out = obj(PairwiseInputs(xw[idx] @ theta, xl[idx] @ theta, zero, zero))
            opt.zero_grad()
            out.loss.backward()
            opt.step()

    noise_rate = 1.0 - obj.labels.eta.item()
    true_rate = flipped.float().mean().item()
    with torch.no_grad():
        delta = (xw - xl) @ theta
        w = obj.labels.posterior(obj.link(delta), obj.link(-delta))
    score = auc(w[~flipped], w[flipped])  # clean pairs should look more trustworthy than flipped ones
    print(
        f"\nLCPO flip rate {flip_rate}: learned noise rate {noise_rate:.4f} (realised flips {true_rate:.4f}), "
        f"posterior AUC clean-vs-flipped {score:.4f}"
    )
    assert abs(noise_rate - flip_rate) < 0.05
    assert score > 0.8
