#!/usr/bin/env python
"""Label noise in the shapes world: flip 30 % of the training pairs and compare DPO, cDPO, rDPO, LCPO and SymPO.

    python benchmarks/bench_label_noise.py                       # pairs, 10 trainings, one eval; ~40 min on 2 CPUs
    python benchmarks/bench_label_noise.py --pairs mmpref-demo/pairs --threads 1
    # two cores: train two halves side by side, then one run finds the 10 LoRAs and only evaluates
    python benchmarks/bench_label_noise.py --pairs P --threads 1 --objectives dpo,cdpo,rdpo --train-only &
    python benchmarks/bench_label_noise.py --pairs P --threads 1 --objectives lcpo,sympo --train-only; wait
    python benchmarks/bench_label_noise.py --pairs P --eval-processes 2

1. Pairs: the demo's generate stage (shapes_demo_generate: the shipped base on the training prompts,
   ranked by the ground truth), or an existing pairs folder (--pairs).
2. Noise: a copy of the pairs with a seeded 30 % of rows swapped (chosen <-> rejected).
3. Training: each objective's bundled config (shapes_dpo, shapes_cdpo, shapes_rdpo, shapes_lcpo,
   shapes_sympo) on the clean and on the noisy pairs, the same settings otherwise. The noise-aware
   objectives are told the flip rate where they take one (cDPO label_smoothing 0.3, rDPO flip_rate 0.3;
   LCPO learns it, SymPO needs none), in both conditions, so each objective's clean and noisy runs differ
   only in the labels.
4. One `mmpref eval` of the base and all 10 LoRAs on the held-out prompts (same seeds for all, ground
   truth): each gain is aligned - base accuracy with its paired 95 % bootstrap CI.

Prints one table (objective, clean gain [CI], noisy gain [CI], share of the clean gain kept with its paired
bootstrap CI over prompts) and writes WORK/label_noise.json. Target: the noise-aware objectives keep >= 80 %
of their clean gain.

Measured 2026-12-07 (the shipped base, held-out 0.641; the demo's 815 pairs; constant lr with the saved
LoRA an EMA of the factors as in shapes_dpo; each objective's bundled settings: dpo beta 20000 lr 1e-3,
cdpo beta 600 lr 1e-3, rdpo beta 5000 lr 1e-4, lcpo beta 5000 lr 2e-4, all 600 steps of 16 pairs; sympo
beta 5000 lr 2e-4, 375 steps of 64 pairs; 4 eval seeds; eval 443 s in 2 processes; trained before the trainer
flushed subnormal floats on CPU, which moves the last bits of some gradients: the demo's dpo run now gives +0.109):
    dpo   clean +0.105 [+0.071, +0.141]  noisy +0.004 [-0.026, +0.034]   kept  4 % [-29 %,  33 %]
    cdpo  clean +0.085 [+0.053, +0.118]  noisy +0.006 [-0.024, +0.036]   kept  8 % [-34 %,  40 %]
    rdpo  clean +0.038 [-0.004, +0.079]  noisy +0.026 [+0.002, +0.047]   kept 67 % [  9 %, 366 %]
    lcpo  clean +0.079 [+0.049, +0.109]  noisy +0.026 [-0.004, +0.056]   kept 32 % [ -6 %,  71 %]
    sympo clean +0.107 [+0.062, +0.154]  noisy +0.060 [+0.019, +0.103]   kept 56 % [ 24 %,  84 %]
The target is not met. With 30 % flips a pair's expected DPO gradient keeps 1 - 2 x 0.3 = 40 % of its signal,
and 600 steps of it leave no gain. cDPO told eps = 0.3 aims at sigma(h) = 1 - eps = 0.7 on clean pairs and
(1 - eps)(1 - 0.3) + eps x 0.3 = 0.58 on noisy ones, so at h = 0 its push on noisy labels is 0.08 / 0.2 = 40 %
of its clean push, as for DPO: smoothing bounds the flipped pairs' pull, it does not undo it. rDPO's expected
gradient under the known flip rate is the clean DPO gradient, but its loss is unbounded below (the gradient in
h tends to -eps / (1 - 2 eps) = -0.75, not 0): at lr 1e-3 it broke the base on clean and noisy labels (-0.637 /
-0.481; beta 1000: -0.641 / -0.519), at lr 2e-4 and 1.5e-4 on clean labels (-0.271 and -0.150; noisy +0.026
and +0.028); lr 1e-4 is what keeps it whole, and there its clean gain is small. LCPO weighs each pair by the
model's own single-timestep margin, a noisy estimate that on flipped pairs tends to reinforce the flip: at lr
1e-3 noisy labels broke the base (+0.041 / -0.303; beta 1000: -0.167 / -0.107); lr 1e-4 kept 29 % [-5 %, 65 %]
(+0.060 / +0.017). SymPO's symmetric loss 1 - sigma(h) makes the noisy expected gradient exactly 0.4 x the clean
one at every margin (DPO's grows on the flipped pairs the model gets right) and is bounded, so it takes more
steps without breaking: 600 steps of 16 at lr 1e-4 +0.077 / +0.030 (39 %), 1500 steps +0.092 / +0.047 (51 %),
3000 steps drifted the base (+0.043 / -0.015); 64-pair batches (375 steps, the same 29 epochs, lr 2e-4) average
the flips within each step and give the best noisy gain here (128-pair batches, 188 steps, lr 2.8e-4: +0.094 /
+0.047, 50 %), but 0.4 x the push is still about half the gain.
Nor do more steps (2026-12-07, another eval of the same 117 x 4 held-out samples, base 0.641): SymPO at the
shipped settings for 940 steps (2.5x, 73 epochs) +0.103 [+0.056, +0.154] / +0.051 [+0.006, +0.100], kept 50 %:
the noisy run does not catch up, so it is the flipped pairs' noise, not the 0.4x push, that stops it. Holding
each pair's mean implicit reward at 0 (a swap-symmetric, label-free penalty 0.05 x (beta (lr_c + lr_r) / 2)^2
against both samples drifting below the reference) kept 69 % of a halved clean gain (+0.049 / +0.034).
More data does not help at these settings: 8 samples per training prompt (3,721 pairs, `mmpref generate
shapes_demo_generate sampling.samples_per_prompt=8 sampling.seed=1`, then --pairs) gave dpo +0.058 / -0.013,
cdpo +0.051 / -0.011, rdpo +0.030 / +0.019, lcpo +0.068 / -0.011 (clean / noisy).
Nor is the noisy set short of information: shapes_dpo on only the 571 pairs the flip left alone gained
+0.088 [+0.056, +0.120], and on a random 326 of the clean pairs (40 %, what the flips leave in expectation)
+0.107 [+0.068, +0.147]. The flipped pairs' pull is what costs the gain, so an objective that finds them could
keep it. The models' own margins cannot find them here: the AUC of -margin for the 244 flipped pairs is
0.55-0.66 for DPO and LCPO during noisy training (steps 25-150 and the final 600; averaged over 2-6 draws of t and noise, which
barely helps: the spread between pairs, not the draw, dominates), so a better LCPO E-step has little to work with.
Nor is it the LoRA's room to memorise the flips: SymPO at the shipped settings with rank 2 (alpha 2) in place of 8
gained +0.111 [+0.066, +0.160] clean and +0.032 [-0.004, +0.071] noisy, 29 % kept (2026-12-07, same eval).
Nor a sharper saturation: beta 20000 instead of 5000 (a pair stops pulling once |beta h| is large, which could
let the flipped pairs drop out once the model disagrees with them) gave +0.094 [+0.064, +0.126] / +0.045
[+0.021, +0.071], 48 % kept.
Nor more pairs for SymPO (3,721 from 8 samples per training prompt, as above, 1,116 flipped; shipped settings, so
6 epochs instead of 29): +0.056 [+0.015, +0.096] clean, +0.006 [-0.028, +0.038] noisy.
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
    "sympo": ("shapes_sympo", []),
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


def accuracy_by_model(samples: Path, scorer: str, threshold: float) -> dict:
    """Per model, a [prompts, seeds] array of 0/1 correctness read back from the eval's samples.jsonl."""
    import numpy as np

    cells: dict[str, dict[tuple[int, int], float]] = {}
    for line in samples.read_text().splitlines():
        row = json.loads(line)
        cells.setdefault(row["model"], {})[(row["prompt_row"], row["sample"])] = float(row[scorer] >= threshold)
    out = {}
    for model, values in cells.items():
        prompts = sorted({p for p, _ in values})
        seeds = sorted({s for _, s in values})
        out[model] = np.array([[values[(p, s)] for s in seeds] for p in prompts])
    return out


