"""Batched vs per-image scoring throughput of a CLIP-size scorer, inference and differentiable paths.

Pair generation scores thousands of samples and RG-LCD / DI* backpropagate through the reward every
step; both used to score one image at a time. This prints, side by side in one run, images/s when
the same images go through `score` / `score_pixels` one by one and as batches, and the ratio.

The model is a PickScore-layout CLIP with random weights built from a config (ViT-B/32 size by
default: nothing is downloaded), saved and loaded back through the real loader.

    python benchmarks/bench_scorers.py                     # ViT-B/32 size, 32 images of 512x512
    python benchmarks/bench_scorers.py --width 1280 --layers 32 --patch 14   # ViT-H/14 vision size
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=32, help="images scored per measurement (default 32)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of the batched runs (default 32)")
    parser.add_argument("--image-px", type=int, default=512, help="side of the input images (default 512)")
    parser.add_argument("--images-per-prompt", type=int, default=1,
                        help="images sharing a prompt (1 = every prompt distinct, the worst case for batching)")
    parser.add_argument("--width", type=int, default=768, help="vision width (ViT-B/32: 768)")
    parser.add_argument("--layers", type=int, default=12, help="vision and text layers (ViT-B/32: 12)")
    parser.add_argument("--heads", type=int, default=12, help="vision heads (ViT-B/32: 12)")
    parser.add_argument("--patch", type=int, default=32, help="patch size (ViT-B/32: 32)")
    parser.add_argument("--model-px", type=int, default=224, help="model input resolution (default 224)")
    parser.add_argument("--text-width", type=int, default=512, help="text width (ViT-B/32: 512)")
    parser.add_argument("--projection", type=int, default=512, help="embedding size (ViT-B/32: 512)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats; the best is kept (default 2)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    return parser.parse_args()


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of `repeats` runs after one warm-up (CPU timings are noisy on shared machines)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from mmpref.reward_models import build_scorer
    from mmpref.reward_models.testing import make_hf_clip

    with tempfile.TemporaryDirectory() as tmp:
        directory = make_hf_clip(tmp, image_size=args.model_px, patch_size=args.patch, width=args.width,
                                 layers=args.layers, heads=args.heads, intermediate=4 * args.width,
                                 projection_dim=args.projection, text_width=args.text_width,
                                 text_heads=max(1, args.text_width // 64))
        scorer = build_scorer({"name": "pickscore", "weights": directory}, device=args.device)
    params = sum(p.numel() for p in scorer.clip.model.parameters()) / 1e6

    rng = np.random.default_rng(0)
    n = args.images
    images = [Image.fromarray(rng.integers(0, 256, (args.image_px, args.image_px, 3), dtype=np.uint8))
              for _ in range(n)]
    prompts = [f"a photo of object number {i // args.images_per_prompt} on a table" for i in range(n)]
    pixels = torch.stack([torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255 for im in images])
    pixels = pixels.to(args.device)

    def infer_single() -> None:
        for image, prompt in zip(images, prompts):
            scorer.score([image], [prompt])

    def infer_batched() -> None:
        scorer.score(images, prompts, batch_size=args.batch_size)

    def sync(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            fn()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
        return run

    def grad_single() -> None:
        for i in range(n):
            x = pixels[i:i + 1].clone().requires_grad_(True)
            scorer.score_pixels(x, prompts[i:i + 1]).sum().backward()

    def grad_batched() -> None:
        for start in range(0, n, args.batch_size):
            x = pixels[start:start + args.batch_size].clone().requires_grad_(True)
            scorer.score_pixels(x, prompts[start:start + args.batch_size]).sum().backward()

    print(f"PickScore-layout CLIP, random weights: vision {args.width}w x {args.layers}L patch {args.patch} @ "
          f"{args.model_px}px, text {args.text_width}w, {params:.0f}M params; {n} images of {args.image_px}px, "
          f"{args.images_per_prompt} per prompt; {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'path':<16}{'per-image img/s':>18}{'batched img/s':>16}{'batch':>7}{'ratio':>8}")
    for label, single, batched in (("inference", infer_single, infer_batched),
                                   ("differentiable", grad_single, grad_batched)):
        t_single = best_time(sync(single), args.repeats)
        t_batched = best_time(sync(batched), args.repeats)
        print(f"{label:<16}{n / t_single:>18.2f}{n / t_batched:>16.2f}{args.batch_size:>7}"
              f"{t_single / t_batched:>7.2f}x")


if __name__ == "__main__":
    main()
