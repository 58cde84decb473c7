"""The `mmpref` command line: train, generate, score, eval, fuse, demo, list, cp, env.

Errors the user can fix print one or two lines and exit with status 2; internal errors keep their
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from mmpref import __version__
from mmpref.errors import UserError

COMMANDS = ("train", "generate", "score", "eval", "fuse", "demo", "list", "cp", "env")

DESCRIPTION = """\
mmpref aligns diffusion and multimodal models with preference data:
sample a model, score the samples, pair them, train on the pairs.

common workflows:
  mmpref demo                                   align a tiny built-in model on 2 CPU cores and measure the gain
  mmpref list                                   every objective, adapter, method, scorer, pipeline and config
  mmpref cp sdxl_diffusion_dpo_lora my.yaml     copy a bundled recipe to edit it
  mmpref train my.yaml training.lr=1e-5         train (key.path=value overrides; --dry-run validates only)
  accelerate launch -m mmpref train my.yaml     the same on many GPUs
  mmpref generate CONFIG                        sample -> score -> pair -> write a preference dataset
  mmpref fuse LORA_DIR --out DIR                a trained LoRA fused into its base (an on-policy round's base)
  mmpref score --model pickscore IMAGES ...     score images with bundled reward models
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmpref", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"mmpref {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"mmpref.commands.{name}")
        before = set(sub.choices)
        module.add_parser(sub)
        for added in set(sub.choices) - before:
            sub.choices[added].set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Overrides after a flag (`train CONFIG --dry-run a.b=1`) end up here: argparse fills a `nargs="*"`
        # positional only once. Take them back where the command has overrides; refuse anything else.
        if hasattr(args, "overrides") and all("=" in item and not item.startswith("-") for item in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except UserError as err:
        print(f"mmpref {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"mmpref {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`mmpref list | head`): stop quietly, as other command-line tools do; point
        # stdout at /dev/null so the interpreter's final flush does not raise the same error again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
