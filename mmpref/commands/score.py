"""`mmpref score`: score a folder, list or dataset of images (or audio) with one or more reward models.

    mmpref score --model pickscore,hpsv2.1 IMAGES --prompts prompts.txt --out scores.parquet

Every scorer is loaded once and run batched; unreadable files are listed and skipped, the rest are
written (CSV, JSONL or parquet, by the extension of --out) and a mean / std / 95 % CI summary per
scorer is printed at the end.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from mmpref.arg_types import positive_int
from mmpref.errors import UserError, did_you_mean

OUTPUT_FORMATS = (".csv", ".jsonl", ".parquet")
EPILOG = """\
IMAGES is a folder (files sorted by name), a list file (.txt: one path per line, relative to the
list) or a dataset (.parquet/.jsonl/.json/.csv, or a `datasets.save_to_disk` folder) whose image and
prompt columns are named by --image-column / --prompt-column.

examples:
  mmpref score --model pickscore,hpsv2.1 samples/ --prompts prompts.txt --out scores.parquet
  mmpref score --model aesthetic samples/ --out aesthetic.csv
  mmpref score --model imagereward pairs.parquet --image-column chosen --prompt-column caption --out s.jsonl
  mmpref score --model hpsv2.1 samples/ --prompt "a red car" --weights hpsv2.1=~/ckpt/HPS_v2.1_compressed.pt \\
      --out s.csv
  mmpref score --model clap clips/ --prompts captions.txt --out clap.csv --param clap.sample_rate=16000
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `mmpref score` and its flags."""
    parser = sub.add_parser("score", help="score images/audio with bundled reward models",
                            description=__doc__.split("\n\n")[0], epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", metavar="IMAGES", help="folder, list file or dataset to score")
    parser.add_argument("--model", "-m", required=True,
                        help="comma-separated reward model names (see `mmpref list reward_models`)")
    parser.add_argument("--out", "-o", required=True, help="output file: .csv, .jsonl or .parquet")
    parser.add_argument("--prompts", help="text file with one prompt per line, matched to the sorted inputs")
    parser.add_argument("--prompt", help="one prompt for every input")
    parser.add_argument("--image-column", default="image", help="dataset column with images/audio (default: image)")
    parser.add_argument("--prompt-column", default="prompt", help="dataset column with prompts (default: prompt)")
    parser.add_argument("--split", help="split of a saved DatasetDict (default: train or the only one)")
    parser.add_argument("--weights", action="append", default=[], metavar="NAME=PATH",
                        help="point a scorer at local weights (repeatable), e.g. pickscore=/models/PickScore_v1")
    parser.add_argument("--param", action="append", default=[], metavar="NAME.KEY=VALUE",
                        help="set any scorer parameter (repeatable), e.g. owlv2.threshold=0.2")
    parser.add_argument("--batch-size", type=positive_int, help="batch size for every scorer (default: each scorer's own)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default: cpu)")
    parser.add_argument("--dtype", default="float32", help="float32, float16 or bfloat16 (default: float32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_model_specs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """{scorer name: params} from --model, --weights and --param, checked before any model loads."""
    names = [n.strip() for n in args.model.split(",") if n.strip()]
    if not names:
        raise UserError("--model needs at least one reward model name, e.g. --model pickscore,hpsv2.1.")
    if len(set(names)) != len(names):
        raise UserError(f"--model names a scorer twice: {args.model}.")
    from mmpref.registry import REWARD_MODELS

    specs: dict[str, dict[str, Any]] = {}
    for name in names:
        REWARD_MODELS.get(name)  # unknown names fail here, with a did-you-mean
        specs[name] = {}
    for flag, value in [("--weights", w) for w in args.weights] + [("--param", p) for p in args.param]:
        target, sep, setting = value.partition("=")
        if not sep or not setting:
            raise UserError(f"{flag} expects {'NAME=PATH' if flag == '--weights' else 'NAME.KEY=VALUE'}, "
                            f"got '{value}'.")
        name, key = (target, "weights") if flag == "--weights" else target.rpartition(".")[::2]
        if name not in specs:
            raise UserError(f"{flag} {value}: '{name}' is not one of --model "
                            f"({', '.join(specs)}).{did_you_mean(name, specs)}")
        if not key:
            raise UserError(f"--param expects NAME.KEY=VALUE, got '{value}'.")
        specs[name][key] = str(Path(setting).expanduser()) if flag == "--weights" else setting
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {args.batch_size}.")
        for params in specs.values():
            params.setdefault("batch_size", args.batch_size)
    return specs


def read_prompt_file(path: str, count: int) -> list[str]:
    """One prompt per line; the number of lines must match the number of inputs."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"--prompts file '{path}' does not exist.")
    lines = file.read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != count:
        raise UserError(f"--prompts has {len(lines)} lines but there are {count} inputs; give one prompt per "
                        "input, in the inputs' sorted order.")
    return lines


