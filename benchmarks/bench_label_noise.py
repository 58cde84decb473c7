#!/usr/bin/env python
"""Label noise in the shapes world: flip 30 % of the training pairs and compare DPO, cDPO, rDPO and LCPO.

    python benchmarks/bench_label_noise.py                       # pairs, 8 trainings, one eval; ~30 min on 2 CPUs
    python benchmarks/bench_label_noise.py --pairs mmpref-demo/pairs --threads 1
    # two cores: train two halves side by side, then one run finds the 8 LoRAs and only evaluates
    python benchmarks/bench_label_noise.py --pairs P --threads 1 --objectives dpo,cdpo --train-only &
    python benchmarks/bench_label_noise.py --pairs P --threads 1 --objectives rdpo,lcpo --train-only; wait
    python benchmarks/bench_label_noise.py --pairs P --eval-processes 2

1. Pairs: the demo's generate stage (shapes_demo_generate: the shipped base on the training prompts,
   ranked by the ground truth), or an existing pairs folder (--pairs).
2. Noise: a copy of the pairs with a seeded 30 % of rows swapped (chosen <-> rejected).
3. Training: each objective's bundled config (shapes_dpo, shapes_cdpo, shapes_rdpo, shapes_lcpo) on the
   clean and on the noisy pairs, the same settings otherwise. The noise-aware objectives are told the
   flip rate where they take one (cDPO label_smoothing 0.3, rDPO flip_rate 0.3; LCPO learns it), in both
   conditions, so each objective's clean and noisy runs differ only in the labels.
4. One `mmpref eval` of the base and all 8 LoRAs on the held-out prompts (same seeds for all, ground
   truth): each gain is aligned - base accuracy with its paired 95 % bootstrap CI.

Prints one table (objective, clean gain [CI], noisy gain [CI], share of the clean gain kept) and writes
WORK/label_noise.json. Target: the noise-aware objectives keep >= 80 % of their clean gain.

Measured 2026-12-06 night (the shipped base, held-out 0.641; the demo's 815 pairs; 600 steps, constant lr
with the saved LoRA an EMA of the factors as in shapes_dpo; dpo/cdpo beta 20000, rdpo/lcpo 5000; 4 eval seeds;
trainings two at a time on 2 cores, ~5 min each; eval 363 s in 2 processes):
    dpo   clean +0.105 [+0.071, +0.141]  noisy +0.004 [-0.026, +0.034]   kept    4 %
    cdpo  clean +0.041 [+0.015, +0.064]  noisy -0.019 [-0.053, +0.013]   kept  -47 %
    rdpo  clean -0.637 [-0.699, -0.568]  noisy -0.481 [-0.558, -0.402]   (breaks the base)
    lcpo  clean +0.041 [-0.017, +0.103]  noisy -0.303 [-0.378, -0.220]   (breaks the base on noisy labels)
The target (noise-aware objectives keep >= 80 % of their clean gain) is not met. With 30 % flips DPO's
expected gradient keeps 1 - 2 x 0.3 = 40 % of its signal, and 600 steps of it leave no gain. cDPO told
eps = 0.3 aims at sigma(h) = 0.7 on clean pairs and ~0.58 on the noisy ones, so it learns little in either.
rDPO's loss is unbounded below (its gradient in h tends to -eps / (1 - 2 eps) = -0.75 instead of 0), so
training keeps widening the margin by ruining the rejected samples' likelihood until the base breaks, even
on clean labels. LCPO weighs each pair by the model's own margin, which on flipped pairs reinforces the
flip. A lower beta does not save either: at beta 1000 (--set objective.beta=1000) rdpo gave -0.641 clean /
-0.519 noisy, lcpo -0.167 / -0.107. (Earlier, 300 steps, previous base: dpo +0.017 / -0.004, cdpo +0.026 /
+0.013, rdpo and lcpo broke.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

OBJECTIVES = {
    "dpo": ("shapes_dpo", []),
    "cdpo": ("shapes_cdpo", ["objective.label_smoothing=0.3"]),
    "rdpo": ("shapes_rdpo", ["objective.flip_rate=0.3"]),
    "lcpo": ("shapes_lcpo", []),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("outputs/bench_label_noise"))
    p.add_argument("--pairs", type=Path, default=None, help="an existing pairs folder (default: generate them)")
    p.add_argument("--flip", type=float, default=0.3, help="share of training pairs whose labels are flipped")
    p.add_argument("--seed", type=int, default=0, help="which pairs are flipped")
    p.add_argument("--objectives", default=",".join(OBJECTIVES))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--eval-seeds", type=int, default=4, help="samples per held-out prompt and model")
    p.add_argument("--eval-processes", type=int, default=1, help="sampling processes of the eval (CPU)")
    p.add_argument("--train-only", action="store_true",
                   help="stop after training (run two with disjoint --objectives side by side, then one for the table)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="train overrides for every run")
    return p.parse_args(argv)


def flip_pairs(source: Path, dest: Path, rate: float, seed: int) -> dict[str, int]:
    """Copy the pairs with round(rate * n) seeded rows' chosen and rejected swapped (a parquet file)."""
    import numpy as np

    from mmpref.data.sources import open_source

    ds = open_source(str(source), "train").dataset
    n = len(ds)
    flipped = set(np.random.default_rng(seed).permutation(n)[: round(rate * n)].tolist())

    def swap(row: dict, idx: int) -> dict:
        if idx in flipped:
            row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
            for a, b in (("chosen_score", "rejected_score"), ("chosen_seed", "rejected_seed"),
                         ("chosen_sample_index", "rejected_sample_index")):
                if a in row and b in row:
                    row[a], row[b] = row[b], row[a]
        return row

    dest.mkdir(parents=True, exist_ok=True)
    ds.map(swap, with_indices=True).to_parquet(str(dest / "pairs.parquet"))
    return {"rows": n, "flipped": len(flipped)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    import mmpref.sandbox.shapes.scorers  # noqa: F401
    from mmpref.config import load_config
    from mmpref.demo.run import _resolve_base
    from mmpref.evaluation.engine import build_settings, evaluate

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.time()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    pairs = args.pairs
    if pairs is None:
        pairs = work / "pairs"
        gen = load_config("shapes_demo_generate", [f"output.dir={pairs}"], kind="pipeline")
        gen.config.model.path = _resolve_base(gen.config.model.path)
        print(f"[pairs] generating into {pairs}", flush=True)
        gen.entry.obj(gen.config)
    noisy = work / f"pairs_flip{int(args.flip * 100)}"
    info = flip_pairs(pairs, noisy, args.flip, args.seed)
    print(f"[noise] {info['flipped']} of {info['rows']} pairs flipped -> {noisy}", flush=True)

    objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    runs: dict[str, Path] = {}
    base_path = None
    for name in objectives:
        config_name, extra = OBJECTIVES[name]
        for condition, source in (("clean", pairs), ("noisy", noisy)):
            out = work / f"{name}_{condition}"
            run = load_config(config_name, [*extra, *args.set, f"data.source={source}", f"output_dir={out}",
                                            "logging.progress_bar=false"], kind="method")
            run.config.model.adapter.params.pretrained = _resolve_base(run.config.model.adapter.params.pretrained)
            base_path = run.config.model.adapter.params.pretrained
            if not (out / "pytorch_lora_weights.safetensors").exists():
                t0 = time.time()
                run.entry.obj(run.config)
                print(f"[train] {name} {condition}: {time.time() - t0:.0f} s", flush=True)
            runs[f"{name}_{condition}"] = out
    if args.train_only:
        print(f"trained {', '.join(runs)} ({time.time() - start:.0f} s)")
        return 0

    settings = build_settings({
        "models": [{"name": "base", "path": base_path}] + [{"name": k, "path": str(v)} for k, v in runs.items()],
        "prompts": "builtin:shapes_heldout", "seeds_per_prompt": args.eval_seeds,
        "scorers": ["shapes_truth"], "out": str(work / "eval"), "processes": args.eval_processes,
    }, "bench_label_noise")
    report = evaluate(settings, log=lambda m: print(m, flush=True))
    by_name = {m["name"]: m for m in report["models"]}
    rows = []
    for name in objectives:
        clean = by_name[f"{name}_clean"]["vs_first"]["gain"]["accuracy"]
        noisy_gain = by_name[f"{name}_noisy"]["vs_first"]["gain"]["accuracy"]
        kept = noisy_gain["diff"] / clean["diff"] if clean["diff"] > 0 else float("nan")
        rows.append({"objective": name, "clean_gain": clean["diff"], "clean_ci95": clean["ci95"],
                     "noisy_gain": noisy_gain["diff"], "noisy_ci95": noisy_gain["ci95"], "kept": kept})
    base_acc = by_name["base"]["metrics"]["accuracy"]
    lines = [f"held-out accuracy gain over the base ({base_acc['mean']:.3f}), {report['prompts']['count']} prompts x "
             f"{args.eval_seeds} seeds, 95 % paired bootstrap CI; {int(args.flip * 100)} % of training labels flipped",
             f"{'objective':10} {'clean gain':>24} {'noisy gain':>24} {'kept':>7}"]
    for r in rows:
        lines.append(f"{r['objective']:10} {r['clean_gain']:+.3f} [{r['clean_ci95'][0]:+.3f}, {r['clean_ci95'][1]:+.3f}]"
                     f" {r['noisy_gain']:+.3f} [{r['noisy_ci95'][0]:+.3f}, {r['noisy_ci95'][1]:+.3f}] {r['kept']:>6.0%}")
    table = "\n".join(lines)
    print(table)
    result = {"flip": args.flip, "pairs": info, "rows": rows, "base_accuracy": base_acc, "table": table,
              "seconds": round(time.time() - start, 1)}
    (work / "label_noise.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {work / 'label_noise.json'} and {work / 'eval' / 'report.html'} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
