"""Write an evaluation's outputs: report.json, samples.jsonl, grid PNGs and a self-contained report.html.

Grids: one PNG per model (rows = prompts, columns = seeds) and `grid_comparison.png` with the models
side by side for the same prompts and seeds. With an accuracy scorer each cell has a green (correct) or
red (incorrect) frame. report.html embeds its bar chart and grids as base64 PNGs: one file to share.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

CELL = 96  # pixels per sample in the grids (nearest-neighbour upscaling of small images)
FRAME = 3
GAP = 12
GREEN, RED, GREY = (40, 170, 70), (210, 50, 50), (200, 200, 200)


def grid_rows(samples: list[Any], settings: Any) -> list[int]:
    """Prompt positions shown in the grids: evenly spaced over the list (covers every prompt form)."""
    n = len(samples[0].images)
    k = min(settings.grid_prompts, n)
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, k)}) if k else []


def _cell(image: np.ndarray, frame: tuple[int, int, int] | None) -> Any:
    from PIL import Image

    inner = CELL - 2 * FRAME
    img = Image.fromarray(image).resize((inner, inner), Image.NEAREST)
    cell = Image.new("RGB", (CELL, CELL), frame or GREY)
    cell.paste(img, (FRAME, FRAME))
    return cell


def strip(model: Any, row: int, settings: Any, correct: np.ndarray | None) -> Any:
    """One model's samples of one prompt, side by side (seeds left to right)."""
    from PIL import Image

    k = min(settings.grid_seeds, len(model.images[row]))
    out = Image.new("RGB", (k * CELL, CELL), (255, 255, 255))
    for j in range(k):
        frame = None if correct is None else (GREEN if correct[row, j] else RED)
        out.paste(_cell(model.images[row][j], frame), (j * CELL, 0))
    return out


def model_grid(model: Any, rows: list[int], settings: Any, correct: np.ndarray | None) -> Any:
    from PIL import Image

    strips = [strip(model, r, settings, correct) for r in rows]
    width = max(s.width for s in strips)
    out = Image.new("RGB", (width, CELL * len(strips)), (255, 255, 255))
    for i, s in enumerate(strips):
        out.paste(s, (0, i * CELL))
    return out


