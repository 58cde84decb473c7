"""The built wheel: one `mmpref` package, with pipelines, reward models and bundled configs inside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "setup.py", "README.md", "mmpref", "pipelines", "reward_models", "configs"]


def test_wheel_installs_everything_under_mmpref(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "whl"), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "whl").glob("mmpref-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"mmpref"}, top  # no top-level `pipelines`
    for folder, package in (("pipelines", "mmpref/pipelines"), ("reward_models", "mmpref/reward_models")):
        modules = {p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*.py")}
        assert modules and {f"{package}/{m}" for m in modules} <= names, folder
    configs = {p.name for p in (ROOT / "configs").glob("*.yaml")}
    assert configs and {f"mmpref/configs/{c}" for c in configs} <= names
    assert "mmpref/configs/__init__.py" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "mmpref = mmpref.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
