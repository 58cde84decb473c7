"""KTO, BCO and NPO against their formulas, written out by hand with `math`."""

from __future__ import annotations

import math

import pytest
import torch

from mmpref.objectives import UnpairedInputs, build_objective

POLICY = [-1.0, -2.0, -0.5, -3.0]
REFERENCE = [-1.5, -1.8, -1.0, -2.0]
DESIRABLE = [True, False, True, False]
R = [p - q for p, q in zip(POLICY, REFERENCE)]  # [0.5, -0.2, 0.5, -1.0]


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def neg_logsig(x: float) -> float:
    return math.log1p(math.exp(-x))


def unpaired(policy=POLICY, reference=REFERENCE, desirable=DESIRABLE, **extra) -> UnpairedInputs:
    return UnpairedInputs(
        policy=torch.tensor(policy) if not isinstance(policy, torch.Tensor) else policy,
        reference=torch.tensor(reference),
        desirable=torch.tensor(desirable),
        **extra,
    )


def close(actual: torch.Tensor, expected: list[float]) -> None:
    assert actual.dtype == torch.float32
    torch.testing.assert_close(actual, torch.tensor(expected), atol=1e-6, rtol=1e-6)


def kto_expected(beta: float, z0: float, lam_d: float, lam_u: float) -> list[float]:
    return [
        lam_d * (1 - sig(beta * (r - z0))) if good else lam_u * (1 - sig(beta * (z0 - r)))
        for r, good in zip(R, DESIRABLE)
    ]


def test_kto_with_kl_estimates() -> None:
    beta, lam_d, lam_u = 0.5, 1.5, 0.7
    klp, klr = [-1.0, -2.0, -3.0, -1.0], [-1.6, -2.1, -3.4, -1.5]
    z0 = max(0.0, sum(a - b for a, b in zip(klp, klr)) / 4)  # 0.375
    obj = build_objective("kto", beta=beta, desirable_weight=lam_d, undesirable_weight=lam_u)
    out = obj(unpaired(kl_policy=torch.tensor(klp), kl_reference=torch.tensor(klr)))
    close(out.losses, kto_expected(beta, z0, lam_d, lam_u))
    assert out.metrics["kl"].item() == pytest.approx(z0, abs=1e-6)
    assert out.metrics["rewards/chosen"].item() == pytest.approx(beta * (R[0] + R[2]) / 2, abs=1e-6)
    assert out.metrics["rewards/rejected"].item() == pytest.approx(beta * (R[1] + R[3]) / 2, abs=1e-6)
    assert out.metrics["logps/chosen"].item() == pytest.approx((POLICY[0] + POLICY[2]) / 2, abs=1e-6)


def test_kto_reference_point_is_clamped_at_zero() -> None:
    klp, klr = [-1.0, -2.0, -3.0, -1.0], [-0.6, -2.1, -2.4, -1.5]  # mean difference < 0
    out = build_objective("kto", beta=0.5)(
        unpaired(kl_policy=torch.tensor(klp), kl_reference=torch.tensor(klr))
    )
    close(out.losses, kto_expected(0.5, 0.0, 1.0, 1.0))
    assert out.metrics["kl"].item() == 0.0


def test_kto_falls_back_to_the_batch_mean_log_ratio() -> None:
    policy = [-1.0, -2.0, -0.5, -1.5]  # r = [0.5, -0.2, 0.5, 0.5], mean 0.325
    r = [p - q for p, q in zip(policy, REFERENCE)]
    z0 = max(0.0, sum(r) / 4)
    out = build_objective("kto", beta=0.5)(unpaired(policy=policy))
    expected = [1 - sig(0.5 * (x - z0)) if good else 1 - sig(0.5 * (z0 - x)) for x, good in zip(r, DESIRABLE)]
    close(out.losses, expected)
    assert out.metrics["kl"].item() == pytest.approx(z0, abs=1e-6)


