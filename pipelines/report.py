"""The run's report, built from the shard records once every shard is complete.

summary.json says what happened to every prompt and sample (used, skipped with a reason, failed with
a reason, paired, dropped by which filter), so nothing leaves the pipeline unaccounted for;
score_distributions.png and contact_sheet.png let a person check the scorer's judgement at a glance.
An unpaired run (pairing.strategy: unpaired) reports samples_written (desirable, undesirable) instead of
pairs and margins, and its contact sheet puts desirable samples beside undesirable ones.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from mmpref.pipelines.filters import FILTERS, SAMPLE_FILTERS
from mmpref.pipelines.prompts import PromptList
from mmpref.pipelines.shards import RunDirectory, write_json


def describe(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, std, min, quartiles and max of `values` (None entries when empty)."""
    if not values:
        return {"count": 0, "mean": None, "std": None, "min": None, "p25": None, "median": None, "p75": None,
                "max": None}
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 3
    return {"count": len(ordered), "mean": statistics.fmean(ordered),
            "std": statistics.pstdev(ordered) if len(ordered) > 1 else 0.0, "min": ordered[0], "p25": q[0],
            "median": q[1], "p75": q[2], "max": ordered[-1]}


def _dropped(records: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, int]:
    """Drops per filter name, summed over the shard records."""
    return {name: sum(int(r["dropped"].get(name, 0)) for r in records) for name in names}


