"""What `mmpref generate` writes trains with `mmpref train` as it is: no conversion step in between."""

from __future__ import annotations

import json
import math

import pytest
import test_generate_support as support

from mmpref.cli import main


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.parametrize("strategy, objective", [("best_vs_worst", "dpo"), ("ranked", "soft_dpo")])
def test_generated_pairs_train_for_a_step(tmp_path, capsys, strategy, objective):
    model = support.build_model(tmp_path / "model")
    pairs = tmp_path / "pairs"
    summary = support.run_config(support.config_dict(model, pairs, pairing={"strategy": strategy}))
    kept = summary["pairs"]["kept"]
    assert kept >= 2
    train = support.write_train_config(tmp_path / "train.yaml", model, pairs, {"name": objective, "beta": 5000},
                                       steps=1)
    capsys.readouterr()
    code = main(["train", str(train)])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "trained" / "data_report.json").read_text())
    assert report["schema"] == "pairs" and report["used"] == kept and report["bad_rows"] == 0
    rows = [json.loads(line) for line in (tmp_path / "trained" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1]
    if strategy == "best_vs_worst":
        assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-6), "policy == reference at step 1"
    else:  # soft targets p: the step-1 loss is p·log2 + (1-p)·log2 = log 2 as well, and the targets reach the trainer
        assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
        assert 0.5 < rows[0]["labels/target_mean"] <= 1.0
