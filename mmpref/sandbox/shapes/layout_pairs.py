"""Renders of training prompts at a few shared layouts, as a pairs parquet the trainer reads.

Every prompt is drawn with render seeds 0..layouts-1, so all prompts share the same few object
placements and the only thing that varies between prompts at one placement is which colour and shape
sits where. That makes spatial order a short, consistent signal: the shapes base's finishing stage
(scripts/train_shapes_base.py) fine-tunes on these renders until order is partly bound, and
benchmarks/probe_relation_order.py uses the relation rows to probe order learning.

chosen is the prompt's render; rejected is the same placement with the two objects swapped (relations)
or a near miss of the prompt (singles and counts): SFT reads only chosen, DPO reads both.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from mmpref.sandbox.shapes.grammar import Prompt, near_misses
from mmpref.sandbox.shapes.render import render


def contrast(prompt: Prompt) -> Prompt:
    """The rejected scene for `prompt`: its two objects swapped, or its first near miss."""
    if prompt.relation is not None:
        return Prompt(prompt.groups[::-1], prompt.relation)
    return sorted(near_misses(prompt))[0]


def write_layout_pairs(path: Path, prompts: Iterable[Prompt], layouts: int) -> int:
    """Write (prompt, chosen, rejected) PNG rows for every prompt at render seeds 0..layouts-1; the row count."""
    import pandas as pd

    if layouts < 1:
        raise ValueError(f"layouts must be >= 1, got {layouts}")

    def png(image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    rows = [
        {"prompt": p.text, "chosen": png(render(p, seed)), "rejected": png(render(contrast(p), seed))}
        for p in prompts
        for seed in range(layouts)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pd.DataFrame(rows).to_parquet(tmp)
    tmp.replace(path)
    return len(rows)