def _pairs_block(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """summary.json's pairs: candidates, kept and drops per filter (they add up)."""
    names = list(FILTERS) if not records or all(n in FILTERS for r in records for n in r["dropped"]) else \
        list(dict.fromkeys(n for r in records for n in r["dropped"]))  # a pipeline's own filters (text-to-audio)
    return {"candidates": sum(int(r["candidates"]) for r in records), "kept": sum(int(r["rows"]) for r in records),
            "dropped": _dropped(records, names), "check": "candidates == kept + sum(dropped)"}


def _samples_block(records: Sequence[dict[str, Any]], labels: Sequence[bool], threshold: float | None) -> dict[str, Any]:
    """summary.json's samples_written of an unpaired run: rows by label (from the written label column) and
    the scored samples dropped, so every scored sample is accounted for."""
    desirable = sum(bool(label) for label in labels)
    return {"threshold": threshold, "kept": sum(int(r["rows"]) for r in records), "desirable": desirable,
            "undesirable": len(labels) - desirable, "dropped": _dropped(records, SAMPLE_FILTERS),
            "check": "samples.scored == kept + sum(dropped)"}


def build_summary(records: Sequence[dict[str, Any]], prompts: PromptList, pipeline: str, scorer: str,
                  margins: Sequence[float], labels: Sequence[bool] | None = None,
                  threshold: float | None = None) -> dict[str, Any]:
    """The run's summary.json; `labels` (the written label column) marks an unpaired run, whose rows are
    samples: counted under samples_written, without pairs and margins."""
    samples = [s for r in records for s in r["samples"]]
    failures = [s for s in samples if s.get("reason")]
    scores = [float(s["score"]) for s in samples if s.get("score") is not None]
    unpaired = labels is not None
    seconds = sum(float(r["seconds"]) for r in records)
    by_stage: dict[str, int] = {}
    for f in failures:
        by_stage[f["stage"]] = by_stage.get(f["stage"], 0) + 1
    return {
        "pipeline": pipeline,
        "status": "complete",
        "prompts": {"source": prompts.source, "used": len(prompts.prompts),
                    "done": sum(len(r["prompt_indices"]) for r in records),
                    "skipped": len(prompts.skipped), "skipped_rows": prompts.skipped,
                    "without_samples" if unpaired else "without_pairs":
                        [u for r in records for u in r.get("unpaired", [])]},
        "samples": {"requested": len(samples), "scored": len(scores), "failed": len(failures),
                    "failed_by_stage": by_stage},
        "failures": [{k: f.get(k) for k in ("prompt_index", "sample_index", "seed", "stage", "reason")}
                     for f in failures],
        **({"samples_written": _samples_block(records, labels, threshold)} if unpaired else
           {"pairs": _pairs_block(records)}),
        "scorer": scorer,
        "scores": describe(scores),
        **({} if unpaired else {"margins": describe(list(margins))}),
        "shards": len(records),
        "throughput": {"generation_seconds": round(seconds, 3),
                       "samples_per_second": round(len(samples) / seconds, 3) if seconds else None},
    }


def plot_histograms(panels: Sequence[tuple[str, Sequence[float]]], path: Path, color: str) -> None:
    """A PNG of histograms side by side, one per (title, values) panel, each titled with its count ("none"
    when empty): the one look of every score plot a run writes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False)
    for ax, (title, values) in zip(axes[0], panels):
        if values:
            ax.hist(values, bins=min(40, max(5, len(values) // 4)), color=color)
        else:
            ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"{title}, n={len(values)}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_distributions(scores: Sequence[float], written: Sequence[tuple[str, Sequence[float]]], path: Path,
                       scorer: str) -> None:
    """Histograms side by side: every scored sample, then the written rows' panels (the margin of every kept
    pair, or the scores of the desirable and the undesirable samples)."""
    plot_histograms([(f"sample scores ({scorer})", scores), *written], path, "#4c72b0")


Tile = tuple[bytes | None, str, str]
"""One cell of a contact sheet: encoded image (None: left blank), a caption and a second caption line."""


def draw_sheet(lines: Sequence[Sequence[Tile]], path: Path, empty: str, cell: int | tuple[int, int] = 128) -> None:
    """A PNG of two tiles per line, each under its captions (`empty` when there are no lines): the layout of
    every contact sheet. `cell` is a tile's side, or its (width, height) (mel spectrograms are wide)."""
    import io

    from PIL import Image, ImageDraw

    cell_w, cell_h = (cell, cell) if isinstance(cell, int) else cell
    label_h, gap, columns = 30, 6, 2
    width = columns * cell_w + (columns + 1) * gap
    sheet = Image.new("RGB", (width, max(1, len(lines)) * (cell_h + label_h + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    if not lines:
        draw.text((gap, gap), empty, fill="black")
    for i, line in enumerate(lines):
        top = gap + i * (cell_h + label_h + gap)
        for j, (data, caption, detail) in enumerate(line):
            left = gap + j * (cell_w + gap)
            if data is not None:
                with Image.open(io.BytesIO(data)) as image:
                    sheet.paste(image.convert("RGB").resize((cell_w, cell_h), Image.NEAREST), (left, top + label_h))
            draw.text((left, top), caption, fill="black")
            draw.text((left, top + 14), detail, fill="#444444")
    sheet.save(path)


def contact_sheet(rows: Sequence[dict[str, Any]], path: Path, cell: int = 128) -> None:
    """A PNG grid of pairs: chosen | rejected per line, with scores, margin and the prompt."""
    draw_sheet([[(row["chosen"], str(row["prompt"])[:40], f"{row['chosen_score']:.3g} > "
                  f"{row['rejected_score']:.3g}  (margin {row['margin']:.3g})"), (row["rejected"], "", "")]
                for row in rows], path, "no pairs kept", cell)


def sample_caption(row: dict[str, Any], chars: int) -> tuple[str, str]:
    """A labelled sample's two caption lines: label and score, then its prompt; a sample made from another
    caption (an audio run's perturbed clips, scored against the prompt) says which, since that is why it scored
    as it did."""
    first = f"{'desirable' if row['label'] else 'undesirable'} {row['score']:.4g}"
    condition = row.get("condition")
    if condition and condition != row["prompt"]:
        first += f", made from '{condition}'"
    return first[:chars], str(row["prompt"])[:chars]


def sample_contact_sheet(rows: Sequence[dict[str, Any]], path: Path, cell: int | tuple[int, int] = 128,
                         picture: Callable[[dict[str, Any]], bytes | None] = lambda row: row["image"]) -> None:
    """A PNG grid of an unpaired run: desirable | undesirable samples per line (not of the same prompt), each
    with its score and prompt, so the threshold's cut can be checked by eye. `picture` gives a row's tile as
    PNG bytes (default: its image; an audio run draws the clip's mel spectrogram)."""
    chars = 20 * (cell if isinstance(cell, int) else cell[0]) // 128

    def tile(row: dict[str, Any] | None) -> Tile:
        return (None, "", "") if row is None else (picture(row), *sample_caption(row, chars))

    desirable = [r for r in rows if r["label"]]
    undesirable = [r for r in rows if not r["label"]]
    draw_sheet([[tile(good), tile(bad)] for good, bad in itertools.zip_longest(desirable, undesirable)],
               path, "no samples written", cell)


def leading_rows(files: Sequence[Path], want: int, groups: Sequence[Hashable] = (None,),
                 key: Callable[[dict[str, Any]], Hashable] = lambda row: None) -> list[dict[str, Any]]:
    """The first `want` rows of the shards per group (`key` of a row, one of `groups`), read shard by shard
    only until every group is full: the contact sheet's rows without loading the whole dataset."""
    import pyarrow.parquet as pq

    counts = dict.fromkeys(groups, 0)
    out: list[dict[str, Any]] = []
    for f in files:
        if all(n >= want for n in counts.values()):
            break
        for row in pq.read_table(f).to_pylist():
            group = key(row)
            if counts.get(group, want) < want:
                counts[group] += 1
                out.append(row)
    return out


def rows_written(summary: dict[str, Any]) -> int:
    """Rows of the dataset (pairs, or samples of an unpaired run) per its summary."""
    return int(summary["samples_written" if "samples_written" in summary else "pairs"]["kept"])


def written_phrase(summary: dict[str, Any]) -> str:
    """What a run wrote, in words for a console line: "N pairs" or "N samples (D desirable, U undesirable)"."""
    if "samples_written" in summary:
        written = summary["samples_written"]
        return f"{written['kept']} samples ({written['desirable']} desirable, {written['undesirable']} undesirable)"
    return f"{summary['pairs']['kept']} pairs"


def finalize(rundir: RunDirectory, prompts: PromptList, job: Any, content: dict[str, Any]) -> dict[str, Any]:
    """Write summary.json, the plots and the final manifest; every shard must be complete."""
    import pyarrow.parquet as pq

    records = [rundir.read_record(k) for k in range(rundir.total_shards)]
    missing = [k for k, r in enumerate(records) if r is None]
    if missing:
        raise RuntimeError(f"shards {missing[:5]} of {rundir.root} are incomplete after every process finished")
    files = [rundir.shard_file(k) for k in range(rundir.total_shards)]
    scorer = str(records[0].get("scorer", "")) if records else ""  # type: ignore[union-attr]
    want = job.output.contact_sheet_pairs

    def columns(*names: str) -> list[list[Any]]:
        """The named columns of every shard, each shard read once."""
        tables = [pq.read_table(f, columns=list(names)) for f in files]
        return [[v for t in tables for v in t.column(name).to_pylist()] for name in names]

    if job.pairing.unpaired:
        labels, written = columns("label", "score")
        summary = build_summary(records, prompts, job.pipeline, scorer, [], labels=labels,  # type: ignore[arg-type]
                                threshold=job.pairing.threshold)
        panels = [(f"desirable (score >= {job.pairing.threshold:.3g})", [s for s, ok in zip(written, labels) if ok]),
                  ("undesirable", [s for s, ok in zip(written, labels) if not ok])]
        sheet_rows = leading_rows(files, want, (True, False), key=lambda row: bool(row["label"]))
        draw = sample_contact_sheet
    else:
        (margins,) = columns("margin")
        summary = build_summary(records, prompts, job.pipeline, scorer, margins)  # type: ignore[arg-type]
        panels, sheet_rows, draw = [("kept pair margins", margins)], leading_rows(files, want), contact_sheet
    if getattr(job, "finish", None) is not None:
        job.finish(rundir, records, summary)  # the pipeline's own report sections and plots
    write_json(rundir.root / "summary.json", summary)
    scores = [float(s["score"]) for r in records for s in r["samples"] if s.get("score") is not None]  # type: ignore[index]
    plot_distributions(scores, panels, rundir.root / "score_distributions.png", scorer)
    (getattr(job, "contact_sheet", None) or draw)(sheet_rows, rundir.root / "contact_sheet.png")
    rundir.write_manifest(job.pipeline, content, list(range(rundir.total_shards)), status="complete",
                          rows=rows_written(summary))
    return summary
