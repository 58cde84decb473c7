"""The demo: align the shipped shapes-world base with Diffusion-DPO on a CPU and measure the gain.

Three stages, each the same code path as its command:
1. `mmpref generate shapes_demo_generate`: sample the base on the training prompts, score the samples
   (ground truth or a detector, as the config says), pair best vs worst -> OUT/pairs;
2. `mmpref train shapes_dpo`: Diffusion-DPO LoRA on those pairs -> OUT/aligned (LoRA + config.yaml);
3. `mmpref eval`: base vs aligned on the held-out prompts (scenes never trained on), the same seeds for
   both, ground-truth accuracy and scores with 95 % bootstrap CIs and the paired win rate -> OUT/report.*

OUT/report.json carries the headline figures: base.accuracy, aligned.accuracy, gain (aligned - base
accuracy), gain_ci95, win_rate (ground-truth score, aligned vs base), seconds; plus the full eval
report, the resolved configs and each stage's time.

Measured with the bundled configs (shipped base of 2026-12-06 evening, 2 CPU cores, `--fresh`; sampling in
two processes of one thread each, training in one process of two threads): 815 pairs; held-out accuracy base
0.641 [0.575, 0.703] -> aligned 0.765 [0.707, 0.818], gain +0.124 [+0.085, +0.165], win rate 0.886 [0.814,
0.955] (78 wins / 10 losses / 380 ties); stages generate 100 s, train 202 s, eval 78 s (381 s; 2026-12-07,
AVX-512 CPU). On a 2-core CPU with AVX2 only (2026-12-08): gain +0.115 [+0.079, +0.156], win rate 0.854, 613 s
(generate 154, train 323, eval 136) as the first run after the install, 581 s (158 / 302 / 121) the second:
about 1.5x the time, and a gain moved by the kernels' last bits as by threads below.
Training in one thread gave +0.109 in 477 s, and +0.105 in 496 s before the trainer began flushing
subnormal floats on CPU: threads and flushing change the last bits of some gradients, and the gain with them.
All three targets are met on both CPUs, the AVX2 one at the time limit (the first run missed it by 13 s).
The gain depends on the training draws. On the same pairs (held-out 117 x 4,
training seeds 0 / 1 / 2; measured before the flushing):
  constant lr, saved LoRA = EMA of the factors (the default)   +0.105 / +0.081 / +0.073  (win 0.85 / 0.78 / 0.76)
  cosine decay to 0, last iterate                              +0.090 / +0.081 / +0.064  (win 0.82 / 0.81 / 0.80)
  constant lr, last iterate                                    +0.092 / +0.041           (win 0.80 / 0.64)
The average (diffusers' EMAModel over the LoRA factors; over 600 steps its warm-up (1 + t) / (10 + t) sets
the decay) takes out part of the last steps' noise. Restricting training timesteps to the noisier part
(timestep_range [0.3, 1] / [0.5, 1], cosine) gave +0.075 / +0.058. Single runs of nearby settings (6 samples
per prompt, batch 24, LoRA on the ResNet convs too, correct winners only, an SFT epoch first, 800 steps)
gave +0.04 to +0.11.
On-policy rounds do not help here (2026-12-07, `--rounds 2 --fresh`): round 2 sampled round 1's model (649
pairs) and its LoRA took held-out accuracy to 0.707 [0.645, 0.769], gain +0.066 [+0.032, +0.100], win rate
0.678, 737 s, below round 1 alone (0.765 in the run above, the same seeds). In the audio world three rounds
more than doubled the gain (mmpref/demo/audio.py); a second round's worth is a per-task measurement.
Nor does training on the sampler's own latents help here, the audio world's lever (2026-12-08, AVX2 machine,
outside the repository): the shapes VAE's re-encoding of a sample sits 0.39 (relative L2; 0.30 for the
posterior mean) from the latents the UNet produced, PNG rounding included or not. Regenerated from the demo
pairs' seeds (883 samples, every decoded image equal to its stored PNG), shapes_dpo at the shipped settings
on those latents gained +0.058 [+0.017, +0.098] (win rate 0.670) against +0.115 [+0.079, +0.156] for the
same run on the re-encoded PNGs, in one eval of both. So image pairs keep no latents.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmpref.config import apply_overrides, load_config, to_plain
from mmpref.errors import ConfigError, UserError
from mmpref.machine import describe_machine, machine_line

DEFAULT_GENERATE = "shapes_demo_generate"
DEFAULT_TRAIN = "shapes_dpo"
STAGES = ("generate", "train", "eval")
# The demo's evaluation: every held-out prompt, 4 seeds, the ground truth and both detectors.
DEFAULT_EVAL: dict[str, Any] = {
    "prompts": "builtin:shapes_heldout",
    "seeds_per_prompt": 4,
    "seed": 1234,
    "scorers": ["shapes_truth", "shapes_color_blobs", "shapes_shape_detector"],
    "win_rate_scorer": "shapes_truth",
    "accuracy": {"scorer": "shapes_truth", "threshold": 1.0},
    "steps": 20,
    "guidance_scale": 4.0,
    "batch_size": 64,
    "processes": 2,  # one per core of the 2-core target, sampling the same batches as one process would
}
TARGETS = {"seconds_max": 600, "gain_min": 0.10, "gain_ci95_low_above": 0.0, "win_rate_min": 0.60}


@dataclass
class DemoSettings:
    out: str = "mmpref-demo"
    generate_config: str = DEFAULT_GENERATE
    train_config: str = DEFAULT_TRAIN
    overrides: list[str] = field(default_factory=list)  # generate.KEY=V, train.KEY=V, eval.KEY=V
    threads: int | None = 1  # torch CPU threads per sampling process (null: torch's default)
    train_threads: int | None = 2  # the train stage runs alone in one process: one thread per core of the 2-core target
    fresh: bool = False  # delete OUT/pairs, OUT/aligned and OUT/cache first (a changed config cannot resume old pairs)
    rounds: int = 1  # on-policy rounds: round k > 1 samples round k-1's model (fused) and trains a LoRA on it


def split_overrides(overrides: list[str]) -> dict[str, list[str]]:
    """`generate.sampling.steps=10` -> {"generate": ["sampling.steps=10"]}; the stage prefix is required."""
    out: dict[str, list[str]] = {s: [] for s in STAGES}
    for item in overrides:
        stage, dot, rest = item.partition(".")
        if stage not in out or not dot or "=" not in rest:
            raise ConfigError(f"demo override '{item}': write STAGE.KEY.PATH=VALUE with STAGE one of "
                              f"{', '.join(STAGES)} (e.g. train.training.max_steps=500, eval.seeds_per_prompt=8).")
        out[stage].append(rest)
    return out


def resolve_shipped(path: str, name: str, locate: Callable[[], Path]) -> str:
    """A shipped base wherever mmpref is installed (`locate()`), when a config names it by `name` or by its
    repository path (sandbox/assets/NAME) and that path is not here; any other path unchanged."""
    p = Path(path)
    if path == name or (not p.exists() and p.as_posix().rstrip("/").endswith(f"sandbox/assets/{name}")):
        return str(locate())
    return path


def _resolve_base(path: str) -> str:
    """The shipped shapes base, see `resolve_shipped`."""
    from mmpref.sandbox.shapes.base import shapes_base_path

    return resolve_shipped(path, "shapes_base", shapes_base_path)


def wire_stage_paths(gcfg: Any, tcfg: Any, out: Path, threads: int | None, resolve: Callable[[str], str]) -> None:
    """Point the stages at each other inside OUT: the base wherever it is installed, generate -> OUT/pairs ->
    train -> OUT/aligned (its encoded-pair cache, when on and not placed, in OUT/cache), and the demo's
    thread count for sampling."""
    gcfg.model.path = resolve(gcfg.model.path)
    gcfg.output.dir = str(out / "pairs")
    tcfg.model.adapter.params.pretrained = resolve(tcfg.model.adapter.params.pretrained)
    tcfg.data.source = str(out / "pairs")
    tcfg.output_dir = str(out / "aligned")
    if tcfg.data.cache.enabled and not tcfg.data.cache.dir:
        tcfg.data.cache.dir = str(out / "cache")  # encoded pairs beside the demo's other outputs
    if threads:
        gcfg.runtime.threads = threads


def check_train_reads_generate(generate: Any, train: Any) -> None:
    """Refuse, before any stage runs, a paired objective on generate's unpaired output (labelled single
    samples), which the train stage would otherwise reject only after the samples are made."""
    tcfg = train.config
    if generate.config.pairing.unpaired and getattr(tcfg.objective.build(), "paired", True):
        raise UserError(f"demo: {generate.path.name} writes labelled single samples (pairing.strategy: unpaired), "
                        f"but {train.path.name}'s objective '{tcfg.objective.name}' trains on pairs; choose an "
                        "unpaired objective (train.objective.name=kto; in the shapes world --train-config shapes_kto) "
                        "or a pair strategy (generate.pairing.strategy=all_pairs).")


def load_stage_configs(settings: DemoSettings) -> tuple[Any, Any, dict[str, Any]]:
    """The validated generate and train configs and the eval settings data, with the demo's paths."""
    import mmpref.sandbox.shapes.scorers  # noqa: F401  registers shapes_truth and the detectors
    from mmpref.evaluation.engine import build_settings

    stage = split_overrides(settings.overrides)
    out = Path(settings.out)
    generate = load_config(settings.generate_config, stage["generate"], kind="pipeline")
    train = load_config(settings.train_config, stage["train"], kind="method")
    gcfg, tcfg = generate.config, train.config
    check_train_reads_generate(generate, train)
    wire_stage_paths(gcfg, tcfg, out, settings.threads, _resolve_base)
    eval_data = apply_overrides({**DEFAULT_EVAL, "threads": settings.threads, "models": [
        {"name": "base", "path": tcfg.model.adapter.params.pretrained},
        {"name": "aligned", "path": str(out / "aligned")},
    ], "out": str(out)}, stage["eval"], "demo eval")
    build_settings(eval_data, "demo eval")  # validate before any stage runs
    return generate, train, eval_data


