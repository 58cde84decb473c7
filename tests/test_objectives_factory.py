"""`build_objective`, the registry entries and their parameter schemas."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing

import pytest
import torch

from mmpref.errors import UserError
from mmpref.objectives import Objective, PairwiseInputs, UnpairedInputs, build_objective
from mmpref.registry import OBJECTIVES

EXPECTED = {
    "dpo",
    "ipo",
    "hinge",
    "cdpo",
    "rdpo",
    "rpo",
    "soft_dpo",
    "lcpo",
    "sympo",
    "simpo",
    "cpo",
    "kto",
    "bco",
    "npo",
}
SIMPLE = (int, float, str, bool, type(None))


def test_all_families_are_registered_with_summaries() -> None:
    assert EXPECTED <= set(OBJECTIVES.names())
    for name in EXPECTED:
        entry = OBJECTIVES.get(name)
        assert entry.summary and "\n" not in entry.summary
        assert dataclasses.is_dataclass(entry.params)


def _simple(tp: object) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return all(isinstance(a, SIMPLE) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType, list):
        return all(_simple(a) for a in typing.get_args(tp))
    return tp in SIMPLE


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_params_are_simple_documented_fields_with_defaults(name: str) -> None:
    params = OBJECTIVES.get(name).params
    hints = typing.get_type_hints(params)
    sources = "".join(inspect.getsource(c) for c in params.__mro__ if dataclasses.is_dataclass(c))
    for f in dataclasses.fields(params):
        assert f.default is not dataclasses.MISSING, f.name
        assert _simple(hints[f.name]), (f.name, hints[f.name])
        # Every field carries a comment saying what it does.
        assert any(line.strip().startswith(f"{f.name}:") and "#" in line for line in sources.splitlines()), (
            f.name
        )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_objective_builds_from_defaults_and_runs(name: str) -> None:
    torch.manual_seed(0)
    obj = build_objective(name)
    assert isinstance(obj, Objective)
    if obj.paired:
        x = torch.randn(4, 6)
        inputs = PairwiseInputs(x[0], x[1], x[2], x[3], target=torch.rand(6))
    else:
        x = torch.randn(2, 6)
        desirable = torch.zeros(6, dtype=torch.bool) if name == "npo" else torch.arange(6) % 2 == 0
        inputs = UnpairedInputs(x[0], x[1], desirable)
    out = obj(inputs)
    assert out.losses.shape == (6,) and out.losses.dtype == torch.float32
    assert torch.isfinite(out.loss)
    assert all(v.dim() == 0 and not v.requires_grad for v in out.metrics.values())


def test_overrides_reach_the_objective() -> None:
    obj = build_objective("dpo", beta=2500.0, link="hinge")
    assert obj.params.beta == 2500.0 and obj.params.link == "hinge"


def test_unknown_override_names_the_key_with_did_you_mean() -> None:
    with pytest.raises(UserError, match=r"no parameter 'betta'.*Did you mean 'beta'\?"):
        build_objective("dpo", betta=0.1)


def test_unknown_objective_has_did_you_mean() -> None:
    with pytest.raises(UserError, match=r"Did you mean 'lcpo'\?"):
        build_objective("lcp")


@pytest.mark.parametrize(
    "name,overrides,message",
    [
        ("dpo", {"beta": 0.0}, "beta"),
        ("cdpo", {"label_smoothing": 0.5}, "label_smoothing"),
        ("rdpo", {"flip_rate": 0.6}, "flip_rate"),
        ("dpo", {"label_smoothing": 0.1}, "labels: smoothing"),  # a TRL habit that would silently do nothing
        ("dpo", {"flip_rate": 0.1}, "labels: robust"),
        ("ipo", {"gamma": 0.5}, "gamma"),
        ("lcpo", {"lcpo_eta0": 0.4}, "lcpo_eta0"),
        ("kto", {"desirable_weight": -1.0}, "desirable_weight"),
    ],
)
def test_bad_values_are_user_errors(name: str, overrides: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        build_objective(name, **overrides)


def test_shortcuts_can_switch_labels_back() -> None:
    """`cdpo` with labels: hard is plain DPO; its default ε is not held against it."""
    torch.manual_seed(0)
    x = torch.randn(4, 5)
    inputs = PairwiseInputs(x[0], x[1], x[2], x[3])
    a = build_objective("cdpo", labels="hard")(inputs).losses
    b = build_objective("dpo")(inputs).losses
    torch.testing.assert_close(a, b)


def test_yaml_validation_uses_the_same_checks() -> None:
    schema = pytest.importorskip("mmpref.config.schema")
    where = schema.Where("test.yaml", "objective")
    comp = schema.resolve_component("objectives", {"name": "cdpo", "beta": 0.2}, where)
    assert comp.params.label_smoothing == 0.1 and comp.params.beta == 0.2
    assert comp.build().params.labels == "smoothing"
    with pytest.raises(UserError, match="labels: smoothing"):
        schema.resolve_component("objectives", {"name": "dpo", "label_smoothing": 0.1}, where)
    with pytest.raises(UserError, match="Did you mean 'lcpo'"):
        schema.resolve_component("objectives", {"name": "dpo", "labels": "lcp"}, where)
