"""`mmpref generate` as separate OS processes: killed for real and restarted, and under `accelerate launch`.

Both compare against an uninterrupted single-process run of the same config, row for row and byte for
byte (threads are fixed at 1 per process, so the floating-point work is the same in every process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import test_generate_support as support

from mmpref.pipelines.shards import RunDirectory


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, dict, Path]:
    """The tiny model, a 6-shard config and its uninterrupted single-process output."""
    root = tmp_path_factory.mktemp("gen_proc")
    model = support.build_model(root / "model")
    config = support.config_dict(model, root / "reference")
    config["prompts"]["limit"] = 12
    config["sampling"]["steps"] = 6
    support.run_config(config)
    return model, config, root / "reference"


def _with_dir(config: dict, out: Path) -> dict:
    return dict(config, output={**config["output"], "dir": str(out)})


def test_killed_run_restarts_from_complete_shards_and_matches(setup, tmp_path):
    _, config, reference = setup
    out = tmp_path / "killed"
    path = support.write_config(tmp_path / "gen.yaml", _with_dir(config, out))
    command = [sys.executable, "-m", "mmpref", "generate", str(path)]
    proc = subprocess.Popen(command, env=support.subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    manifest = out / "manifest.json"
    complete: list[int] = []
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        if manifest.is_file():
            try:
                complete = json.loads(manifest.read_text())["complete"]
            except (json.JSONDecodeError, KeyError):  # pragma: no cover - the manifest is replaced atomically
                pytest.fail("manifest.json was read half-written")
            if complete:
                proc.kill()  # SIGKILL: no cleanup handlers run
                break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -9, f"the run must be killed mid-way (exit {proc.returncode}): {proc.stderr.read()!r}"
    done_before = json.loads(manifest.read_text())["complete"]
    assert 1 <= len(done_before) < 6, "killed after the first shard and before the last"
    first = {k: RunDirectory(out, 6).shard_file(k).stat().st_mtime_ns for k in done_before}

    restarted = subprocess.run(command, env=support.subprocess_env(), capture_output=True, text=True, timeout=300)
    assert restarted.returncode == 0, restarted.stderr
    assert f"resuming {out}: {len(done_before)}/6 shards complete" in restarted.stderr
    assert {k: RunDirectory(out, 6).shard_file(k).stat().st_mtime_ns for k in done_before} == first
    assert support.read_pairs(out).to_list() == support.read_pairs(reference).to_list()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs"] == json.loads((reference / "summary.json").read_text())["pairs"]
    assert not [p for p in out.rglob(".*.tmp-*")], "no temporary files left"


@pytest.mark.slow
def test_accelerate_launch_splits_prompts_and_matches_one_process(setup, tmp_path):
    _, config, reference = setup
    out = tmp_path / "launched"
    path = support.write_config(tmp_path / "gen.yaml", _with_dir(config, out))
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or "accelerate"
    command = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "mmpref", "generate", str(path)]
    done = subprocess.run(command, env=support.subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(p.read_text()) for p in sorted((out / "shards").glob("*.json"))]
    assert [r["process"] for r in records] == [0, 1, 0, 1, 0, 1] and {r["processes"] for r in records} == {2}
    assert support.read_pairs(out).to_list() == support.read_pairs(reference).to_list()