def headline(report: dict[str, Any], seconds: float, truth: str = "shapes_truth") -> dict[str, Any]:
    """The demo's figures from an eval report whose first model is the base and second the aligned one
    (`truth`: the world's ground-truth scorer, whose graded score is reported beside the accuracy)."""
    base, aligned = report["models"][0], report["models"][1]
    v = aligned["vs_first"]

    def model_figures(m: dict[str, Any]) -> dict[str, Any]:
        return {"accuracy": m["metrics"]["accuracy"]["mean"], "accuracy_ci95": m["metrics"]["accuracy"]["ci95"],
                "score": m["metrics"][truth]["mean"], "score_ci95": m["metrics"][truth]["ci95"],
                "accuracy_by_form": m.get("accuracy_by_form", {})}

    out = {
        "base": model_figures(base),
        "aligned": model_figures(aligned),
        "gain": v["gain"]["accuracy"]["diff"],
        "gain_ci95": v["gain"]["accuracy"]["ci95"],
        "score_gain": v["gain"][truth]["diff"],
        "score_gain_ci95": v["gain"][truth]["ci95"],
        "win_rate": v["win_rate"],
        "win_rate_ci95": v["win_rate_ci95"],
        "wins": v["wins"], "losses": v["losses"], "ties": v["ties"], "tie_share": v["tie_share"],
        "seconds": round(seconds, 1),
    }
    checks = target_checks(out)
    out["targets"] = {**TARGETS, "met": all(c["met"] for c in checks), "checks": checks}
    return out


