"""`mmpref fuse`: a LoRA output of `mmpref train` fused into its base, saved as a pipeline directory.

The next on-policy round trains from it (`model.adapter.pretrained`), so that round's reference is the model
that sampled its pairs; `mmpref generate`, `mmpref eval` and stock `from_pretrained` load it like any base.
"""

from __future__ import annotations

import argparse

EPILOG = """\
example (a second on-policy round of the audio demo):
  mmpref generate audio_demo_generate model.lora=mmpref-demo-audio/aligned sampling.seed=1 output.dir=round2/pairs
  mmpref fuse mmpref-demo-audio/aligned --out round2/model
  mmpref train audio_dpo model.adapter.pretrained=round2/model data.source=round2/pairs output_dir=round2/aligned
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "fuse",
        help="fuse a trained LoRA into its base and save the pipeline (the next round's base)",
        description="Load the LoRA's base (read from LORA_DIR/config.yaml unless --base), apply the LoRA, fuse it "
        "and save the whole pipeline (safetensors) to --out.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("lora", metavar="LORA_DIR", help="an `mmpref train` output folder with finetune: lora")
    parser.add_argument("--out", required=True, help="the new pipeline directory (must not exist)")
    parser.add_argument("--base", default=None, help="the base pipeline (default: the one in LORA_DIR/config.yaml)")
    parser.add_argument("--scale", type=float, default=1.0, help="the LoRA's strength (default 1.0)")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                        help="the saved weights' dtype (fused in float32 either way; float16 halves an SDXL pipeline)")


def run(args: argparse.Namespace) -> int:
    from mmpref.pipelines.fuse import fuse_to_pipeline

    out = fuse_to_pipeline(args.lora, args.out, base=args.base, scale=args.scale, dtype=args.dtype)
    print(f"wrote {out}: {args.lora} fused into its base at scale {args.scale} ({args.dtype})")
    return 0
