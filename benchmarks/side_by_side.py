"""Time a plain loop and `mmpref generate` side by side in one process and print samples/s and their ratio.

Shared by bench_generate.py (images) and bench_generate_audio.py (clips): the sides alternate within each
repeat, so a machine that slows down over the run slows both, and the best of the repeats is kept.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from mmpref.machine import describe_machine, machine_line


def time_sides(sides: dict[str, Callable[[int], object]], repeats: int) -> dict[str, list[float]]:
    """Wall seconds of each side per repeat (each side is called with the repeat's index)."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(repeats):
        for name, side in sides.items():
            start = time.perf_counter()
            side(r)
            times[name].append(time.perf_counter() - start)
    return times


def print_ratio(times: dict[str, list[float]], count: int, unit: str, header: str) -> None:
    """The header, each side's best time and rate, and the first side's best over the last's (goal >= 1.0)."""
    best = {name: min(runs) for name, runs in times.items()}
    print(header)
    print(f"  machine: {machine_line(describe_machine())}")
    for name, seconds in best.items():
        runs = ", ".join(f"{t:.1f}" for t in times[name])
        print(f"  {name:<16} {seconds:7.2f} s   {count / seconds:8.1f} {unit}/s   (runs: {runs} s)")
    (slow, base), (fast, new) = list(best.items())[0], list(best.items())[-1]
    print(f"  ratio ({fast} / {slow}): {base / new:.2f}x  (goal >= 1.0)")


def plain_vs_generate(plain: Callable[[], object], generate: Callable[[Path], object], root: Path, repeats: int,
                      count: int, unit: str, header: str) -> None:
    """Time `plain()` against `generate(out)` (a fresh output folder under `root` each repeat, removed after)
    and print the comparison."""

    def fresh_generate(r: int) -> None:
        generate(root / f"out{r}")
        shutil.rmtree(root / f"out{r}")

    times = time_sides({"plain loop": lambda r: plain(), "mmpref generate": fresh_generate}, repeats)
    print_ratio(times, count, unit, header)