def target_checks(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its verdict and the figure it was judged on, so a report says which one failed."""
    lo, hi = figures["gain_ci95"]
    win = figures["win_rate"]
    return [
        {"target": f"gain >= {TARGETS['gain_min']:.2f} with CI low > {TARGETS['gain_ci95_low_above']:g}",
         "value": f"{figures['gain']:+.3f} [{lo:+.3f}, {hi:+.3f}]",
         "met": bool(figures["gain"] >= TARGETS["gain_min"] and lo > TARGETS["gain_ci95_low_above"])},
        {"target": f"win rate >= {TARGETS['win_rate_min']:.2f}",
         "value": f"{win:.3f}" if _number(win) else "n/a (every comparison tied)",
         "met": bool(_number(win) and win >= TARGETS["win_rate_min"])},
        {"target": f"<= {TARGETS['seconds_max']} s",
         "value": f"{figures['seconds']:.0f} s",
         "met": bool(figures["seconds"] <= TARGETS["seconds_max"])},
    ]


def targets_line(targets: dict[str, Any]) -> str:
    """The verdicts of `target_checks` in one line, for the printed summary and report.html alike."""
    return f"{'all met' if targets['met'] else 'NOT all met'}: " + "; ".join(
        f"{c['target']}: {'met' if c['met'] else 'NOT met'} ({c['value']})" for c in targets["checks"])


def format_summary(result: dict[str, Any]) -> str:
    b, a = result["base"], result["aligned"]
    lo, hi = result["gain_ci95"]
    wlo, whi = result["win_rate_ci95"]
    n = result["eval"]["prompts"]["count"]
    k = result["eval"]["seeds_per_prompt"]
    rows = [
        f"held-out prompts: {n} x {k} seeds (scenes never seen in training), ground-truth reward",
        f"{'':10}{'accuracy':>24}{'score':>24}",
        f"{'base':10}{b['accuracy']:>8.3f} [{b['accuracy_ci95'][0]:.3f}, {b['accuracy_ci95'][1]:.3f}]"
        f"{b['score']:>8.3f} [{b['score_ci95'][0]:.3f}, {b['score_ci95'][1]:.3f}]",
        f"{'aligned':10}{a['accuracy']:>8.3f} [{a['accuracy_ci95'][0]:.3f}, {a['accuracy_ci95'][1]:.3f}]"
        f"{a['score']:>8.3f} [{a['score_ci95'][0]:.3f}, {a['score_ci95'][1]:.3f}]",
        f"gain      {result['gain']:+.3f}  95% CI [{lo:+.3f}, {hi:+.3f}]",
        f"win rate  {result['win_rate']:.3f}  95% CI [{wlo:.3f}, {whi:.3f}]  (aligned vs base, ground-truth score; "
        f"{result['wins']} wins / {result['losses']} losses / {result['ties']} ties)",
        f"time      {result['seconds']:.0f} s (generate {result['stage_seconds']['generate']:.0f}, train "
        f"{result['stage_seconds']['train']:.0f}, eval {result['stage_seconds']['eval']:.0f})"
        + (f" on {machine_line(result['machine'])}" if result.get("machine") else ""),
        f"targets   {targets_line(result['targets'])}",
    ]
    return "\n".join(rows)


def run_demo(settings: DemoSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Generate -> train -> eval; returns the report (also OUT/report.json)."""
    import torch

    from mmpref.evaluation.engine import build_settings, evaluate

    start = time.time()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    out = Path(settings.out)
    if settings.fresh:
        clear_stage_outputs(out)
    generate, train, eval_data = load_stage_configs(settings)
    seconds: dict[str, float] = {}
    more = ("samples per prompt (generate.prompts.limit, generate.sampling.samples_per_prompt) or a lower "
            "generate.filters.min_margin")

    log(f"[1/3] generate: {generate.path.name} -> {generate.config.output.dir} (scorer "
        f"{generate.config.scorer.name}, {generate.config.sampling.samples_per_prompt} samples per prompt)")
    t0 = time.time()
    gen_summary = generate.entry.obj(generate.config)
    seconds["generate"] = round(time.time() - t0, 1)
    log_generated(gen_summary, seconds, log, more)
    train_result = train_stage(train, seconds, log, settings.train_threads)
    rounds, last_result = later_rounds(settings, generate, train, gen_summary, seconds, log, more)
    if rounds:
        eval_data["models"][1]["path"] = rounds[-1]["aligned"]  # its config.yaml names the fused base
        train_result = last_result

    eval_settings = build_settings(eval_data, "demo eval")
    log(f"[3/3] eval: base vs aligned on {eval_settings.prompts}, {eval_settings.seeds_per_prompt} seeds per prompt")
    t0 = time.time()

    def decorate(report: dict[str, Any]) -> None:
        seconds["eval"] = round(time.time() - t0, 1)
        assemble_report(report, headline(report, time.time() - start), seconds,
                        title="mmpref demo: Diffusion-DPO on the shapes world",
                        pairs={k: gen_summary[k] for k in ("prompts", "samples", "pairs", "samples_written", "scorer",
                                                           "scores", "margins") if k in gen_summary},
                        train_result=train_result, generate=(generate.name, generate.config),
                        train=(train.name, train.config), **({"rounds": rounds} if rounds else {}))

    return evaluate(eval_settings, log=log, decorate=decorate)


def clear_stage_outputs(out: Path) -> None:
    """`--fresh`: remove what the stages wrote under OUT (pairs, LoRA, encoded-pair cache, later rounds)."""
    for sub in ("pairs", "aligned", "cache", *(p.name for p in out.glob("round[0-9]*"))):
        shutil.rmtree(out / sub, ignore_errors=True)


def later_rounds(settings: DemoSettings, generate: Any, train: Any, first_pairs: dict[str, Any],
                 seconds: dict[str, float], log: Callable[[str], None],
                 more: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Rounds 2..settings.rounds of on-policy DPO, after round 1 wrote OUT/pairs and OUT/aligned: fuse the last
    LoRA into its base (OUT/roundK/model, the new policy and reference), sample it on the same prompts with
    the next seed (OUT/roundK/pairs) and train a fresh LoRA on those pairs (OUT/roundK/aligned). Each round
    depends on the one before, which just trained, so a round folder is always rebuilt. Stage times add up
    into `seconds` (plus "fuse"). Returns one record per round (none with a single round) and the last
    round's training result."""
    import copy

    from mmpref.pipelines.fuse import fuse_to_pipeline

    out, records, result = Path(settings.out), [], None
    last = train.config.output_dir
    for k in range(2, settings.rounds + 1):
        folder = out / f"round{k}"
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.time()
        model = str(fuse_to_pipeline(last, str(folder / "model")))
        seconds["fuse"] = round(seconds.get("fuse", 0.0) + time.time() - t0, 1)
        g, t = copy.deepcopy(generate), copy.deepcopy(train)
        g.config.model.path, g.config.model.lora = model, None
        g.config.sampling.seed = generate.config.sampling.seed + k - 1
        g.config.output.dir = str(folder / "pairs")
        t.config.model.adapter.params.pretrained = model
        t.config.data.source, t.config.output_dir = g.config.output.dir, str(folder / "aligned")
        tag = f"[round {k}/{settings.rounds}]"
        log(f"{tag} generate: round {k - 1}'s model ({model}), sampling seed {g.config.sampling.seed} -> "
            f"{g.config.output.dir}")
        t0 = time.time()
        summary = g.entry.obj(g.config)
        spent = {"generate": round(time.time() - t0, 1)}
        log_generated(summary, spent, log, more, tag=f"{tag} generate")
        result = train_stage(t, spent, log, settings.train_threads, tag=f"{tag} train")
        for stage in ("generate", "train"):
            seconds[stage] = round(seconds[stage] + spent[stage], 1)
        records.append({"round": k, "model": model, "pairs": str(folder / "pairs"), "aligned": t.config.output_dir,
                        "pairs_kept": (summary.get("pairs") or {}).get("kept"), "seconds": spent})
        last = t.config.output_dir
    if records:
        records.insert(0, {"round": 1, "model": train.config.model.adapter.params.pretrained,
                           "pairs": generate.config.output.dir, "aligned": train.config.output_dir,
                           "pairs_kept": (first_pairs.get("pairs") or {}).get("kept")})
    return records, result


def log_generated(gen_summary: dict[str, Any], seconds: dict[str, float], log: Callable[[str], None],
                  more: str, tag: str = "[1/3] generate") -> None:
    """Stop with what to change when the generate stage kept no pair; otherwise log what it made (pairs, or
    the labelled samples of generate.pairing.strategy=unpaired, which keeps every scored sample)."""
    from mmpref.pipelines.report import written_phrase

    pairs = gen_summary.get("pairs")
    if pairs is not None and not pairs["kept"]:
        raise UserError(f"demo: the generate stage kept no pair ({pairs['candidates']} candidates, dropped "
                        f"{pairs['dropped']}); use more prompts or {more}.")
    log(f"{tag}: {written_phrase(gen_summary)} from {gen_summary['prompts']['used']} prompts "
        f"({seconds['generate']:.0f} s)")


def train_stage(train: Any, seconds: dict[str, float], log: Callable[[str], None],
                threads: int | None = None, tag: str = "[2/3] train") -> dict[str, Any]:
    """Stage 2, `mmpref train` on the generated pairs (timed into `seconds`), with `threads` torch threads
    (capped at the cores this process may use; null: as they are), restored afterwards. The sampling stages
    split their work over processes of `DemoSettings.threads` each; training is one process, so it takes
    the cores itself (2 threads: 0.48 s per audio DPO step against 0.76 s with one, idle 2-core machine)."""
    from mmpref.pipelines.engine import cpu_cores, torch_threads

    with torch_threads(threads and max(1, min(threads, cpu_cores()))) as count:
        log(f"{tag}: {train.path.name} (objective {train.config.objective.name}, "
            f"{train.config.training.max_steps} steps, torch threads {count}) -> {train.config.output_dir}")
        t0 = time.time()
        result = train.entry.obj(train.config)
    seconds["train"] = round(time.time() - t0, 1)
    log(f"{tag}: done ({seconds['train']:.0f} s)")
    return result


def assemble_report(report: dict[str, Any], figures: dict[str, Any], seconds: dict[str, float], *, title: str,
                    pairs: dict[str, Any], train_result: dict[str, Any], generate: tuple[str, Any],
                    train: tuple[str, Any], **extra: Any) -> None:
    """Turn the eval report into the demo's report in place: headline figures first, the eval report, the
    pairs and training summaries, the resolved configs and a human-readable headline."""
    eval_report = dict(report)
    report.clear()
    report.update({"title": title, **extra, **figures, "stage_seconds": dict(seconds), "machine": describe_machine(),
                   "eval": eval_report, "files": eval_report.pop("files")})
    win = figures["win_rate"]
    report.update({
        "pairs": pairs,
        "train": {k: train_result.get(k) for k in ("steps", "losses", "output")},
        "configs": {"generate": {"pipeline": generate[0], **to_plain(generate[1])},
                    "train": {"method": train[0], **to_plain(train[1])}},
        "headline": {
            "base accuracy": f"{figures['base']['accuracy']:.3f} {_fmt(figures['base']['accuracy_ci95'])}",
            "aligned accuracy": f"{figures['aligned']['accuracy']:.3f} {_fmt(figures['aligned']['accuracy_ci95'])}",
            "gain": f"{figures['gain']:+.3f} {_fmt(figures['gain_ci95'])}",
            "win rate (ground truth)": f"{win:.3f} {_fmt(figures['win_rate_ci95'])}"
            if _number(win) else "n/a",
            "seconds": f"{figures['seconds']:.0f} on {machine_line(report['machine'])}",
            "targets": targets_line(figures["targets"]),
        },
    })


def _number(x: Any) -> bool:
    """A real figure: not None (no comparison) nor NaN (every comparison tied)."""
    return x is not None and x == x


def _fmt(ci: list[float]) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"
