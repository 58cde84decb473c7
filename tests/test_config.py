"""Config validation: every user error is one clear line naming file and key; overrides apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from mmpref.config import REQUIRED, apply_overrides, build_dataclass, read_yaml, to_plain
from mmpref.config.schema import Where
from mmpref.errors import ConfigError


@dataclass
class Inner:
    lr: float = 1e-4
    steps: int = 10
    precision: Literal["no", "fp16", "bf16"] = "no"
    targets: list[str] = field(default_factory=lambda: ["to_q", "to_k"])


@dataclass
class Outer:
    path: str = REQUIRED
    inner: Inner = field(default_factory=Inner)
    note: str | None = None


@dataclass
class Source:
    url: str = REQUIRED
    split: str = "train"


@dataclass
class WithSection:
    source: Source = field(default_factory=Source)


def build(data: dict) -> Outer:
    return build_dataclass(Outer, data, Where("cfg.yaml"))


def test_valid_config_converts_types():
    cfg = build({"path": "x", "inner": {"lr": "1e-5", "steps": 3, "precision": "bf16", "targets": ["a"]}})
    assert cfg.inner.lr == pytest.approx(1e-5) and cfg.inner.steps == 3 and cfg.inner.targets == ["a"]
    assert to_plain(cfg)["inner"]["precision"] == "bf16"


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"path": "x", "inner": {"lrr": 1}}, "cfg.yaml: inner.lrr: unknown key. Did you mean 'lr'?"),
        ({"path": "x", "inner": {"steps": "ten"}}, "cfg.yaml: inner.steps: expected an integer, got 'ten'"),
        ({"path": "x", "inner": {"steps": 2.5}}, "inner.steps: expected an integer"),
        ({"path": "x", "inner": {"precision": "bf61"}}, "inner.precision: 'bf61' is not one of 'no', 'fp16', 'bf16'. Did you mean 'bf16'?"),
        ({"path": "x", "inner": {"targets": "to_q"}}, "inner.targets: expected a list"),
        ({"path": "x", "inner": 3}, "inner: expected a mapping"),
        ({}, "cfg.yaml: path: required key is missing: set it in the config or pass `path=...`."),
        ({"path": "x", "inner": {"lr": True}}, "inner.lr: expected a number, got True"),
    ],
)
def test_user_errors_name_file_and_key(data, expected):
    with pytest.raises(ConfigError) as info:
        build(data)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_overrides_set_nested_values_and_expand_shorthand():
    data = {"objective": "dpo", "training": {"lr": 1.0}}
    out = apply_overrides(data, ["training.lr=1e-5", "objective.beta=0.5", "new.deep.key=[1, 2]"], "f")
    assert out["training"]["lr"] == pytest.approx(1e-5)
    assert out["objective"] == {"name": "dpo", "beta": 0.5}
    assert out["new"]["deep"]["key"] == [1, 2]
    assert data["training"]["lr"] == 1.0, "the original mapping must not change"


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        apply_overrides({}, ["training.lr"], "f")
    with pytest.raises(ConfigError, match="training is a value, not a section"):
        apply_overrides({"training": 3}, ["training.lr=1"], "f")


def test_overrides_index_lists():
    data = {"scorers": [{"label": "truth", "scorer": {"name": "audio_truth"}, "min_margin": 0.1}, {"label": "b"}],
            "steps": [5, 25]}
    out = apply_overrides(data, ["scorers.0.scorer.name=audio_event_detector", "scorers.1.min_margin=0.2",
                                 "steps.1=50", "scorers.0.scorer=clap"], "f")
    assert out["scorers"][0] == {"label": "truth", "scorer": "clap", "min_margin": 0.1}
    assert out["scorers"][1] == {"label": "b", "min_margin": 0.2} and out["steps"] == [5, 50]
    out = apply_overrides(data, ["scorers.0.scorer.name=audio_event_detector"], "f")
    assert out["scorers"][0]["scorer"] == {"name": "audio_event_detector"}
    assert data["scorers"][0]["scorer"]["name"] == "audio_truth", "the original mapping must not change"
    with pytest.raises(ConfigError, match=r"scorers has 2 items \(positions 0 to 1\), not 2"):
        apply_overrides(data, ["scorers.2.min_margin=0"], "f")
    with pytest.raises(ConfigError, match="scorers is a list; give an item's position, e.g. scorers.0 for the first"):
        apply_overrides(data, ["scorers.truth.min_margin=0"], "f")
    with pytest.raises(ConfigError, match="steps.0 is a value, not a section"):
        apply_overrides(data, ["steps.0.x=1"], "f")


def test_yaml_syntax_error_names_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: bandit\ntraining:\n  lr: [1, 2\n")
    with pytest.raises(ConfigError) as info:
        read_yaml(bad)
    assert str(bad) in str(info.value) and "YAML syntax error" in str(info.value)
    assert ":4:" in str(info.value) or ":3:" in str(info.value)


def test_an_omitted_section_still_needs_its_required_keys():
    """Leaving out `source:` entirely must not smuggle its required `url` through as the sentinel."""
    with pytest.raises(ConfigError) as info:
        build_dataclass(WithSection, {}, Where("cfg.yaml"))
    assert "cfg.yaml: source.url: required key is missing" in str(info.value)
    with pytest.raises(ConfigError, match="source.url: required key is missing"):
        build_dataclass(WithSection, {"source": {"split": "test"}}, Where("cfg.yaml"))
    ok = build_dataclass(WithSection, {"source": {"url": "u"}}, Where("cfg.yaml"))
    assert ok.source.url == "u" and ok.source.split == "train"
