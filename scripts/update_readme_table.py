"""Rewrite the README's component table from the registries, so it is true at every commit.

Run `python scripts/update_readme_table.py` after registering a component; tests/test_readme.py fails
while the table and the registries disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mmpref.registry import ALL_REGISTRIES

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- components-table:start -->"
END = "<!-- components-table:end -->"
KINDS = {"methods": "method", "adapters": "adapter", "objectives": "objective",
         "reward_models": "reward model", "pipelines": "pipeline"}


def render_table() -> str:
    lines = ["| kind | name | what it is |", "| --- | --- | --- |"]
    for registry_name, kind in KINDS.items():
        for entry in ALL_REGISTRIES[registry_name].entries():
            summary = entry.summary.replace("|", "\\|")
            lines.append(f"| {kind} | `{entry.name}` | {summary} |")
    return "\n".join(lines)


def updated_readme(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{render_table()}\n{END}{tail}"


if __name__ == "__main__":
    text = README.read_text()
    new = updated_readme(text)
    if "--check" in sys.argv:
        sys.exit(0 if new == text else 1)
    README.write_text(new)
    print("README component table updated")