def comparison_grid(samples: list[Any], rows: list[int], texts: list[str], settings: Any,
                    correct: dict[str, np.ndarray | None]) -> Any:
    """Models side by side (one column block each) for the same prompts and seeds, prompt text on the left."""
    from PIL import Image, ImageDraw

    label_w, head_h = 260, 22
    grids = [model_grid(s, rows, settings, correct[s.name]) for s in samples]
    width = label_w + sum(g.width for g in grids) + GAP * (len(grids) - 1)
    out = Image.new("RGB", (width, head_h + grids[0].height), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    x = label_w
    for s, g in zip(samples, grids):
        draw.text((x + 4, 4), s.name, fill=(0, 0, 0))
        out.paste(g, (x, head_h))
        x += g.width + GAP
    for i, r in enumerate(rows):
        draw.text((4, head_h + i * CELL + CELL // 2 - 6), texts[r][:42], fill=(0, 0, 0))
    return out


def bar_chart(report: dict[str, Any]) -> bytes:
    """PNG bytes: one group of bars per metric, one bar per model, 95 % CI error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = report["models"]
    metrics = list(models[0]["metrics"])
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(1.6 + 1.6 * len(metrics) * max(1, len(models) / 2), 3.4), dpi=100)
    for i, m in enumerate(models):
        means = [m["metrics"][k]["mean"] for k in metrics]
        low = [m["metrics"][k]["mean"] - m["metrics"][k]["ci95"][0] for k in metrics]
        high = [m["metrics"][k]["ci95"][1] - m["metrics"][k]["mean"] for k in metrics]
        xs = np.arange(len(metrics)) + (i - (len(models) - 1) / 2) * width
        ax.bar(xs, means, width, yerr=[low, high], capsize=4, label=m["name"])
    ax.set_xticks(np.arange(len(metrics)), metrics)
    ax.set_ylabel("mean (95 % bootstrap CI)")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _png(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _ci(entry: dict[str, Any], key: str = "ci95") -> str:
    low, high = entry[key]
    return f"[{low:.3f}, {high:.3f}]"


def render_html(report: dict[str, Any], chart: bytes, strips: list[tuple[str, list[bytes]]], names: list[str],
                title: str = "mmpref eval") -> str:
    esc = html.escape
    headline = report.get("headline")
    report = report.get("eval", report)  # a demo report nests the eval report under "eval"
    models = report["models"]
    metrics = list(models[0]["metrics"])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>"
             "body{font-family:sans-serif;margin:24px;max-width:1400px}table{border-collapse:collapse;margin:8px 0 20px}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
             "td.l,th.l{text-align:left}img{image-rendering:pixelated}.g td{vertical-align:middle}"
             ".note{color:#555;font-size:90%}</style></head><body>", f"<h1>{esc(title)}</h1>"]
    if headline:
        parts.append("<h2>Result</h2><table>" + "".join(
            f"<tr><th class='l'>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in headline.items()) + "</table>")
    p = report.get("prompts", {})
    b = report["bootstrap"]
    parts.append(f"<p class='note'>{p.get('count', '?')} prompts ({esc(str(p.get('source', '')))}) x "
                 f"{report['seeds_per_prompt']} seeds per model, the same seeds for every model. 95 % CIs: "
                 f"percentile bootstrap, {b['resamples']} resamples (seed {b['seed']}), prompts resampled with all "
                 f"their seeds.</p>")
    parts.append("<h2>Scores</h2><table><tr><th class='l'>model</th><th class='l'>source</th>"
                 + "".join(f"<th>{esc(k)}</th><th>95 % CI</th>" for k in metrics) + "</tr>")
    for m in models:
        src = m["path"] + (f" on {m['base']}" if m.get("base") else "")
        parts.append(f"<tr><td class='l'>{esc(m['name'])}</td><td class='l'>{esc(m['kind'])}: {esc(src)}</td>"
                     + "".join(f"<td>{m['metrics'][k]['mean']:.3f}</td><td>{_ci(m['metrics'][k])}</td>"
                               for k in metrics) + "</tr>")
    parts.append("</table>")
    others = [m for m in models[1:] if "vs_first" in m]
    if others:
        wr = others[0]["vs_first"]["win_rate_scorer"]
        parts.append(f"<h2>Against {esc(models[0]['name'])}</h2><table><tr><th class='l'>model</th>"
                     + "".join(f"<th>gain {esc(k)}</th><th>95 % CI</th>" for k in metrics)
                     + f"<th>win rate ({esc(wr)})</th><th>95 % CI</th><th>wins / losses / ties</th>"
                       "<th>tie share</th></tr>")
        for m in others:
            v = m["vs_first"]
            parts.append(f"<tr><td class='l'>{esc(m['name'])}</td>"
                         + "".join(f"<td>{v['gain'][k]['diff']:+.3f}</td><td>{_ci(v['gain'][k])}</td>" for k in metrics)
                         + f"<td>{v['win_rate']:.3f}</td><td>{_ci(v, 'win_rate_ci95')}</td>"
                           f"<td>{v['wins']} / {v['losses']} / {v['ties']}</td><td>{v['tie_share']:.3f}</td></tr>")
        parts.append("</table><p class='note'>Win rate = wins / (wins + losses) over the same (prompt, seed); "
                     "ties are excluded from it and reported as the tie share.</p>")
    if any("accuracy_by_form" in m for m in models):
        forms = list(models[0].get("accuracy_by_form", {}))
        parts.append("<h2>Accuracy by prompt form</h2><table><tr><th class='l'>model</th>"
                     + "".join(f"<th>{esc(f)}</th>" for f in forms) + "</tr>")
        for m in models:
            parts.append(f"<tr><td class='l'>{esc(m['name'])}</td>"
                         + "".join(f"<td>{m.get('accuracy_by_form', {}).get(f, float('nan')):.3f}</td>" for f in forms)
                         + "</tr>")
        parts.append("</table>")
    if any("relation_outcomes" in m for m in models):
        kinds = list(models[0].get("relation_outcomes", {}))
        parts.append("<h2>Relation prompts: how the layout came out</h2><table><tr><th class='l'>model</th>"
                     + "".join(f"<th>{esc(k)}</th>" for k in kinds) + "</tr>")
        for m in models:
            parts.append(f"<tr><td class='l'>{esc(m['name'])}</td>"
                         + "".join(f"<td>{m.get('relation_outcomes', {}).get(k, float('nan')):.3f}</td>" for k in kinds)
                         + "</tr>")
        parts.append("</table><p class='note'>Share of relation samples: right; reversed (the objects swapped: "
                     "the axis is known but not which object goes where, as when a prompt is read as a bag of "
                     "words); other; an object missing.</p>")
    parts.append(f"<h2>Chart</h2><img src='{_data_uri(chart)}' alt='means with 95 % CIs'>")
    parts.append("<h2>Samples</h2><p class='note'>Same prompt and seed in each row; "
                 "frame green = correct, red = incorrect (accuracy scorer).</p><table class='g'><tr><th class='l'>prompt</th>"
                 + "".join(f"<th>{esc(n)}</th>" for n in names) + "</tr>")
    for text, row in strips:
        parts.append(f"<tr><td class='l'>{esc(text)}</td>"
                     + "".join(f"<td><img src='{_data_uri(png)}'></td>" for png in row) + "</tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def finite_json(value: Any) -> Any:
    """NaN and infinities as null (a win rate with no decided comparison), so report.json is strict JSON."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def write_outputs(out: Path, report: dict[str, Any], samples: list[Any], texts: list[str], settings: Any,
                  acc_name: str | None, prompt_rows: list[int] | None = None, title: str = "mmpref eval",
                  decorate: Any = None) -> None:
    """report.json, samples.jsonl, grid_MODEL.png, grid_comparison.png, report.html (and images/ if asked)."""
    out.mkdir(parents=True, exist_ok=True)
    thr = settings.accuracy.threshold
    correct = {s.name: (s.scores[acc_name] >= thr) if acc_name else None for s in samples}
    rows = grid_rows(samples, settings)
    files = {"report": "report.json", "html": "report.html", "samples": "samples.jsonl",
             "comparison_grid": "grid_comparison.png"}
    if rows:
        for s in samples:
            model_grid(s, rows, settings, correct[s.name]).save(out / f"grid_{s.name}.png")
            files[f"grid_{s.name}"] = f"grid_{s.name}.png"
        comparison_grid(samples, rows, texts, settings, correct).save(out / "grid_comparison.png")
    from mmpref.pipelines.seeds import derive_seed

    with (out / "samples.jsonl").open("w") as f:
        for s in samples:
            for i, text in enumerate(texts):
                for j in range(len(s.images[i])):
                    prow = prompt_rows[i] if prompt_rows else i
                    row = {"model": s.name, "prompt_row": prow, "prompt": text, "sample": j,
                           "seed": derive_seed(settings.seed, prow, j)}
                    row.update({k: float(v[i, j]) for k, v in s.scores.items()})
                    f.write(json.dumps(row) + "\n")
    if settings.save_images:
        from PIL import Image

        for s in samples:
            folder = out / "images" / s.name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(len(texts)):
                for j, im in enumerate(s.images[i]):
                    Image.fromarray(im).save(folder / f"{i:04d}_{j}.png")
    report["files"] = files
    if decorate is not None:
        decorate(report)
    strips = [(texts[r], [_png(strip(s, r, settings, correct[s.name])) for s in samples]) for r in rows]
    (out / "report.json").write_text(json.dumps(finite_json(report), indent=2, allow_nan=False) + "\n")
    (out / "report.html").write_text(render_html(report, bar_chart(report.get("eval", report)), strips, [s.name for s in samples],
                                                 title=report.get("title", title)))
