"""`mmpref demo --world audio`: align the shipped Tango-shaped audio base with Diffusion-DPO on a CPU.

The shapes demo's three stages, on sound (each the same code path as its command):
1. `mmpref generate audio_demo_generate`: sample the base on the audio world's training prompts, score
   the clips with the world's ground truth (or a detector: no CLAP), pair them -> OUT/pairs;
2. `mmpref train audio_dpo`: Diffusion-DPO LoRA on those pairs (adapter text_to_audio) -> OUT/aligned;
3. eval (`mmpref.evaluation.audio`): base vs aligned on the held-out prompts (scenes never trained on),
   the same seeds for both, ground-truth accuracy with 95 % bootstrap CIs, the paired gain and win rate.

OUT/report.json has the shapes demo's headline keys: base.accuracy, aligned.accuracy, gain, gain_ci95,
win_rate, seconds (plus the eval report, the configs and each stage's time).

Measured with the bundled configs on the shipped base (2026-12-07, 2 CPU cores, `--fresh`; sampling in two
processes of one thread each, training in one process of two threads from the encoded-pair cache, on the
latents generate stored with each clip): 1,068 pairs from 373 prompts x 4 clips; held-out accuracy base 0.542
[0.494, 0.588] -> aligned 0.600 [0.548, 0.650], gain +0.058 [+0.028, +0.088], win rate 0.670 [0.573, 0.766]
(63 wins / 31 losses / 406 ties); stages generate 208 s, train 194 s, eval 139 s (541 s). The win-rate and
time targets are met, the gain target (+0.10) is not (on an AVX-512 CPU; with AVX2 only, 2026-12-08: +0.056
[+0.028, +0.086], win rate 0.677, 844 s: generate 302, train 328, eval 214). Re-encoding the WAVs instead (data.stored_latents=false,
what the demo did before generate kept latents) gained +0.050 [+0.026, +0.076], win rate 0.708, 550 s; at 800
training steps (over the time target) +0.072 [+0.042, +0.104] on the clips' own latents against +0.036
[+0.006, +0.066] re-encoded, at 1,200 +0.052: the round trip costs DPO part of its signal, but it is not what
holds the gain near +0.05. On the stored latents at 400 steps, beta 5000 +0.038, 1000 +0.070 [+0.036, +0.106]
(win rate 0.667), 500 +0.072 [+0.036, +0.108] (0.619), 250 -0.024 (win rate 0.49), lr 5e-4 +0.048: single runs, within each other's
noise, so the config keeps Tango 2's beta 2000.
The demo samples with 15 DDIM steps (CFG 3), for pairs and eval alike. At the 25 steps the base's own
record uses, the same recipe gained nothing (0.608 -> 0.606, -0.002 [-0.030, +0.026], 852 s): DPO fitted
its pairs (reward accuracy 0.75-0.89) while the samples stayed the same (82-93 % ties, also on training
prompts). beta 20000 with an EMA of the LoRA, the sampler's own latents in place of re-encoded clips (on an
earlier base, before the vocoder's polish) and count/order-contrast pairs from shared noise gave +0.016 at most; beta 300, 1,200 steps and a full-UNet
fine-tune stayed within 0.04 of the base (screens of 125 held-out prompts x 2 seeds). With 10 steps (base
0.506; 600 training steps to use the time saved) the gain was +0.038 [+0.012, +0.066], win rate 0.59.
On the 15-step pairs (training at one thread), an EMA of the LoRA gave +0.042, beta 5000 with it +0.034,
beta 1000 +0.048, lr 2e-3 +0.026, timestep_range [0.3, 1] +0.020 ([0, 0.5] +0.000), LoRA rank 16 on the ResNet convs too
+0.054. Data did not move it either (2026-12-07, same eval): Tango 2's SFT epoch on the winners first
(training.sft_epochs 1, then DPO to step 400) +0.032; the winners' denoising loss alone for 400 steps
broke the base (0.180: its own 15-step clips are worse training data than the renders it learned from);
1,004 near-miss pairs (an original-prompt clip against clips of prompts one sound, count or order away,
perturbation strategy) +0.016, with the demo's pairs +0.034; three times the pairs (the 10-, 15- and
25-step sets, 3,217) +0.032, for 800 steps +0.022. The recipe plateaus near +0.05 on this base.
Nor does a base with slips DPO could undo: 800 full-UNet steps (lr 2e-4) on renders of the training prompts
whose clip showed a scene one edit from its caption in 30 % of rows (a group dropped, a count, the order or a
sound changed, as loose web captions do) took the base to 0.338 held-out; the demo on it (1,494 pairs) gained
-0.014 [-0.034, +0.006], win rate 0.42 (84 % ties).
Nor a less-trained base: the same UNet run's checkpoint at 4,000 of its 7,000 steps (the shipped VAE, vocoder
and text encoder) samples 0.444 held-out at 15 steps; the demo on it (1,277 pairs) gained +0.002 [-0.022, +0.026],
win rate 0.58, 580 s. Nor a better-trained one: the shipped UNet trained on for 3,000 more steps at the schedule's
floor lr (1e-4, from its EMA weights) samples 0.610 held-out at 15 steps; the demo on it (re-encoding the WAVs) gained +0.046
[+0.016, +0.080], win rate 0.66. Nor a stronger guidance at eval: the demo's LoRA at CFG 5 gains +0.042 (base 0.580).
Nor KTO on generate's unpaired clips (pairing.strategy unpaired, truth threshold 1.0: 964 desirable, 528 not):
lr 1e-3 broke the base (0.094, as SFT on re-encoded clips does), lr 1e-4 -0.010 [-0.036, +0.018]. What DPO has
to fix is mostly counts (536 of 768 failed checks of the pairs' rejected clips, off by one either way).
On-policy rounds do reach the gain target, at about twice the time target (2026-12-07, `--rounds 3 --fresh`,
same eval): round K fuses round K-1's LoRA into its base (the new policy and DPO reference), samples it on
the training prompts with seed K-1 and trains a fresh LoRA with audio_dpo. Pairs 1,068 / 996 / 942 (fewer
as more prompts come out all right); held-out accuracy 0.542 -> 0.674 [0.626, 0.720], gain +0.132 [+0.098,
+0.168], win rate 0.776 [0.704, 0.844] (104 / 30 / 366), 1,304 s (generate 580, train 585, eval 139). After
round 2 the gain was +0.082 [+0.048, +0.118], win rate 0.696 (same pairs, run by hand). Rounds cannot be
made cheap enough for 600 s: two rounds of half the prompts and 200 steps each gave +0.044 after round 1
and +0.042 after round 2 (440 s before the eval), and 1,200 training steps alone take ~585 s; bf16 autocast halves the
UNet's sampling time on this CPU (AMX) but makes a training step slower (0.54 s against 0.47), and two
DDP processes of one thread train 8 % faster than one of two. So the default stays one round (+0.058, 541 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmpref.config import apply_overrides, load_config
from mmpref.demo.run import (
    DemoSettings,
    assemble_report,
    check_train_reads_generate,
    clear_stage_outputs,
    headline,
    later_rounds,
    log_generated,
    resolve_shipped,
    split_overrides,
    train_stage,
    wire_stage_paths,
)
from mmpref.errors import UserError
from mmpref.sandbox.audio_base.base import BUILD_COMMAND

DEFAULT_GENERATE = "audio_demo_generate"
DEFAULT_TRAIN = "audio_dpo"
DEFAULT_OUT = "mmpref-demo-audio"
TRUTH = "audio_truth"
# The audio demo's evaluation: every held-out prompt, the ground truth and both detectors.
DEFAULT_EVAL: dict[str, Any] = {
    "prompts": "builtin:audio_heldout",
    "seeds_per_prompt": 4,
    "seed": 1234,
    "scorers": [TRUTH, "audio_event_detector", "audio_order_detector"],
    "win_rate_scorer": TRUTH,
    "accuracy": {"scorer": TRUTH, "threshold": 1.0},
    "steps": 15,  # the sampler audio_demo_generate makes its pairs with (see the module docstring)
    "guidance_scale": 3.0,
    "batch_size": 64,
    "processes": 2,  # one per core of the 2-core target, sampling the same batches as one process would
}


def _resolve_base(path: str) -> str:
    """The shipped audio base, see `resolve_shipped`."""
    from mmpref.sandbox.audio_base.base import audio_base_path

    return resolve_shipped(path, "audio_base", audio_base_path)


def load_audio_stage_configs(settings: DemoSettings) -> tuple[Any, Any, dict[str, Any]]:
    """The validated generate and train configs and the eval settings data, with the demo's paths."""
    import mmpref.sandbox.audio.scorers  # noqa: F401  registers audio_truth and the detectors
    from mmpref.evaluation.engine import build_settings

    stage = split_overrides(settings.overrides)
    out = Path(settings.out)
    generate = load_config(settings.generate_config, stage["generate"], kind="pipeline")
    train = load_config(settings.train_config, stage["train"], kind="method")
    gcfg, tcfg = generate.config, train.config
    if getattr(gcfg, "strategies", None) is None:
        raise UserError(f"demo --world audio: {generate.path.name} is not a text_to_audio_pairs config.")
    check_train_reads_generate(generate, train)
    wire_stage_paths(gcfg, tcfg, out, settings.threads, _resolve_base)
    eval_data = apply_overrides({**DEFAULT_EVAL, "threads": settings.threads, "models": [
        {"name": "base", "path": tcfg.model.adapter.params.pretrained},
        {"name": "aligned", "path": str(out / "aligned"), "base": tcfg.model.adapter.params.pretrained},
    ], "out": str(out)}, stage["eval"], "demo eval")
    build_settings(eval_data, "demo eval")  # validate before any stage runs
    return generate, train, eval_data