def summarize(values: list[float]) -> tuple[int, float, float, float, float]:
    """(n, mean, sample std, 95 % CI low, high) of the finite values (normal approximation)."""
    finite = [v for v in values if math.isfinite(v)]
    n = len(finite)
    if n == 0:
        return 0, math.nan, math.nan, math.nan, math.nan
    mean = sum(finite) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1)) if n > 1 else math.nan
    half = 1.96 * std / math.sqrt(n) if n > 1 else math.nan
    return n, mean, std, mean - half, mean + half


def write_table(rows: list[dict[str, Any]], out: Path) -> None:
    """CSV, JSONL or parquet by extension."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        frame.to_csv(out, index=False)
    elif out.suffix == ".jsonl":
        frame.to_json(out, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(out, index=False)


def run(args: argparse.Namespace) -> int:
    """Score the inputs with every requested scorer, write the table, print the summary."""
    from tqdm import tqdm

    from mmpref.reward_models import build_scorer, resolve_dtype
    from mmpref.reward_models.inputs import discover, load

    out = Path(args.out).expanduser()
    if out.suffix.lower() not in OUTPUT_FORMATS:
        raise UserError(f"--out must end in {', '.join(OUTPUT_FORMATS)}; got '{args.out}'.")
    if args.prompts and args.prompt:
        raise UserError("give either --prompts FILE or --prompt TEXT, not both.")
    if not Path(args.inputs).expanduser().exists():
        raise UserError(f"'{args.inputs}' does not exist; give a folder, a list file or a dataset to score.")
    if args.prompts and not Path(args.prompts).expanduser().is_file():
        raise UserError(f"--prompts file '{args.prompts}' does not exist.")
    specs = parse_model_specs(args)
    dtype = resolve_dtype(args.dtype)

    scorers = {name: build_scorer({"name": name, **params}, device=args.device, dtype=dtype)
               for name, params in specs.items()}
    modalities = {s.modality for s in scorers.values()}
    if len(modalities) > 1:
        raise UserError(f"--model mixes image and audio scorers ({', '.join(specs)}); score them separately.")
    modality = modalities.pop()

    items, has_prompts = discover(args.inputs, modality=modality, image_column=args.image_column,
                                  prompt_column=args.prompt_column, split=args.split)
    if args.prompts:
        for item, prompt in zip(items, read_prompt_file(args.prompts, len(items))):
            item.prompt = prompt
    elif args.prompt is not None:
        for item in items:
            item.prompt = args.prompt
    elif not has_prompts:
        needing = [name for name, s in scorers.items() if s.needs_prompt]
        if needing:
            raise UserError(f"{', '.join(needing)} compare{'s' if len(needing) == 1 else ''} images with prompts: "
                            "pass --prompts FILE (one line per input, sorted order), --prompt TEXT, or a dataset "
                            "with a prompt column (--prompt-column).")

    chunk = max(s.batch_size for s in scorers.values())
    rows: list[dict[str, Any]] = []
    bad: list[tuple[str, str]] = []
    progress = tqdm(total=len(items), unit=modality, desc="scoring", disable=args.no_progress, file=sys.stderr)
    for start in range(0, len(items), chunk):
        batch = items[start:start + chunk]
        loaded = [(item, *load(item, modality)) for item in batch]
        bad += [(item.key, error) for item, _, error in loaded if error is not None]
        good = [(item, sample) for item, sample, error in loaded if error is None]
        if good:
            samples = [sample for _, sample in good]
            prompts = [item.prompt or "" for item, _ in good]
            scores = {name: scorer.score(samples, prompts).tolist() for name, scorer in scorers.items()}
            for i, (item, _) in enumerate(good):
                rows.append({"path": item.key, "prompt": item.prompt or "",
                             **{name: values[i] for name, values in scores.items()}})
        progress.update(len(batch))
    progress.close()

    for key, error in bad:
        print(f"unreadable: {key}: {error}", file=sys.stderr)
    if not rows:
        raise UserError(f"none of the {len(items)} inputs could be read ({len(bad)} unreadable, listed above).")
    write_table(rows, out)

    print(f"scored {len(rows)} of {len(items)} {modality} inputs with {', '.join(scorers)} -> {out}")
    if bad:
        print(f"{len(bad)} unreadable input{'s' if len(bad) != 1 else ''} skipped (listed on stderr)")
    width = max(len(n) for n in scorers)
    print(f"{'scorer'.ljust(width)}  {'n':>6}  {'mean':>10}  {'std':>10}  95% CI")
    for name in scorers:
        n, mean, std, low, high = summarize([row[name] for row in rows])
        print(f"{name.ljust(width)}  {n:>6}  {mean:>10.4f}  {std:>10.4f}  [{low:.4f}, {high:.4f}]")
    return 0
