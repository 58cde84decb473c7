"""`mmpref eval` wall time with `processes: N` over one process, on the shipped shapes base.

The demo's eval samples base and aligned in two CPU processes of one torch thread each. This prints,
side by side in one run on the same prompts and seeds, the eval's wall time (worker start-up and model
loading included) in one process and in N, their ratio (goal > 1 on a machine with N free cores), and
whether both runs wrote the same samples.jsonl (they must: the same pipeline calls and seeds).

    python benchmarks/bench_eval_processes.py                    # the demo's eval: 117 held-out prompts x 4 seeds
    python benchmarks/bench_eval_processes.py --prompts 48 --processes 2

Measured (2026-12-06, 2 CPU cores, otherwise idle): 117 x 4 -> 69.8 s in 1 process, 42.1 s in 2 (1.66x),
identical samples.jsonl; 48 x 4 (3 pipeline calls, split 2 / 1) -> 1.26x.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from mmpref.machine import describe_machine, machine_line

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=117, help="held-out shapes prompts (at most 117)")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    return parser.parse_args()


def timed_eval(out: Path, processes: int, args: argparse.Namespace) -> float:
    from mmpref.evaluation.engine import build_settings, evaluate

    settings = build_settings({
        "models": [{"name": "base", "path": "shapes_base"}], "prompts": "builtin:shapes_heldout",
        "limit": args.prompts, "seeds_per_prompt": args.seeds, "batch_size": args.batch_size,
        "processes": processes, "threads": 1, "out": str(out), "grid_prompts": 4,
    })
    start = time.perf_counter()
    evaluate(settings, log=lambda _: None)
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="mmpref-bench-eval-") as tmp:
        one, many = Path(tmp) / "one", Path(tmp) / "many"
        t1 = timed_eval(one, 1, args)
        tn = timed_eval(many, args.processes, args)
        same = (one / "samples.jsonl").read_bytes() == (many / "samples.jsonl").read_bytes()
    images = args.prompts * args.seeds
    print(f"eval of the shapes base, {args.prompts} prompts x {args.seeds} seeds ({images} images), batch "
          f"{args.batch_size}, 1 thread per process, on {machine_line(describe_machine())}")
    print(f"{'processes':>10}{'seconds':>10}{'images/s':>10}")
    print(f"{1:>10}{t1:>10.1f}{images / t1:>10.1f}")
    print(f"{args.processes:>10}{tn:>10.1f}{images / tn:>10.1f}")
    print(f"speed-up {t1 / tn:.2f}x (goal > 1); identical samples.jsonl: {same}")


if __name__ == "__main__":
    main()