def run_audio_demo(settings: DemoSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Generate -> train -> eval on the audio world; returns the report (also OUT/report.json)."""
    import torch

    from mmpref.evaluation.audio import evaluate_audio
    from mmpref.evaluation.engine import build_settings

    start = time.time()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    out = Path(settings.out)
    if settings.fresh:
        clear_stage_outputs(out)
    generate, train, eval_data = load_audio_stage_configs(settings)
    if not (Path(generate.config.model.path) / "model_index.json").is_file():
        raise UserError(f"demo --world audio: no TangoPipeline at {generate.config.model.path}; the shipped base is "
                        f"built with `{BUILD_COMMAND}` (or set generate.model.path and train.model.adapter.pretrained).")
    seconds: dict[str, float] = {}
    gcfg = generate.config
    per_prompt = sum(s.size for s in gcfg.strategies)
    log(f"[1/3] generate: {generate.path.name} -> {gcfg.output.dir} (scorer {gcfg.scorers[0].scorer.name}, "
        f"{per_prompt} clips per prompt)")
    t0 = time.time()
    gen_summary = generate.entry.obj(gcfg)
    seconds["generate"] = round(time.time() - t0, 1)
    more = "clips per prompt (generate.prompts.limit, generate.strategies) or a lower generate.scorers.0.min_margin"
    log_generated(gen_summary, seconds, log, more)
    train_result = train_stage(train, seconds, log, settings.train_threads)
    rounds, last_result = later_rounds(settings, generate, train, gen_summary, seconds, log, more)
    if rounds:  # the last round's LoRA on the model it was trained from
        eval_data["models"][1].update(path=rounds[-1]["aligned"], base=rounds[-1]["model"])
        train_result = last_result

    eval_settings = build_settings(eval_data, "demo eval")
    log(f"[3/3] eval: base vs aligned on {eval_settings.prompts}, {eval_settings.seeds_per_prompt} seeds per prompt")
    t0 = time.time()

    def decorate(report: dict[str, Any]) -> None:
        seconds["eval"] = round(time.time() - t0, 1)
        assemble_report(report, headline(report, time.time() - start, truth=TRUTH), seconds,
                        title="mmpref demo: Diffusion-DPO on the audio world", world="audio",
                        pairs={k: gen_summary[k] for k in ("prompts", "samples", "pairs", "scores", "margins",
                                                           "strategies") if k in gen_summary},
                        train_result=train_result, generate=(generate.name, gcfg), train=(train.name, train.config),
                        **({"rounds": rounds} if rounds else {}))

    return evaluate_audio(eval_settings, log=log, decorate=decorate)
