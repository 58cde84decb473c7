"""Pairwise losses against their formulas, written out by hand with `math` (not the implementation)."""

from __future__ import annotations

import math

import pytest
import torch

from mmpref.objectives import PairwiseInputs, build_objective

# A 3-pair example used throughout: Δ = (pc − rc) − (pr − rr) = [0.3, −0.8, 1.5].
PC = [-1.0, -2.0, -0.5]
PR = [-1.5, -1.0, -3.0]
RC = [-1.2, -1.8, -1.0]
RR = [-1.4, -1.6, -2.0]
DELTA = [(pc - rc) - (pr - rr) for pc, pr, rc, rr in zip(PC, PR, RC, RR)]
BETA = 0.5


def neg_logsig(x: float) -> float:
    """−log σ(x) in plain math."""
    return math.log1p(math.exp(-x))


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def inputs(**extra: object) -> PairwiseInputs:
    t = torch.tensor
    return PairwiseInputs(
        policy_chosen=t(PC), policy_rejected=t(PR), reference_chosen=t(RC), reference_rejected=t(RR), **extra
    )


def assert_close(actual: torch.Tensor, expected: list[float], tol: float = 1e-5) -> None:
    assert actual.dtype == torch.float32
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=torch.float32), atol=tol, rtol=tol)


def test_example_margins_are_what_the_comment_says() -> None:
    assert DELTA == pytest.approx([0.3, -0.8, 1.5])


def test_dpo_matches_formula() -> None:
    out = build_objective("dpo", beta=BETA)(inputs())
    assert_close(out.losses, [neg_logsig(BETA * d) for d in DELTA])
    assert out.loss.item() == pytest.approx(sum(neg_logsig(BETA * d) for d in DELTA) / 3, abs=1e-6)


def test_dpo_at_reference_is_exactly_log2() -> None:
    torch.manual_seed(0)
    logp = torch.randn(2, 64) * 10
    obj = build_objective("dpo", beta=0.1)
    out = obj(PairwiseInputs(logp[0], logp[1], logp[0].clone(), logp[1].clone()))
    log2 = torch.tensor(math.log(2.0), dtype=torch.float32)
    assert torch.equal(out.losses, log2.expand(64))
    assert torch.equal(out.loss, log2)


def test_ipo_matches_trl_formula() -> None:
    out = build_objective("ipo", beta=BETA)(inputs())
    assert_close(out.losses, [(d - 1 / (2 * BETA)) ** 2 for d in DELTA])


def test_ipo_averages_over_tokens_when_lengths_are_given() -> None:
    lc, lr = [2.0, 4.0, 5.0], [3.0, 1.0, 2.0]
    delta = [(pc - rc) / a - (pr - rr) / b for pc, pr, rc, rr, a, b in zip(PC, PR, RC, RR, lc, lr)]
    out = build_objective("ipo", beta=BETA)(
        inputs(chosen_lengths=torch.tensor(lc), rejected_lengths=torch.tensor(lr))
    )
    assert_close(out.losses, [(d - 1 / (2 * BETA)) ** 2 for d in delta])


def test_hinge_matches_slic_formula() -> None:
    out = build_objective("hinge", beta=BETA)(inputs())
    assert_close(out.losses, [max(0.0, 1 - BETA * d) for d in DELTA])


def test_sympo_matches_symmetric_sigmoid_formula() -> None:
    out = build_objective("sympo", beta=BETA)(inputs())
    assert_close(out.losses, [1 - sig(BETA * d) for d in DELTA])
    flipped = build_objective("sympo", beta=BETA)(
        PairwiseInputs(torch.tensor(PR), torch.tensor(PC), torch.tensor(RR), torch.tensor(RC))
    )
    torch.testing.assert_close(out.losses + flipped.losses, torch.ones(3))  # ℓ(h) + ℓ(−h) = 1


def test_sympo_noisy_gradient_is_the_clean_one_scaled_by_one_minus_two_eps() -> None:
    """With labels flipped at rate ε the expected gradient is (1 − 2ε) × the clean one at every margin."""
    eps, beta = 0.3, 1.0
    delta = torch.tensor([-2.0, -0.3, 0.0, 0.7, 3.0])
    grads = {}
    for name in ("sympo", "dpo"):
        obj = build_objective(name, beta=beta, reference_free=True)
        for flipped in (False, True):
            d = delta.clone().requires_grad_(True)
            pc, pr = (-d, torch.zeros(5)) if flipped else (d, torch.zeros(5))
            obj(PairwiseInputs(pc, pr)).losses.sum().backward()
            grads[name, flipped] = d.grad
    for name in ("sympo", "dpo"):
        noisy = (1 - eps) * grads[name, False] + eps * grads[name, True]
        ratio = noisy / grads[name, False]
        if name == "sympo":
            torch.testing.assert_close(ratio, torch.full_like(ratio, 1 - 2 * eps))
        else:  # DPO: the flipped pairs pull hardest where the model already agrees with the truth
            assert ratio[-1] < 0 < ratio[0], ratio


