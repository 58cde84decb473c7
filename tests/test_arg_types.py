"""Numeric flags of the base scripts and the CLI are range-checked when parsed: a bad value names its flag and range."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mmpref.arg_types import (
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    unit_interval,
)
from mmpref.testing.checks import load_script

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.mark.parametrize("parse, good, bad", [
    (positive_int, [("1", 1), ("7000", 7000)], ["0", "-3", "1.5", "x"]),
    (non_negative_int, [("0", 0), ("12", 12)], ["-1", "2.0"]),
    (positive_float, [("1e-3", 1e-3), ("2", 2.0)], ["0", "-1e-4", "nan", "lr"]),
    (non_negative_float, [("0", 0.0), ("45.5", 45.5)], ["-0.1", "nan"]),
    (unit_interval, [("0", 0.0), ("0.999", 0.999)], ["1", "1.5", "-0.01", "nan"]),
])
def test_types_accept_their_range_and_reject_the_rest(parse, good, bad):
    for text, value in good:
        assert parse(text) == value and type(parse(text)) is type(value)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


@pytest.mark.parametrize("script, argv, message", [
    ("train_audio_base.py", ["--ema", "1.5"], "argument --ema: 1.5 is out of range: give a number in [0, 1)"),
    ("train_audio_base.py", ["--vocoder-batch", "0"], "argument --vocoder-batch: 0 is out of range: give an integer >= 1"),
    ("train_audio_base.py", ["--text-lr", "-0.001"], "argument --text-lr: -0.001 is out of range: give a number > 0"),
    ("train_audio_base.py", ["--checkpoint-every", "0"], "argument --checkpoint-every: 0 is out of range"),
    ("train_shapes_base.py", ["--batch", "0"], "argument --batch: 0 is out of range: give an integer >= 1"),
    ("train_shapes_base.py", ["--lr", "fast"], "argument --lr: 'fast' is not a number"),
    ("train_shapes_base.py", ["--renders-per-prompt", "-2"], "argument --renders-per-prompt: -2 is out of range"),
])
def test_scripts_stop_at_parse_time_naming_the_flag(script, argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        load_script(SCRIPTS / script).parse_args(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["demo", "--train-threads", "-1"], "mmpref demo: error: argument --train-threads: -1 is out of range: give an integer >= 0"),
    (["demo", "--threads", "0"], "argument --threads: 0 is out of range: give an integer >= 1"),
    (["eval", "base=shapes_base", "--seeds", "0"], "mmpref eval: error: argument --seeds: 0 is out of range"),
    (["eval", "base=shapes_base", "--limit", "-1"], "argument --limit: -1 is out of range: give an integer >= 1"),
    (["eval", "base=shapes_base", "--processes", "two"], "argument --processes: 'two' is not an integer"),
    (["score", "--model", "shapes_truth", "-o", "s.csv", "--batch-size", "0", "x.png"], "argument --batch-size: 0"),
])
def test_cli_flags_stop_at_parse_time_naming_the_flag(argv, message, capsys):
    """Before, `eval --limit -1` read as "no usable prompt" and `eval --seeds 0` named a config key never typed."""
    from mmpref.cli import main

    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("script", ["train_audio_base.py", "train_shapes_base.py"])
def test_defaults_pass_their_own_checks(script, monkeypatch):
    """Every default is inside its flag's range (argparse does not run `type` on non-string defaults)."""
    module = load_script(SCRIPTS / script)
    actions: list[argparse.Action] = []
    parse_args = argparse.ArgumentParser.parse_args

    def capture(self, *args, **kwargs):
        actions.extend(self._actions)
        return parse_args(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    parsed = module.parse_args([])
    checked = {a.dest: a.type for a in actions if getattr(a.type, "__module__", "").endswith("arg_types")}
    assert len(checked) >= 15
    for dest, parse in checked.items():
        value = getattr(parsed, dest)
        for v in value if isinstance(value, list) else [value]:
            if v is not None:
                parse(str(v))