def kept_ci(base, clean, noisy, idx) -> dict[str, object]:
    """Noisy gain / clean gain with a paired bootstrap CI over prompts (the eval's resample indices).

    A resample whose clean gain is <= 0 has no meaningful share; it is left out of the interval and
    counted in `undefined`.
    """
    import numpy as np

    from mmpref.evaluation.stats import percentile_interval, prompt_means

    (clean_g, clean_r), (noisy_g, noisy_r) = prompt_means(clean - base, idx), prompt_means(noisy - base, idx)
    ratio = np.where(clean_r > 0, noisy_r / np.where(clean_r > 0, clean_r, 1.0), np.nan)
    point = noisy_g.mean() / clean_g.mean() if clean_g.mean() > 0 else float("nan")
    return {"kept": float(point), "ci95": percentile_interval(ratio), "undefined": int(np.isnan(ratio).sum())}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    import mmpref.sandbox.shapes.scorers  # noqa: F401
    from mmpref.config import load_config
    from mmpref.demo.run import _resolve_base
    from mmpref.evaluation.engine import build_settings, evaluate
    from mmpref.evaluation.stats import resample_indices

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
    acc = accuracy_by_model(work / "eval" / "samples.jsonl", report["accuracy"]["scorer"],
                            report["accuracy"]["threshold"])
    boot = report["bootstrap"]
    idx = resample_indices(len(acc["base"]), boot["resamples"], boot["seed"])
    rows = []
    for name in objectives:
        clean = by_name[f"{name}_clean"]["vs_first"]["gain"]["accuracy"]
        noisy_gain = by_name[f"{name}_noisy"]["vs_first"]["gain"]["accuracy"]
        kept = kept_ci(acc["base"], acc[f"{name}_clean"], acc[f"{name}_noisy"], idx)
        rows.append({"objective": name, "clean_gain": clean["diff"], "clean_ci95": clean["ci95"],
                     "noisy_gain": noisy_gain["diff"], "noisy_ci95": noisy_gain["ci95"], "kept": kept["kept"],
                     "kept_ci95": kept["ci95"], "kept_undefined_resamples": kept["undefined"]})
    base_acc = by_name["base"]["metrics"]["accuracy"]
    lines = [f"held-out accuracy gain over the base ({base_acc['mean']:.3f}), {report['prompts']['count']} prompts x "
             f"{args.eval_seeds} seeds, 95 % paired bootstrap CI; {int(args.flip * 100)} % of training labels flipped",
             f"{'objective':10} {'clean gain':>24} {'noisy gain':>24} {'kept [95 % CI]':>22}"]
    for r in rows:
        lo, hi = r["kept_ci95"]
        kept = f"{r['kept']:>6.0%} [{lo:.0%}, {hi:.0%}]" if r["clean_gain"] > 0 else "   n/a (no clean gain)"
        lines.append(f"{r['objective']:10} {r['clean_gain']:+.3f} [{r['clean_ci95'][0]:+.3f}, {r['clean_ci95'][1]:+.3f}]"
                     f" {r['noisy_gain']:+.3f} [{r['noisy_ci95'][0]:+.3f}, {r['noisy_ci95'][1]:+.3f}] {kept}")
    table = "\n".join(lines)
    print(table)
    result = {"flip": args.flip, "pairs": info, "rows": rows, "base_accuracy": base_acc, "table": table,
              "seconds": round(time.time() - start, 1)}
    (work / "label_noise.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {work / 'label_noise.json'} and {work / 'eval' / 'report.html'} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
