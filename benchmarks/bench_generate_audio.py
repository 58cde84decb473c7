"""`mmpref generate` clips/s on audio over a plain per-prompt TangoPipeline loop that scores each clip as it comes.

The audio counterpart of bench_generate.py, at the audio demo's real scale: the shipped Tango-shaped base
(1.28 s clips, 15 DDIM steps, CFG 3), the audio world's training prompts and its ground-truth scorer. The plain
loop calls the pipeline once per prompt for its clips, scores each clip on its own, keeps best vs worst as WAV
bytes; `mmpref generate` (audio_demo_generate's settings, one process) batches clips across prompts, asks the
pipeline for latents and decodes them itself so each clip's latents are kept too, scores each batch in one
call, and writes shards, manifest and report. Both sides run side by side in one process with the same
prompts, seeds, threads and scorer; the best of --repeats is kept. Goal: ratio >= 1.0.

    python benchmarks/bench_generate_audio.py                       # 32 prompts x 4 clips
    python benchmarks/bench_generate_audio.py --processes 2       # as the demo samples: 2 processes, 1 thread each

Measured (2026-12-07, 2 CPU cores, torch's 2 threads for the plain loop): 32 prompts x 4 clips in one process
1.09x (plain loop 5.8 clips/s, mmpref 6.4; best of 2); in two processes 0.95x (5.5 clips/s: starting the
workers costs more than they save on 128 clips); 128 prompts x 4 clips in two processes 1.22x (5.8 vs 7.1).
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

STEPS, CFG = 15, 3.0  # the audio demo's sampler


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=32, help="audio-world training prompts (default 32)")
    parser.add_argument("--samples", type=int, default=4, help="clips per prompt (default 4)")
    parser.add_argument("--batch-size", type=int, default=64, help="mmpref clips per pipeline call (default 64)")
    parser.add_argument("--processes", type=int, default=1,
                        help="mmpref sampling processes (the demo's 2: one torch thread each; default 1)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats of each side; the best is kept")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    return parser.parse_args()


def baseline(model: Path, prompts: list[str], samples: int, seed: int) -> int:
    """The plain loop: one pipeline call per prompt, each clip scored as it comes, best vs worst kept."""
    from mmpref.audio.pipeline import TangoPipeline
    from mmpref.pipelines.audio_sampler import encode_wav
    from mmpref.pipelines.seeds import derive_seed
    from mmpref.reward_models import build_scorer

    pipe = TangoPipeline.from_pretrained(str(model))
    pipe.set_progress_bar_config(disable=True)
    scorer = build_scorer("audio_truth")
    pairs = []
    for index, prompt in enumerate(prompts):
        generators = [torch.Generator().manual_seed(derive_seed(seed, index, s)) for s in range(samples)]
        clips = pipe(prompt, num_waveforms_per_prompt=samples, generator=generators, num_inference_steps=STEPS,
                     guidance_scale=CFG).audios
        scores = [float(scorer.score([clip], [prompt])[0]) for clip in clips]
        best, worst = max(range(samples), key=scores.__getitem__), min(range(samples), key=scores.__getitem__)
        pairs.append((prompt, encode_wav(clips[best], pipe.sample_rate), encode_wav(clips[worst], pipe.sample_rate)))
    return len(pairs)


def mmpref_generate(model: Path, out: Path, args: argparse.Namespace, seed: int) -> int:
    from mmpref.config import load_config

    overrides = [f"model.path={model}", f"prompts.limit={args.prompts}", f"sampling.seed={seed}",
                 f"strategies.0.samples={args.samples}", f"output.dir={out}", f"runtime.processes={args.processes}",
                 f"runtime.batch_size={args.batch_size}", "runtime.progress=false",
                 f"output.prompts_per_shard={max(1, args.batch_size // args.samples)}"]
    if args.processes > 1:
        overrides.append("runtime.threads=1")
    run = load_config("audio_demo_generate", overrides, kind="pipeline")
    return run.entry.obj(run.config)["pairs"]["kept"]


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import mmpref.sandbox.audio.scorers  # noqa: F401  registers audio_truth
    from mmpref.pipelines.prompt_sets import PROMPT_SETS
    from mmpref.sandbox.audio_base.base import audio_base_path

    model = audio_base_path()
    prompts = PROMPT_SETS["audio_train"]()[: args.prompts]
    root = Path(tempfile.mkdtemp(prefix="bench_generate_audio_"))
    try:
        n = args.prompts * args.samples
        baseline(model, prompts[:2], 2, seed=1)  # warm-up (oneDNN kernels, imports)
        plain_vs_generate(lambda: baseline(model, prompts, args.samples, seed=0),
                          lambda out: mmpref_generate(model, out, args, seed=0),
                          root, args.repeats, n, "clips",
                          f"shipped audio base, 1.28 s clips, {args.prompts} prompts x {args.samples} clips = {n} clips, "
                          f"{STEPS} steps, CFG {CFG}, scorer audio_truth, mmpref batch {args.batch_size} (latents kept) in "
                          f"{args.processes} process(es), torch threads {torch.get_num_threads()}, best of {args.repeats}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
