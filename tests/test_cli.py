"""The CLI: helpful commands, dry runs of every bundled config, and user errors as exit 2 without traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmpref.cli import main
from mmpref.config.loader import bundled_configs


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", sorted(bundled_configs()))
def test_every_bundled_config_passes_dry_run(capsys, name):
    kind = "method" if "method" in yaml.safe_load(bundled_configs()[name].read_text()) else "pipeline"
    command = "train" if kind == "method" else "generate"
    code, out, err = run_cli(capsys, command, name, "--dry-run")
    assert code == 0, err
    resolved = yaml.safe_load("\n".join(line for line in out.splitlines() if not line.startswith("#")))
    assert kind in resolved


LIGHT = """
import contextlib, io, sys
import yaml
from mmpref.cli import main
from mmpref.config.loader import bundled_configs

for name, path in bundled_configs().items():
    command = "train" if "method" in yaml.safe_load(path.read_text()) else "generate"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([command, name, "--dry-run"]) == 0, name
print(sorted(m for m in ("diffusers", "transformers", "peft", "open_clip", "accelerate") if m in sys.modules))
"""


def test_dry_run_builds_nothing_heavy():
    """--dry-run validates every bundled config without importing a model library."""
    proc = subprocess.run([sys.executable, "-c", LIGHT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_list_shows_every_registry_and_configs(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for title in ("Objectives", "Adapters", "Methods", "Reward models", "Pipelines", "Bundled configs"):
        assert title in out
    assert "bandit_dpo" in out and "dpo" in out


def test_env_reports_versions(capsys):
    import torch

    code, out, _ = run_cli(capsys, "env")
    assert code == 0 and "torch" in out and "optional extras" in out
    # the CPU's kernel level beside its name: wall times differ 1.6x between AVX2 and AVX-512 machines
    assert f"torch kernels {torch.backends.cpu.get_cpu_capability()}" in out and "cores usable" in out


def test_cp_copies_and_refuses_to_overwrite(capsys, tmp_path: Path):
    code, _, _ = run_cli(capsys, "cp", "bandit_dpo", str(tmp_path))
    assert code == 0 and (tmp_path / "bandit_dpo.yaml").read_text() == bundled_configs()["bandit_dpo"].read_text()
    code, _, err = run_cli(capsys, "cp", "bandit_dpo", str(tmp_path))
    assert code == 2 and "--force" in err
    code, _, err = run_cli(capsys, "cp", "bandit_dpp", str(tmp_path))
    assert code == 2 and "Did you mean 'bandit_dpo'" in err


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


BASE = "method: bandit\nobjective: {name: dpo, beta: 0.1}\ntraining: {steps: 2}\n"


@pytest.mark.parametrize(
    "text, overrides, expected",
    [
        (None, [], "config file not found"),
        ("method: bandit\ntraining: {steps: [2\n", [], "YAML syntax error"),
        (BASE + "trainig: {}\n", [], "trainig: unknown key. Did you mean 'training'?"),
        (BASE, ["training.steps=many"], "training.steps: expected an integer, got 'many'"),
        (BASE, ["objective.name=dpoo"], "objective.name: unknown objective 'dpoo'. Did you mean 'dpo'?"),
        (BASE, ["objective.betta=1"], "objective.betta: unknown key. Did you mean 'beta'?"),
        ("objective: dpo\n", [], "missing top-level `method:` key"),
        ("method: bandits\n", [], "unknown method 'bandits'. Did you mean 'bandit'?"),
        (BASE, ["training.lr"], "expected KEY.PATH=VALUE"),
    ],
)
def test_user_errors_exit_2_with_one_clear_line(capsys, tmp_path, text, overrides, expected):
    path = str(tmp_path / "missing.yaml") if text is None else write(tmp_path, text)
    code, out, err = run_cli(capsys, "train", path, *overrides, "--dry-run")
    assert code == 2
    assert expected in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_overrides_change_resolved_config(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "train", write(tmp_path, BASE), "training.steps=7", "objective.beta=0.25", "--dry-run")
    assert code == 0
    resolved = yaml.safe_load("\n".join(line for line in out.splitlines() if not line.startswith("#")))
    assert resolved["training"]["steps"] == 7 and resolved["objective"]["beta"] == 0.25
    assert resolved["world"]["prompts"] == 64, "defaults are filled in"


def test_overrides_may_follow_the_dry_run_flag(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "train", write(tmp_path, BASE), "--dry-run", "training.steps=9")
    assert code == 0
    resolved = yaml.safe_load("\n".join(line for line in out.splitlines() if not line.startswith("#")))
    assert resolved["training"]["steps"] == 9
    with pytest.raises(SystemExit) as info:
        main(["train", write(tmp_path, BASE), "--dry-run", "--no-such-flag"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    "text, expected",
    [
        ("method: preference\n", "model.adapter: required key is missing: name one of the adapters"),
        (
            "method: preference\nmodel: {adapter: {name: text_to_image, pretrained: x}}\n",
            "data.source: required key is missing: set it in the config or pass `data.source=...`",
        ),
    ],
)
def test_missing_required_key_exits_2(capsys, tmp_path, text, expected):
    code, out, err = run_cli(capsys, "train", write(tmp_path, text), "--dry-run")
    assert code == 2 and out == ""
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_help_lists_every_command(capsys):
    from mmpref.cli import COMMANDS

    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "common workflows" in out
    for command in COMMANDS:
        assert f"    {command} " in out, command
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0 and f"usage: mmpref {command}" in capsys.readouterr().out


def test_missing_arguments_exit_2_with_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["eval"])
    assert info.value.code == 2
    assert "usage: mmpref eval" in capsys.readouterr().err


def test_console_script_exit_status_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mmpref", "train", str(tmp_path / "nope.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "config file not found" in proc.stderr and "Traceback" not in proc.stderr


INTERNAL = """
import sys
from dataclasses import dataclass
from mmpref.cli import main
from mmpref.registry import METHODS

@dataclass
class Params:
    steps: int = 1

@METHODS.register("broken", summary="raises a bug", params=Params)
def broken(config):
    raise RuntimeError("a bug in mmpref")

sys.exit(main(["train", sys.argv[1]]))
"""


def test_internal_errors_keep_their_traceback(tmp_path):
    """Only user errors are shortened to one line; a bug in a method shows where it happened."""
    config = write(tmp_path, "method: broken\n")
    proc = subprocess.run([sys.executable, "-c", INTERNAL, config], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "RuntimeError: a bug in mmpref" in proc.stderr


def test_bandit_training_moves_true_reward(capsys):
    code, out, err = run_cli(capsys, "train", "bandit_dpo", "training.steps=150")
    assert code == 0, err
    from mmpref.config import load_config
    from mmpref.methods.bandit import train_bandit

    result = train_bandit(load_config("bandit_dpo", ["training.steps=150"]).config, progress=False)
    assert result["policy_reward"] > result["reference_reward"] + 0.2
    assert result["first_loss"] == pytest.approx(0.6931, abs=1e-3)


def test_a_closed_pipe_ends_a_command_quietly():
    """`mmpref list | head -1`: the reader leaves before mmpref writes; no traceback, exit status 141 as for SIGPIPE."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "mmpref", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # closed before the interpreter has even imported mmpref: its first print hits EPIPE
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "BrokenPipeError" not in err