def test_cdpo_is_label_smoothing() -> None:
    eps = 0.2
    out = build_objective("cdpo", beta=BETA, label_smoothing=eps)(inputs())
    assert_close(out.losses, [(1 - eps) * neg_logsig(BETA * d) + eps * neg_logsig(-BETA * d) for d in DELTA])


def test_rdpo_matches_formula() -> None:
    eps = 0.2
    out = build_objective("rdpo", beta=BETA, flip_rate=eps)(inputs())
    expected = [
        ((1 - eps) * neg_logsig(BETA * d) - eps * neg_logsig(-BETA * d)) / (1 - 2 * eps) for d in DELTA
    ]
    assert_close(out.losses, expected)


def test_rdpo_is_unbiased_under_random_flips_and_dpo_is_not() -> None:
    torch.manual_seed(0)
    eps, beta, pairs, draws = 0.2, 1.0, 16, 20_000
    delta = torch.randn(pairs) + 1.5  # clean margins, mostly positive: flips matter
    # A flipped pair swaps chosen and rejected, so its margin changes sign.
    flips = torch.rand(draws, pairs) < eps
    noisy = torch.where(flips, -delta, delta).reshape(-1)
    zeros = torch.zeros_like(noisy)
    rdpo = build_objective("rdpo", beta=beta, flip_rate=eps, reference_free=True)
    dpo = build_objective("dpo", beta=beta, reference_free=True)
    rdpo_mean = rdpo(PairwiseInputs(noisy, zeros)).loss.item()
    dpo_mean = dpo(PairwiseInputs(noisy, zeros)).loss.item()
    clean_mean = dpo(PairwiseInputs(delta, torch.zeros(pairs))).loss.item()
    assert abs(rdpo_mean - clean_mean) < 0.02, (rdpo_mean, clean_mean)
    assert abs(dpo_mean - clean_mean) > 0.15, (dpo_mean, clean_mean)


def test_rpo_adds_nll_of_chosen() -> None:
    alpha = 0.7
    lengths = [2.0, 4.0, 5.0]
    out = build_objective("rpo", beta=BETA, nll_alpha=alpha)(
        inputs(chosen_lengths=torch.tensor(lengths), rejected_lengths=torch.ones(3))
    )
    expected = [neg_logsig(BETA * d) + alpha * (-pc / n) for d, pc, n in zip(DELTA, PC, lengths)]
    assert_close(out.losses, expected)
    assert out.metrics["nll_loss"].item() == pytest.approx(
        sum(-pc / n for pc, n in zip(PC, lengths)) / 3, abs=1e-6
    )


def test_soft_targets_and_ties() -> None:
    p = [0.8, 0.5, 1.0]  # the middle pair is a tie
    out = build_objective("soft_dpo", beta=BETA)(inputs(target=torch.tensor(p)))
    assert_close(
        out.losses, [q * neg_logsig(BETA * d) + (1 - q) * neg_logsig(-BETA * d) for q, d in zip(p, DELTA)]
    )
    # A tie's loss is symmetric in chosen/rejected: swapping the pair changes nothing.
    swapped = PairwiseInputs(
        torch.tensor(PR), torch.tensor(PC), torch.tensor(RR), torch.tensor(RC), target=torch.tensor(p)
    )
    tie = build_objective("soft_dpo", beta=BETA)(swapped).losses[1]
    assert tie.item() == pytest.approx(out.losses[1].item(), abs=1e-6)


def test_soft_labels_need_targets_in_range() -> None:
    from mmpref.errors import UserError

    with pytest.raises(UserError, match="target"):
        build_objective("soft_dpo")(inputs())
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        build_objective("soft_dpo")(inputs(target=torch.tensor([0.5, 1.2, 0.0])))


def test_weights_multiply_each_pair() -> None:
    w = [2.0, 0.0, 0.5]
    out = build_objective("dpo", beta=BETA)(inputs(weight=torch.tensor(w)))
    assert_close(out.losses, [wi * neg_logsig(BETA * d) for wi, d in zip(w, DELTA)])


def _ipo(d: float) -> float:
    return (d - 1 / (2 * BETA)) ** 2


def _hinge(d: float) -> float:
    return max(0.0, 1 - BETA * d)


def _symmetric(d: float) -> float:
    return 1 - sig(BETA * d)


