"""`mmpref score`: a folder with one corrupt image scores the rest and reports the bad one; datasets,
output formats and bad input give one clear line."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmpref.commands import score as score_command
from mmpref.errors import UserError
from mmpref.reward_models import testing as tiny

PROMPTS = ["a red cat", "two dogs", "a blue square", "a cat and a dog", "a table"]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> str:
    return tiny.make_hf_clip(tmp_path_factory.mktemp("score_cli") / "pickscore")


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (40 + i, 48, 3), dtype=np.uint8)).save(images / f"{i:02d}.png")
    (images / "02.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # the corrupt one
    (images / "notes.md").write_text("not an image, ignored")
    (tmp_path / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    return images


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mmpref")
    score_command.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["score", *argv])


def test_folder_with_a_corrupt_image(folder, clip_dir, capsys):
    out = folder.parent / "scores.parquet"
    args = parse(str(folder), "--model", "pickscore,brightness", "--prompts", str(folder.parent / "prompts.txt"),
                 "--weights", f"pickscore={clip_dir}", "--out", str(out), "--batch-size", "2", "--no-progress")
    assert score_command.run(args) == 0
    captured = capsys.readouterr()
    table = pd.read_parquet(out)
    assert len(table) == 4 and "02.png" not in " ".join(table["path"])
    assert list(table.columns) == ["path", "prompt", "pickscore", "brightness"]
    assert table["prompt"].tolist() == [PROMPTS[i] for i in (0, 1, 3, 4)]  # prompts stay matched to sorted files
    assert np.isfinite(table[["pickscore", "brightness"]].to_numpy()).all()
    assert "scored 4 of 5" in captured.out and "1 unreadable" in captured.out
    assert "unreadable:" in captured.err and "02.png" in captured.err
    assert "pickscore" in captured.out and "95% CI" in captured.out


def test_dataset_with_image_bytes_and_prompt_column(tmp_path, clip_dir, capsys):
    rng = np.random.default_rng(1)
    cells = []
    for i in range(3):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, format="PNG")
        cells.append({"bytes": buffer.getvalue(), "path": f"img{i}.png"})
    pd.DataFrame({"chosen": cells, "caption": PROMPTS[:3]}).to_parquet(tmp_path / "pairs.parquet")
    out = tmp_path / "s.jsonl"
    args = parse(str(tmp_path / "pairs.parquet"), "--model", "pickscore", "--image-column", "chosen",
                 "--prompt-column", "caption", "--weights", f"pickscore={clip_dir}", "--out", str(out), "--no-progress")
    assert score_command.run(args) == 0
    rows = pd.read_json(out, lines=True)
    assert rows["path"].tolist() == ["img0.png", "img1.png", "img2.png"] and rows["prompt"].tolist() == PROMPTS[:3]
    with pytest.raises(UserError, match="no column 'image'.*Columns: chosen, caption"):
        score_command.run(parse(str(tmp_path / "pairs.parquet"), "--model", "brightness", "--out", str(out)))


def test_bad_input_is_one_clear_line(folder, tmp_path):
    prompts = str(folder.parent / "prompts.txt")
    with pytest.raises(UserError, match=r"--out must end in \.csv, \.jsonl, \.parquet"):
        score_command.run(parse(str(folder), "--model", "brightness", "--out", str(tmp_path / "s.xlsx")))
    with pytest.raises(UserError, match="Did you mean 'brightness'"):
        score_command.run(parse(str(folder), "--model", "brightnes", "--out", str(tmp_path / "s.csv")))
    with pytest.raises(UserError, match="'pickscor' is not one of --model"):
        score_command.run(parse(str(folder), "--model", "brightness", "--weights", "pickscor=/x",
                                "--out", str(tmp_path / "s.csv")))
    (tmp_path / "short.txt").write_text("only one\n")
    with pytest.raises(UserError, match="1 lines but there are 5 inputs"):
        score_command.run(parse(str(folder), "--model", "brightness", "--prompts", str(tmp_path / "short.txt"),
                                "--out", str(tmp_path / "s.csv"), "--no-progress"))
    with pytest.raises(UserError, match="does not exist"):
        score_command.run(parse(str(tmp_path / "nowhere"), "--model", "brightness", "--prompts", prompts,
                                "--out", str(tmp_path / "s.csv")))


def test_through_the_mmpref_cli(folder, tmp_path):
    out = tmp_path / "scores.csv"  # a procedural scorer keeps the subprocess light (no transformers import)
    ok = subprocess.run([sys.executable, "-m", "mmpref", "score", str(folder), "--model", "brightness",
                         "--prompts", str(folder.parent / "prompts.txt"), "--out", str(out)],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert len(pd.read_csv(out)) == 4 and "02.png" in ok.stderr and "scored 4 of 5" in ok.stdout
    assert "scoring: 100%" in ok.stderr and "5/5" in ok.stderr  # the progress bar, on stderr


def test_list_file_csv_and_the_printed_summary(folder, tmp_path, capsys):
    listing = tmp_path / "list.txt"
    listing.write_text("# chosen images\nimages/00.png\nimages/03.png\n\nimages/04.png\n")
    out = tmp_path / "bright.csv"
    assert score_command.run(parse(str(listing), "--model", "brightness", "--out", str(out), "--no-progress")) == 0
    table = pd.read_csv(out)
    assert table["path"].tolist() == ["images/00.png", "images/03.png", "images/04.png"]
    values = table["brightness"].to_numpy()
    mean, std = values.mean(), values.std(ddof=1)
    half = 1.96 * std / np.sqrt(3)
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("brightness"))
    assert line.split() == ["brightness", "3", f"{mean:.4f}", f"{std:.4f}", f"[{mean - half:.4f},", f"{mean + half:.4f}]"]


def test_dtype_flag_reaches_the_scorer(folder, clip_dir, tmp_path):
    def scores(dtype: str) -> np.ndarray:
        out = tmp_path / f"{dtype}.csv"
        score_command.run(parse(str(folder), "--model", "pickscore", "--prompt", "a red cat", "--weights",
                                f"pickscore={clip_dir}", "--dtype", dtype, "--device", "cpu", "--out", str(out),
                                "--no-progress"))
        return pd.read_csv(out)["pickscore"].to_numpy()

    full, low = scores("float32"), scores("bf16")
    assert not np.array_equal(full, low) and np.abs(full - low).max() <= 0.05 * np.abs(full).max()
    with pytest.raises(UserError, match="unknown dtype 'fp64'"):
        score_command.run(parse(str(folder), "--model", "brightness", "--dtype", "fp64", "--out", str(tmp_path / "x.csv")))


def test_summary_is_mean_sample_std_and_normal_95_ci():
    n, mean, std, low, high = score_command.summarize([1.0, 2.0, 3.0, 4.0, float("nan")])
    assert (n, mean) == (4, 2.5) and std == pytest.approx(1.2909944, rel=1e-6)
    assert (low, high) == pytest.approx((2.5 - 1.96 * std / 2, 2.5 + 1.96 * std / 2))
    assert score_command.summarize([5.0])[:2] == (1, 5.0)


def test_cli_core_prints_user_errors_as_one_line(folder, clip_dir, tmp_path, capsys):
    from mmpref.cli import main

    code = main(["score", str(folder), "--model", "pickscore", "--out", str(tmp_path / "s.csv"),
                 "--weights", f"pickscore={clip_dir}", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pass --prompts FILE" in err[0]
