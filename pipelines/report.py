"""The run's report, built from the shard records once every shard is complete.

summary.json says what happened to every prompt and sample (used, skipped with a reason, failed with
a reason, paired, dropped by which filter), so nothing leaves the pipeline unaccounted for;
score_distributions.png and contact_sheet.png let a person check the scorer's judgement at a glance.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmpref.pipelines.filters import FILTERS
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


def build_summary(records: Sequence[dict[str, Any]], prompts: PromptList, pipeline: str, scorer: str,
                  margins: Sequence[float]) -> dict[str, Any]:
    samples = [s for r in records for s in r["samples"]]
    failures = [s for s in samples if s.get("reason")]
    scores = [float(s["score"]) for s in samples if s.get("score") is not None]
    names = list(FILTERS) if not records or all(n in FILTERS for r in records for n in r["dropped"]) else \
        list(dict.fromkeys(n for r in records for n in r["dropped"]))  # a pipeline's own filters (text-to-audio)
    dropped = {name: sum(int(r["dropped"].get(name, 0)) for r in records) for name in names}
    candidates = sum(int(r["candidates"]) for r in records)
    kept = sum(int(r["rows"]) for r in records)
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
                    "without_pairs": [u for r in records for u in r.get("unpaired", [])]},
        "samples": {"requested": len(samples), "scored": len(scores), "failed": len(failures),
                    "failed_by_stage": by_stage},
        "failures": [{k: f.get(k) for k in ("prompt_index", "sample_index", "seed", "stage", "reason")}
                     for f in failures],
        "pairs": {"candidates": candidates, "kept": kept, "dropped": dropped,
                  "check": "candidates == kept + sum(dropped)"},
        "scorer": scorer,
        "scores": describe(scores),
        "margins": describe(list(margins)),
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


def plot_distributions(scores: Sequence[float], margins: Sequence[float], path: Path, scorer: str) -> None:
    """Two histograms side by side: every scored sample, and the margin of every kept pair."""
    plot_histograms([(f"sample scores ({scorer})", scores), ("kept pair margins", margins)], path, "#4c72b0")


def contact_sheet(rows: Sequence[dict[str, Any]], path: Path, cell: int = 128) -> None:
    """A PNG grid of pairs: chosen | rejected per line, with scores, margin and the prompt."""
    import io

    from PIL import Image, ImageDraw

    label_h, gap = 30, 6
    width = 2 * cell + 3 * gap
    sheet = Image.new("RGB", (width, max(1, len(rows)) * (cell + label_h + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    if not rows:
        draw.text((gap, gap), "no pairs kept", fill="black")
    for i, row in enumerate(rows):
        top = gap + i * (cell + label_h + gap)
        for j, key in enumerate(("chosen", "rejected")):
            with Image.open(io.BytesIO(row[key])) as image:
                tile = image.convert("RGB").resize((cell, cell), Image.NEAREST)
            sheet.paste(tile, (gap + j * (cell + gap), top + label_h))
        draw.text((gap, top), str(row["prompt"])[:40], fill="black")
        draw.text((gap, top + 14), f"{row['chosen_score']:.3g} > {row['rejected_score']:.3g}  "
                                   f"(margin {row['margin']:.3g})", fill="#444444")
    sheet.save(path)


def finalize(rundir: RunDirectory, prompts: PromptList, job: Any, content: dict[str, Any]) -> dict[str, Any]:
    """Write summary.json, the plots and the final manifest; every shard must be complete."""
    import pyarrow.parquet as pq

    records = [rundir.read_record(k) for k in range(rundir.total_shards)]
    missing = [k for k, r in enumerate(records) if r is None]
    if missing:
        raise RuntimeError(f"shards {missing[:5]} of {rundir.root} are incomplete after every process finished")
    files = [rundir.shard_file(k) for k in range(rundir.total_shards)]
    margins: list[float] = []
    sample_rows: list[dict[str, Any]] = []
    scorer = str(records[0].get("scorer", "")) if records else ""  # type: ignore[union-attr]
    for f in files:
        margin = pq.read_table(f, columns=["margin"]).column("margin").to_pylist()
        margins.extend(margin)
        want = job.output.contact_sheet_pairs - len(sample_rows)
        if want > 0 and margin:
            sample_rows.extend(pq.read_table(f).slice(0, want).to_pylist())
    summary = build_summary(records, prompts, job.pipeline, scorer, margins)  # type: ignore[arg-type]
    if getattr(job, "finish", None) is not None:
        job.finish(rundir, records, summary)  # the pipeline's own report sections and plots
    write_json(rundir.root / "summary.json", summary)
    scores = [float(s["score"]) for r in records for s in r["samples"] if s.get("score") is not None]  # type: ignore[index]
    plot_distributions(scores, margins, rundir.root / "score_distributions.png", scorer)
    (getattr(job, "contact_sheet", None) or contact_sheet)(sample_rows, rundir.root / "contact_sheet.png")
    rundir.write_manifest(job.pipeline, content, list(range(rundir.total_shards)), status="complete",
                          rows=summary["pairs"]["kept"])
    return summary