@pytest.mark.parametrize("link,ell", [("ipo", _ipo), ("hinge", _hinge), ("symmetric", _symmetric)])
@pytest.mark.parametrize("labels", ["smoothing", "robust", "soft"])
def test_labels_compose_with_any_link(link: str, labels: str, ell) -> None:
    """a·ℓ(Δ) + b·ℓ(−Δ), times the pair weight, for a non-DPO link."""
    eps, p, w = 0.2, [0.9, 0.3, 0.6], [1.0, 2.0, 0.5]
    extra = {"smoothing": {"label_smoothing": eps}, "robust": {"flip_rate": eps}, "soft": {}}[labels]
    obj = build_objective("dpo", link=link, beta=BETA, labels=labels, **extra)
    out = obj(inputs(target=torch.tensor(p), weight=torch.tensor(w)))
    coeffs = {
        "smoothing": [(1 - eps, eps)] * 3,
        "robust": [((1 - eps) / (1 - 2 * eps), -eps / (1 - 2 * eps))] * 3,
        "soft": [(q, 1 - q) for q in p],
    }[labels]
    expected = [wi * (a * ell(d) + b * ell(-d)) for wi, (a, b), d in zip(w, coeffs, DELTA)]
    assert_close(out.losses, expected)


@pytest.mark.parametrize(
    "name,extra",
    [
        ("dpo", {}),
        ("ipo", {}),
        ("hinge", {}),
        ("sympo", {}),
        ("cdpo", {}),
        ("rdpo", {}),
        ("rpo", {}),
        ("soft_dpo", {"target": [0.8, 0.7, 0.9]}),
        ("lcpo", {}),
        ("simpo", {}),
        ("cpo", {}),
    ],
)
def test_raising_chosen_lowers_the_loss_and_raising_rejected_raises_it(name: str, extra: dict) -> None:
    # Small margins (Δ in [-0.4, 0.3]): inside every link's active region (hinge, IPO's target 1/(2β)).
    pc = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    pr = torch.tensor([-1.1, -1.6, -0.6], requires_grad=True)
    ref = torch.tensor([-1.0, -2.0, -0.5])
    target = torch.tensor(extra["target"]) if "target" in extra else None
    obj = build_objective(name, beta=BETA)
    obj(PairwiseInputs(pc, pr, ref, ref.clone(), target=target)).loss.backward()
    assert (pc.grad < 0).all(), pc.grad
    assert (pr.grad > 0).all(), pr.grad


def test_metrics_use_trl_names_and_values() -> None:
    pc, pr, rc, rr = (
        [-1.0, -2.0, -0.5, -1.0],
        [-1.5, -1.0, -3.0, -1.0],
        [-1.2, -1.8, -1.0, -1.0],
        [-1.4, -1.6, -2.0, -1.0],
    )
    out = build_objective("dpo", beta=BETA)(
        PairwiseInputs(torch.tensor(pc), torch.tensor(pr), torch.tensor(rc), torch.tensor(rr))
    )
    cr = [BETA * (a - b) for a, b in zip(pc, rc)]
    rj = [BETA * (a - b) for a, b in zip(pr, rr)]
    m = {k: v.item() for k, v in out.metrics.items()}
    assert m["rewards/chosen"] == pytest.approx(sum(cr) / 4, abs=1e-6)
    assert m["rewards/rejected"] == pytest.approx(sum(rj) / 4, abs=1e-6)
    assert m["rewards/margins"] == pytest.approx(sum(c - r for c, r in zip(cr, rj)) / 4, abs=1e-6)
    # Strict >: the last pair is a tie (both rewards 0) and does not count.
    assert m["rewards/accuracies"] == pytest.approx(sum(c > r for c, r in zip(cr, rj)) / 4)
    assert m["rewards/accuracies"] == pytest.approx(0.5)
    assert m["logps/chosen"] == pytest.approx(sum(pc) / 4, abs=1e-6)
    assert m["logps/rejected"] == pytest.approx(sum(pr) / 4, abs=1e-6)
    for v in out.metrics.values():
        assert v.dim() == 0 and not v.requires_grad


def test_bf16_inputs_compute_in_float32() -> None:
    base = inputs()
    bf = PairwiseInputs(
        *(
            getattr(base, k).to(torch.bfloat16)
            for k in ("policy_chosen", "policy_rejected", "reference_chosen", "reference_rejected")
        )
    )
    out = build_objective("dpo", beta=BETA)(bf)
    assert out.losses.dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in out.metrics.values())
    torch.testing.assert_close(
        out.losses, build_objective("dpo", beta=BETA)(base).losses, atol=0.02, rtol=0.02
    )


def test_missing_reference_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="reference"):
        build_objective("dpo")(PairwiseInputs(torch.zeros(2), torch.zeros(2)))


def test_mismatched_shapes_name_the_field() -> None:
    with pytest.raises(ValueError, match="policy_rejected"):
        build_objective("dpo")(PairwiseInputs(torch.zeros(2), torch.zeros(3), torch.zeros(2), torch.zeros(2)))
