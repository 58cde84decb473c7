"""`mmpref eval`: compare models on a prompt set with scores, confidence intervals and win rates."""

from __future__ import annotations

import argparse

from mmpref.arg_types import positive_int
from mmpref.config import apply_overrides

EPILOG = """\
models (the first is the reference of gains and win rates):
  NAME=PIPELINE_DIR        a diffusers pipeline directory (a base, or `mmpref train` with finetune: full)
  NAME=LORA_DIR            a LoRA output of `mmpref train` (its base read from LORA_DIR/config.yaml)
  NAME=LORA_DIR@BASE_DIR   a LoRA on an explicit base pipeline
  shapes_base              the shipped shapes-world base model

example:
  mmpref eval base=shapes_base aligned=mmpref-demo/dpo --prompts builtin:shapes_heldout --seeds 4 --out eval
  mmpref eval base=shapes_base aligned=outputs/shapes_ipo --set steps=30 accuracy.threshold=0.9
  mmpref eval base=shapes_base aligned=mmpref-demo/aligned --processes 2   # CPU: one process per core, same images
  mmpref eval base=mmpref/sandbox/assets/audio_base aligned=mmpref-demo-audio/aligned   # audio: held-out clips, WAVs
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "eval",
        help="compare models on held-out prompts: scores with 95%% CIs, win rates, report.html",
        description="Generate every model on the same prompts with the same seeds, score the samples with "
        "registered reward models, and write report.json, report.html and image grids to --out. CIs are "
        "seeded percentile bootstraps over prompts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="NAME=PATH, NAME=LORA_DIR@BASE or a path")
    parser.add_argument("--prompts", default=None, help="builtin:NAME, a text file or a data file (default "
                        "builtin:shapes_heldout; for audio models builtin:audio_heldout)")
    parser.add_argument("--limit", type=positive_int, default=None, help="only the first N prompts")
    parser.add_argument("--seeds", type=positive_int, default=None, help="samples per prompt and model (default 4)")
    parser.add_argument("--scorers", default=None, help="comma-separated reward models (default shapes_truth; for audio models "
                        "audio_truth)")
    parser.add_argument("--out", default=None, help="output directory (default ./mmpref-eval)")
    parser.add_argument("--processes", type=positive_int, default=None,
                        help="CPU sampling processes (default 1); the images do not depend on it")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="any other setting (seed, steps, guidance_scale, batch_size, resamples, "
                        "win_rate_scorer, accuracy.scorer, accuracy.threshold, grid_prompts, save_images, device, threads)")


def settings_from_args(args: argparse.Namespace):  # noqa: ANN201 - (EvalSettings, audio), imported lazily
    """The eval settings, and whether the first model is a text-to-audio one (its prompts, scorers and evaluator)."""
    from mmpref.evaluation.audio import AUDIO_DEFAULTS, is_audio_model
    from mmpref.evaluation.engine import EvalModel, build_settings, parse_model

    data: dict = {"models": [parse_model(s, i) for i, s in enumerate(args.models)]}
    audio = is_audio_model(EvalModel(**data["models"][0]))
    if audio:  # the audio world's prompts and truth unless given
        data.update(AUDIO_DEFAULTS)
    for key, value in (("prompts", args.prompts), ("limit", args.limit), ("seeds_per_prompt", args.seeds),
                       ("out", args.out), ("processes", args.processes)):
        if value is not None:
            data[key] = value
    if args.scorers:
        data["scorers"] = [s.strip() for s in args.scorers.split(",") if s.strip()]
    data = apply_overrides(data, list(args.set), "mmpref eval --set")
    return build_settings(data, "mmpref eval"), audio


def run(args: argparse.Namespace) -> int:
    from mmpref.evaluation.audio import evaluate_audio
    from mmpref.evaluation.engine import evaluate, format_table

    settings, audio = settings_from_args(args)
    report = (evaluate_audio if audio else evaluate)(settings)
    print(format_table(report))
    print(f"wrote {settings.out}/report.json, report.html and grids ({report['seconds']:.0f} s)")
    return 0
