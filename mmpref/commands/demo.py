"""`mmpref demo`: align a tiny built-in model end to end on a CPU and report the measured gain."""

from __future__ import annotations

import argparse

from mmpref.arg_types import non_negative_int, positive_int

EPILOG = """\
stages (each a bundled config: `mmpref cp NAME my.yaml`, edit, pass it back with --generate-config/--train-config):
  1. generate  shapes_demo_generate  sample the shipped base on 351 training prompts, score, pair -> OUT/pairs
  2. train     shapes_dpo            Diffusion-DPO LoRA through the `mmpref train` trainer   -> OUT/aligned
  3. eval      (settings below)      base vs aligned on 117 held-out prompts, same seeds     -> OUT/report.*

overrides (STAGE.KEY.PATH=VALUE):
  mmpref demo train.objective.beta=5000 train.training.max_steps=500
  mmpref demo generate.scorer.name=shapes_color_blobs      pair with an imperfect detector instead of the truth
  mmpref demo --train-config shapes_ipo                    another objective (shapes_ipo, shapes_cdpo, ...)
  mmpref demo eval.seeds_per_prompt=8 eval.resamples=5000
  mmpref demo --world audio                                text-to-audio: audio_demo_generate, audio_dpo, 125 held-out prompts
  mmpref demo --world audio --rounds 3                     three on-policy rounds (each samples the last round's model)
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="align a tiny built-in model on a CPU (generate -> train -> eval) and measure the gain",
        description="Generate preference pairs from the shipped shapes-world base model, train Diffusion-DPO "
        "with LoRA through the same trainer as `mmpref train`, and evaluate base vs aligned on held-out "
        "prompts with the ground-truth reward: accuracy gain with a 95%% bootstrap CI and the win rate.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", metavar="STAGE.KEY=VALUE",
                        help="override a stage's config: generate.*, train.* or eval.*")
    parser.add_argument("--world", choices=("shapes", "audio"), default="shapes",
                        help="shapes: text-to-image (default); audio: the Tango-shaped text-to-audio base, stages "
                        "audio_demo_generate and audio_dpo, 125 held-out prompts")
    parser.add_argument("--out", default=None, help="output directory (default ./mmpref-demo, audio: ./mmpref-demo-audio)")
    parser.add_argument("--generate-config", default=None, help="generate config (default shapes_demo_generate)")
    parser.add_argument("--train-config", "--config", default=None, help="train config (default shapes_dpo)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch CPU threads per sampling process (default 1: sampling runs in two processes, one "
                        "per core, see generate.runtime.processes and eval.processes; two threads on a CPU shared "
                        "with other work can run 10x slower)")
    parser.add_argument("--train-threads", type=non_negative_int, default=2,
                        help="torch CPU threads of the train stage, which runs alone in one process (default 2, "
                        "capped at the machine's CPUs, 1.6x faster per step than 1 on an idle 2-core machine; "
                        "0: the same as --threads)")
    parser.add_argument("--rounds", type=positive_int, default=1,
                        help="on-policy rounds (default 1): round K fuses round K-1's LoRA into its base (OUT/roundK/model), "
                        "samples it with the next seed (OUT/roundK/pairs) and trains a LoRA on it (OUT/roundK/aligned); "
                        "the eval compares the base with the last round's model. Each round takes about the time of "
                        "the first's generate and train stages")
    parser.add_argument("--fresh", action="store_true", help="delete OUT/pairs, OUT/aligned, OUT/cache and OUT/round* first")


def run(args: argparse.Namespace) -> int:
    from mmpref.demo.run import DEFAULT_GENERATE, DEFAULT_TRAIN, DemoSettings, format_summary, run_demo

    generate, train, out, runner = DEFAULT_GENERATE, DEFAULT_TRAIN, "./mmpref-demo", run_demo
    if args.world == "audio":
        from mmpref.demo import audio

        generate, train, out, runner = audio.DEFAULT_GENERATE, audio.DEFAULT_TRAIN, audio.DEFAULT_OUT, audio.run_audio_demo
    out = args.out or out
    settings = DemoSettings(out=out, generate_config=args.generate_config or generate,
                            train_config=args.train_config or train, overrides=list(args.overrides),
                            threads=args.threads, train_threads=args.train_threads or None,
                            fresh=args.fresh, rounds=args.rounds)
    result = runner(settings)
    print(format_summary(result))
    print(f"report: {out}/report.html, report.json, grid_comparison.png")
    return 0
