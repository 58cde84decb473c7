"""The label-noise benchmark flips exactly the share of pairs it says, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from mmpref.testing.checks import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_label_noise.py"


def _pairs(folder: Path, n: int) -> None:
    rows = {
        "prompt": [f"prompt {i}" for i in range(n)],
        "chosen": [f"good_{i}.png" for i in range(n)],
        "rejected": [f"bad_{i}.png" for i in range(n)],
        "chosen_score": [1.0 + i for i in range(n)],
        "rejected_score": [float(i) for i in range(n)],
        "chosen_seed": list(range(n)),
        "rejected_seed": [100 + i for i in range(n)],
    }
    folder.mkdir(parents=True)
    datasets.Dataset.from_dict(rows).to_parquet(str(folder / "pairs.parquet"))


def test_flip_pairs_swaps_a_seeded_share_of_rows_whole(tmp_path):
    bench = load_script(SCRIPT)
    _pairs(tmp_path / "clean", 20)

    info = bench.flip_pairs(tmp_path / "clean", tmp_path / "noisy", rate=0.3, seed=0)
    assert info == {"rows": 20, "flipped": 6}

    noisy = datasets.load_dataset("parquet", data_files=str(tmp_path / "noisy" / "pairs.parquet"), split="train")
    flipped = [i for i, row in enumerate(noisy) if row["chosen"].startswith("bad_")]
    assert len(flipped) == 6
    for i, row in enumerate(noisy):
        assert row["prompt"] == f"prompt {i}"  # order and prompts kept
        swapped = i in flipped
        # every paired column moves with its sample: the chosen file keeps its own score and seed
        assert row["chosen"] == (f"bad_{i}.png" if swapped else f"good_{i}.png")
        assert row["rejected"] == (f"good_{i}.png" if swapped else f"bad_{i}.png")
        assert row["chosen_score"] == (float(i) if swapped else 1.0 + i)
        assert row["chosen_seed"] == (100 + i if swapped else i)
        assert (row["chosen_score"] < row["rejected_score"]) == swapped

    # the same seed flips the same rows; another seed, others
    again = bench.flip_pairs(tmp_path / "clean", tmp_path / "again", rate=0.3, seed=0)
    other = bench.flip_pairs(tmp_path / "clean", tmp_path / "other", rate=0.3, seed=1)
    assert again == other == info
    read = lambda d: datasets.load_dataset("parquet", data_files=str(d / "pairs.parquet"), split="train")["chosen"]  # noqa: E731
    assert read(tmp_path / "again") == noisy["chosen"]
    assert read(tmp_path / "other") != noisy["chosen"]


def test_kept_share_and_its_bootstrap_interval_match_hand_computation(tmp_path):
    import numpy as np

    bench = load_script(SCRIPT)
    # 3 prompts x 2 seeds of 0/1 correctness; per-prompt gains: clean (0.5, 1, 0), noisy (0.5, 0, -0.5)
    base = np.array([[0, 0], [0, 0], [1, 0]], dtype=float)
    clean = np.array([[1, 0], [1, 1], [1, 0]], dtype=float)
    noisy = np.array([[0, 1], [0, 0], [0, 0]], dtype=float)
    # resamples: all prompts; prompt 0 thrice; prompt 2 thrice (clean gain 0: undefined); prompts 1, 1, 0
    idx = np.array([[0, 1, 2], [0, 0, 0], [2, 2, 2], [1, 1, 0]])
    out = bench.kept_ci(base, clean, noisy, idx)
    assert out["kept"] == 0.0 / 1.5  # mean noisy gain 0 over mean clean gain 0.5
    assert out["undefined"] == 1
    ratios = [0.0, 1.0, 0.5 / 2.5]  # (0 / 1.5), (1.5 / 1.5), ((0 + 0 + 0.5) / (1 + 1 + 0.5))
    assert out["ci95"] == pytest.approx([np.percentile(ratios, 2.5), np.percentile(ratios, 97.5)])

    # per model [prompts, seeds] correctness read back from an eval's samples.jsonl
    rows = [{"model": m, "prompt_row": p, "sample": s, "shapes_truth": v}
            for m, values in (("base", base), ("clean", clean))
            for p in range(3) for s in range(2) for v in [float(values[p, s])]]
    rows[0]["shapes_truth"] = 0.99  # below the threshold: not correct
    (tmp_path / "samples.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    acc = bench.accuracy_by_model(tmp_path / "samples.jsonl", "shapes_truth", 1.0)
    assert set(acc) == {"base", "clean"}
    np.testing.assert_array_equal(acc["base"], base)
    np.testing.assert_array_equal(acc["clean"], clean)