def test_kto_gradient_signs_and_detached_reference_point() -> None:
    policy = torch.tensor(POLICY, requires_grad=True)
    beta = 0.5
    build_objective("kto", beta=beta)(unpaired(policy=policy)).losses.sum().backward()
    # z0 is detached: each sample's gradient is its own −λβσ'(·) (desirable) or +λβσ'(·) (undesirable).
    z0 = max(0.0, sum(R) / 4)
    expected = []
    for r, good in zip(R, DESIRABLE):
        s = sig(beta * (r - z0)) if good else sig(beta * (z0 - r))
        expected.append(-beta * s * (1 - s) if good else beta * s * (1 - s))
    torch.testing.assert_close(policy.grad, torch.tensor(expected), atol=1e-6, rtol=1e-6)
    assert (policy.grad[torch.tensor(DESIRABLE)] < 0).all()
    assert (policy.grad[~torch.tensor(DESIRABLE)] > 0).all()


def test_bco_loss_and_running_mean_baseline() -> None:
    beta = 0.5
    obj = build_objective("bco", beta=beta)
    obj.train()
    out = obj(unpaired())
    rewards1 = [beta * r for r in R]
    delta = sum(rewards1) / 4
    expected = [
        neg_logsig(x - delta) if good else neg_logsig(-(x - delta)) for x, good in zip(rewards1, DESIRABLE)
    ]
    close(out.losses, expected)
    assert out.metrics["delta"].item() == pytest.approx(delta, abs=1e-6)

    # A second batch of a different size: δ is the mean of all 6 rewards seen, not an average of means.
    policy2, reference2 = [0.0, 1.0], [-1.0, -1.0]
    obj(unpaired(policy=policy2, reference=reference2, desirable=[True, False]))
    rewards2 = [beta * (p - q) for p, q in zip(policy2, reference2)]
    assert obj.reward_mean.item() == pytest.approx(sum(rewards1 + rewards2) / 6, abs=1e-6)
    assert obj.reward_count.item() == 6

    # Eval mode uses δ and leaves it alone.
    obj.eval()
    before = obj.reward_mean.item()
    obj(unpaired())
    assert obj.reward_mean.item() == before


def test_bco_baseline_is_checkpointed() -> None:
    obj = build_objective("bco", beta=0.5)
    obj(unpaired())
    state = obj.state_dict()
    assert set(state) >= {"reward_mean", "reward_count"}
    fresh = build_objective("bco", beta=0.5)
    fresh.load_state_dict(state)
    assert fresh.reward_mean.item() == obj.reward_mean.item()
    assert fresh.reward_count.item() == obj.reward_count.item() == 4


def test_bco_gradient_signs() -> None:
    policy = torch.tensor(POLICY, requires_grad=True)
    build_objective("bco")(unpaired(policy=policy)).losses.sum().backward()
    assert (policy.grad[torch.tensor(DESIRABLE)] < 0).all()
    assert (policy.grad[~torch.tensor(DESIRABLE)] > 0).all()


def test_npo_matches_formula_and_pushes_likelihood_down() -> None:
    beta = 0.5
    undesirable = [False] * 4
    policy = torch.tensor(POLICY, requires_grad=True)
    out = build_objective("npo", beta=beta)(unpaired(policy=policy, desirable=undesirable))
    close(out.losses, [(2 / beta) * neg_logsig(-beta * r) for r in R])
    out.loss.backward()
    assert (policy.grad > 0).all()  # raising the likelihood of a negative raises the loss
    assert out.metrics["rewards/rejected"].item() == pytest.approx(beta * sum(R) / 4, abs=1e-6)
    assert "rewards/chosen" not in out.metrics


def test_npo_retain_samples_add_nll_only_when_weighted() -> None:
    beta = 0.5
    plain = build_objective("npo", beta=beta)(unpaired())
    close(
        plain.losses, [0.0 if good else (2 / beta) * neg_logsig(-beta * r) for r, good in zip(R, DESIRABLE)]
    )
    lengths = [2.0, 1.0, 5.0, 1.0]
    rt = build_objective("npo", beta=beta, retain_weight=0.5)(unpaired(lengths=torch.tensor(lengths)))
    expected = [
        0.5 * (-p / n) if good else (2 / beta) * neg_logsig(-beta * r)
        for p, n, r, good in zip(POLICY, lengths, R, DESIRABLE)
    ]
    close(rt.losses, expected)


def test_unpaired_weights_multiply() -> None:
    w = [1.0, 2.0, 0.0, 0.5]
    base = build_objective("kto")(unpaired()).losses
    weighted = build_objective("kto")(unpaired(weight=torch.tensor(w))).losses
    torch.testing.assert_close(weighted, base * torch.tensor(w))
