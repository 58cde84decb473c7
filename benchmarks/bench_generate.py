"""`mmpref generate` samples/s over a plain per-prompt diffusers loop that scores each image as it comes.

On-policy pair scripts (Diffusion-DPO variants, Tango 2's data builder) usually call the pipeline once
per prompt for its N images and score each image on its own. `mmpref generate` batches images across
prompts and scores each batch in one call, and also writes parquet shards, the manifest and the report.
This prints, side by side in one run on the same tiny SD pipeline (random weights, 32x32), the same
prompts, seeds and scorer, the end-to-end samples/s of both (model and scorer loading included) and the
ratio (goal >= 1.0).

    python benchmarks/bench_generate.py                          # 16 prompts x 4 samples, 10 steps, tiny CLIP scorer
    python benchmarks/bench_generate.py --scorer brightness --prompts 32 --batch-size 32
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import torch
from side_by_side import plain_vs_generate

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=16, help="prompts (built-in 'objects' set; default 16)")
    parser.add_argument("--samples", type=int, default=4, help="samples per prompt (default 4)")
    parser.add_argument("--steps", type=int, default=10, help="denoising steps (default 10)")
    parser.add_argument("--batch-size", type=int, default=16, help="mmpref images per pipeline call (default 16)")
    parser.add_argument("--scorer", choices=("clip", "brightness"), default="clip",
                        help="clip: a PickScore-layout CLIP with random weights (width 256, 4 layers, 64 px); "
                             "brightness: the procedural scorer")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats of each side; the best is kept")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    return parser.parse_args()


def baseline(model: Path, scorer_spec: object, prompts: list[str], samples: int, steps: int, seed: int) -> int:
    """The plain loop: one pipeline call per prompt, each image scored as it comes, best vs worst kept."""
    from diffusers import DiffusionPipeline

    from mmpref.pipelines.seeds import derive_seed
    from mmpref.pipelines.writer import encode_png
    from mmpref.reward_models import build_scorer

    pipe = DiffusionPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    scorer = build_scorer(scorer_spec)
    pairs = []
    for index, prompt in enumerate(prompts):
        generators = [torch.Generator().manual_seed(derive_seed(seed, index, s)) for s in range(samples)]
        images = pipe(prompt, num_images_per_prompt=samples, generator=generators, num_inference_steps=steps,
                      guidance_scale=7.5, height=32, width=32).images
        scores = [float(scorer.score([image], [prompt])[0]) for image in images]
        best, worst = max(range(samples), key=scores.__getitem__), min(range(samples), key=scores.__getitem__)
        pairs.append((prompt, encode_png(images[best]), encode_png(images[worst])))
    return len(pairs)


def mmpref_generate(model: Path, scorer_spec: object, out: Path, args: argparse.Namespace, seed: int) -> int:
    from mmpref.config.schema import Where, build_dataclass
    from mmpref.pipelines.text_to_image import TextToImagePairsConfig, run

    data = {
        "model": {"path": str(model)},
        "prompts": {"source": "builtin:objects", "limit": args.prompts},
        "sampling": {"samples_per_prompt": args.samples, "steps": args.steps, "guidance_scale": 7.5,
                     "height": 32, "width": 32, "seed": seed},
        "scorer": scorer_spec,
        "output": {"dir": str(out), "prompts_per_shard": max(1, args.prompts // 2)},
        "runtime": {"device": "cpu", "batch_size": args.batch_size, "progress": False},
    }
    config = build_dataclass(TextToImagePairsConfig, data, Where("bench"))
    return run(config)["pairs"]["kept"]


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmpref.pipelines.prompt_sets import PROMPT_SETS
    from mmpref.testing.tiny import build_tiny_sd

    root = Path(tempfile.mkdtemp(prefix="bench_generate_"))
    try:
        model = build_tiny_sd(root / "sd")
        if args.scorer == "clip":
            from mmpref.reward_models.testing import make_hf_clip

            weights = make_hf_clip(root / "clip", image_size=64, patch_size=16, width=256, layers=4, projection_dim=128)
            scorer_spec: object = {"name": "pickscore", "weights": weights, "batch_size": 64}
        else:
            scorer_spec = "brightness"
        prompts = PROMPT_SETS["objects"]()[: args.prompts]
        n = args.prompts * args.samples
        baseline(model, scorer_spec, prompts[:2], 2, 2, seed=1)  # warm-up (oneDNN kernels, imports)
        plain_vs_generate(lambda: baseline(model, scorer_spec, prompts, args.samples, args.steps, seed=0),
                          lambda out: mmpref_generate(model, scorer_spec, out, args, seed=0),
                          root, args.repeats, n, "samples",
                          f"tiny SD 32x32, {args.prompts} prompts x {args.samples} samples = {n} samples, {args.steps} steps, "
                          f"scorer {args.scorer}, mmpref batch {args.batch_size}, torch threads {torch.get_num_threads()}, "
                          f"best of {args.repeats}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
