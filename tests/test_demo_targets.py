"""The demo's target verdicts (one per target, from the figures they judge) and the machine record its
timings are read against."""

from __future__ import annotations

import pytest

from mmpref.demo.run import TARGETS, format_summary, target_checks
from mmpref.machine import cpu_model, describe_machine, machine_line


def figures(gain=0.12, low=0.05, win=0.7, seconds=500.0):
    return {"gain": gain, "gain_ci95": [low, gain + 0.04], "win_rate": win, "seconds": seconds}


@pytest.mark.parametrize(("fig", "failed"), [
    (figures(), []),
    (figures(seconds=613.0), [2]),
    (figures(gain=0.099), [0]),
    (figures(low=0.0), [0]),  # the CI's low end must be above 0, not at it
    (figures(win=0.599, seconds=600.0), [1]),  # 600 s is within the limit
    (figures(win=None, gain=0.02, seconds=900.0), [0, 1, 2]),  # every comparison tied: no win rate
])
def test_each_target_is_judged_on_its_own_figure(fig, failed):
    checks = target_checks(fig)
    assert [c["target"] for c in checks] == [
        f"gain >= {TARGETS['gain_min']:.2f} with CI low > 0", "win rate >= 0.60", "<= 600 s"]
    assert [i for i, c in enumerate(checks) if not c["met"]] == failed


def test_the_summary_names_the_failed_target_and_the_machine():
    fig = figures(gain=0.115, low=0.079, win=0.854, seconds=612.6)
    checks = target_checks(fig)
    result = {**fig, "targets": {**TARGETS, "met": all(c["met"] for c in checks), "checks": checks},
              "base": {"accuracy": 0.641, "accuracy_ci95": [0.575, 0.703], "score": 0.925, "score_ci95": [0.9, 0.94]},
              "aligned": {"accuracy": 0.756, "accuracy_ci95": [0.7, 0.81], "score": 0.96, "score_ci95": [0.95, 0.97]},
              "win_rate_ci95": [0.775, 0.93], "wins": 76, "losses": 13, "ties": 379,
              "stage_seconds": {"generate": 154, "train": 323, "eval": 136},
              "eval": {"prompts": {"count": 117}, "seeds_per_prompt": 4},
              "machine": {"cpu": "AMD EPYC", "cpu_capability": "AVX2", "cores": 2, "cuda": []}}
    text = format_summary(result)
    assert "time      613 s (generate 154, train 323, eval 136) on 2 cores of AMD EPYC (AVX2)" in text
    assert ("targets   NOT all met: gain >= 0.10 with CI low > 0: met (+0.115 [+0.079, +0.155]); "
            "win rate >= 0.60: met (0.854); <= 600 s: NOT met (613 s)") in text


def test_cpu_model_from_cpuinfo_and_fallback(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: avx2\n")
    assert cpu_model(info) == "AMD EPYC 7B13"
    assert cpu_model(tmp_path / "missing") != ""  # platform's own answer where there is no /proc/cpuinfo


def test_machine_record_is_what_torch_runs_on():
    import torch

    record = describe_machine()
    assert record["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["cores"] >= 1 and record["torch"] == torch.__version__
    assert len(record["cuda"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert machine_line(record).startswith(f"{record['cores']} cores of {record['cpu']} (")
