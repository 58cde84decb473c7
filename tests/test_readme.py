"""The README's component table stays true: every registered component is listed in it."""

from __future__ import annotations

from pathlib import Path

from mmpref.registry import ALL_REGISTRIES
from mmpref.testing.checks import load_script

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_component_table_matches_the_registries():
    module = load_script(README.parent / "scripts" / "update_readme_table.py")
    text = README.read_text()
    missing = [
        f"{kind}:{entry.name}"
        for kind, registry in ALL_REGISTRIES.items()
        for entry in registry.entries()
        if f"`{entry.name}`" not in text
    ]
    assert not missing, f"run `python scripts/update_readme_table.py`; missing from the README: {missing}"
    assert module.updated_readme(text) == text, "run `python scripts/update_readme_table.py`"


def test_readme_test_command_is_what_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert command in README.read_text()


def test_readme_python_example_runs():
    import re

    code = [block for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "build_objective" in block]
    assert code, "the README shows objectives from Python"
    namespace: dict = {}
    exec(compile(code[0], "README.md", "exec"), namespace)
    assert namespace["out"].losses.shape == (2,)
