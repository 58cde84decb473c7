"""Generate every model on the same prompts and seeds, score the samples, and compare the models.

Models are diffusers pipeline directories (a base, or a fully fine-tuned output of `mmpref train`) or
LoRA directories (`pytorch_lora_weights.safetensors`, as `mmpref train` writes with `finetune: lora`)
applied to a base pipeline with stock `pipe.load_lora_weights`; the base of a LoRA directory is read
from the `config.yaml` the trainer writes next to it unless given. `shapes_base` names the shipped
shapes-world base model.

Sample j of prompt i starts from the noise of `derive_seed(seed, i, j)` (mmpref.pipelines.seeds, the
same derivation as `mmpref generate`), whatever the model and batch, so models are compared image for
image. Scores come from any registered scorers; "accuracy" is the share of samples whose
`accuracy.scorer` score reaches `accuracy.threshold` (for the shapes world: the ground truth's
"correct", all checks passed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmpref.config import REQUIRED, Where, build_dataclass, to_plain
from mmpref.errors import ConfigError, UserError
from mmpref.evaluation import stats

SHAPES_BASE = "shapes_base"  # alias for the shipped shapes-world base pipeline


@dataclass
class EvalModel:
    name: str = REQUIRED  # label in tables and file names (letters, digits, - and _)
    path: str = REQUIRED  # a diffusers pipeline dir (or hub id), a LoRA dir, or shapes_base
    base: str | None = None  # LoRA only: the pipeline it applies to; null = model.adapter.pretrained of its config.yaml
    lora_scale: float = 1.0  # LoRA only: strength (fused into the weights)

    def check(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise ValueError(f"model name '{self.name}': use letters, digits, '-' and '_' only")


@dataclass
class AccuracySettings:
    scorer: str | None = "auto"  # scorer whose threshold defines "correct"; auto = shapes_truth when scored; null = none
    threshold: float = 1.0  # a sample is correct when its score >= threshold (shapes_truth: 1.0 = every check passed)


@dataclass
class EvalSettings:
    """What `mmpref eval` runs; the first model is the reference of every gain and win rate."""

    models: list[EvalModel] = field(default_factory=list)
    prompts: str = "builtin:shapes_heldout"  # builtin:NAME, a text file (a prompt per line), or a data file/folder
    prompt_column: str = "prompt"  # column of a data-file source
    limit: int | None = None  # only the first N prompts
    seeds_per_prompt: int = 4  # samples per prompt and model (same seeds for every model)
    seed: int = 1234  # sample seeds derive from (seed, prompt row, sample index)
    scorers: list[str] = field(default_factory=lambda: ["shapes_truth"])  # registered reward models (`mmpref list`)
    win_rate_scorer: str | None = None  # scorer of the win rate; null = the first of `scorers`
    accuracy: AccuracySettings = field(default_factory=AccuracySettings)
    steps: int = 20  # sampler steps (the shapes base is measured with DDIM, 20 steps, CFG 4)
    guidance_scale: float = 4.0
    height: int | None = None  # null: the pipeline's default resolution
    width: int | None = None
    scheduler: str | None = None  # a diffusers scheduler class to swap in; null = the model's own
    batch_size: int = 64  # images per pipeline call
    device: str = "cpu"  # cpu, cuda, auto
    processes: int = 1  # CPU only: worker processes sharing each model's pipeline calls (the same images as 1)
    threads: int | None = None  # CPU torch threads per process (null: torch's default, or the cores split between processes)
    resamples: int = stats.DEFAULT_RESAMPLES  # bootstrap resamples (percentile method, prompts resampled)
    bootstrap_seed: int = stats.DEFAULT_SEED
    grid_prompts: int = 12  # prompts shown in the grids (evenly spaced over the prompt list)
    grid_seeds: int = 4  # seeds per prompt shown in the grids
    save_images: bool = False  # also write every sample as images/MODEL/PROMPTROW_SAMPLE.png
    out: str = "mmpref-eval"  # report.json, report.html, grids, samples.jsonl

    def check(self) -> None:
        if self.seeds_per_prompt < 1:
            raise ValueError("seeds_per_prompt must be at least 1")
        if self.processes < 1 or (self.threads is not None and self.threads < 1):
            raise ValueError("processes and threads must be at least 1 (threads: or null)")
        if self.resamples < 100:
            raise ValueError("resamples must be at least 100 for a 95 % interval")
        if not self.scorers:
            raise ValueError("scorers: name at least one registered reward model")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique, got {names}")
        if self.win_rate_scorer is not None and self.win_rate_scorer not in self.scorers:
            raise ValueError(f"win_rate_scorer '{self.win_rate_scorer}' is not one of scorers {self.scorers}")


def build_settings(data: dict[str, Any], where: str = "eval") -> EvalSettings:
    """Validate plain data (YAML, CLI) into `EvalSettings`, with the config system's messages."""
    return build_dataclass(EvalSettings, data, Where(where))


def parse_model(spec: str, position: int) -> dict[str, Any]:
    """`NAME=PATH`, `NAME=LORA_DIR@BASE` or `PATH` (named model<k>) from the command line."""
    name, sep, rest = spec.partition("=")
    if not sep:
        name, rest = f"model{position}", spec
    path, at, base = rest.partition("@")
    out: dict[str, Any] = {"name": name.strip(), "path": path.strip()}
    if at:
        out["base"] = base.strip()
    return out


# ---- models ---------------------------------------------------------------------------------------
def resolve_path(path: str) -> str:
    if path == SHAPES_BASE:
        from mmpref.sandbox.shapes.base import shapes_base_path

        return str(shapes_base_path())
    return path


def describe_model(model: EvalModel) -> dict[str, Any]:
    """Kind (pipeline or lora), the resolved path and the base a LoRA applies to."""
    from mmpref.pipelines.lora import LORA_FILE

    path = Path(resolve_path(model.path)).expanduser()
    if path.is_dir() and (path / "model_index.json").exists():
        return {"kind": "pipeline", "path": str(path), "base": None}
    if path.is_dir() and (path / LORA_FILE).exists():
        base = model.base
        if base is None:
            config = path / "config.yaml"
            if config.exists():
                import yaml

                data = yaml.safe_load(config.read_text()) or {}
                base = ((data.get("model") or {}).get("adapter") or {}).get("pretrained")
            if base is None:
                raise UserError(f"model '{model.name}': {path} is a LoRA without a config.yaml naming its base; give "
                                f"the base as NAME={model.path}@BASE_PIPELINE_DIR.")
        return {"kind": "lora", "path": str(path), "base": resolve_path(str(base))}
    if path.exists() or str(model.path).startswith((".", "/", "~")):
        raise UserError(f"model '{model.name}': {model.path} is neither a diffusers pipeline directory (model_index.json) "
                        f"nor a LoRA directory ({LORA_FILE}).")
    return {"kind": "pipeline", "path": str(model.path), "base": None}  # a hub id


def load_model(model: EvalModel, settings: EvalSettings, device: Any) -> Any:
    """A diffusers pipeline on `device`: loaded with stock `from_pretrained`, LoRA applied and fused."""
    from mmpref.pipelines.image_sampler import ImageModelConfig, load_diffusers_pipeline
    from mmpref.pipelines.lora import fuse_lora_into

    info = describe_model(model)
    source = info["base"] if info["kind"] == "lora" else info["path"]
    pipe = load_diffusers_pipeline(ImageModelConfig(path=source, scheduler=settings.scheduler), device)
    if info["kind"] == "lora":
        fuse_lora_into(pipe, info["path"], model.lora_scale, what=f"model '{model.name}'", base=source)
    return pipe


# ---- the run --------------------------------------------------------------------------------------
@dataclass
class ModelSamples:
    """One model's images [prompts][seeds] (uint8 HxWx3) and scores per scorer [prompts, seeds]."""

    name: str
    info: dict[str, Any]
    images: list[list[np.ndarray]]
    scores: dict[str, np.ndarray]
    failures: list[dict[str, Any]]
    seconds: float


def _sampling(settings: EvalSettings) -> Any:
    from mmpref.pipelines.image_sampler import ImageSamplingConfig

    return ImageSamplingConfig(samples_per_prompt=settings.seeds_per_prompt, seed=settings.seed, steps=settings.steps,
                               guidance_scale=settings.guidance_scale, height=settings.height, width=settings.width)


def sample_requests(prompts: list[Any], settings: EvalSettings) -> list[Any]:
    """Every (prompt, seed) sample of a model, in order, each with its own derived noise seed."""
    from mmpref.pipelines.sampling import SampleRequest
    from mmpref.pipelines.seeds import derive_seed

    return [SampleRequest(p.index, j, derive_seed(settings.seed, p.index, j), p.text, p.text)
            for p in prompts for j in range(settings.seeds_per_prompt)]


def batches_of(requests: list[Any], size: int) -> list[list[Any]]:
    """A model's pipeline calls, cut the same way for any number of processes (so the images match too)."""
    return [requests[start:start + size] for start in range(0, len(requests), size)]


def sample_batches(pipe: Any, batches: list[list[Any]], settings: EvalSettings) -> list[Any]:
    """`SampleResult`s of `batches` (one pipeline call each), in order."""
    import torch

    from mmpref.pipelines.image_sampler import DiffusersImageSampler, ImageModelConfig

    sampler = DiffusersImageSampler(ImageModelConfig(path="<loaded>"), _sampling(settings), torch.device("cpu"),
                                    pipeline=pipe)
    results = []
    with torch.no_grad():
        for batch in batches:
            results += sampler.sample(batch)
    return results


def sample_image_part(model: EvalModel, settings: EvalSettings, batches: list[list[Any]]) -> list[list[Any]]:
    """Worker of `SamplingPool`: load the model (stock diffusers, LoRA fused) and make its share of the
    pipeline calls; the results of each call."""
    from mmpref.pipelines.engine import pick_device

    pipe = load_model(model, settings, pick_device(settings.device, 0))
    return [sample_batches(pipe, [batch], settings) for batch in batches]


def images_of(results: list[Any], prompts: int, seeds: int) -> tuple[list[list[np.ndarray]], list[dict[str, Any]]]:
    """Images [prompt][seed] from results in request order; failed samples become black images."""
    shape = next((r.sample.shape for r in results if r.ok), (8, 8, 3))
    failures = [{"prompt_row": r.request.prompt_index, "sample": r.request.sample_index, "error": r.error}
                for r in results if not r.ok]
    flat = [r.sample if r.ok else np.zeros(shape, np.uint8) for r in results]
    return [flat[i * seeds:(i + 1) * seeds] for i in range(prompts)], failures


def score_images(scorers: dict[str, Any], images: list[list[np.ndarray]], texts: list[str]) -> dict[str, np.ndarray]:
    flat = [im for row in images for im in row]
    k = len(images[0]) if images else 0
    prompts = [t for t in texts for _ in range(k)]
    return {name: scorer.score(flat, prompts).numpy().astype(np.float64).reshape(len(images), k)
            for name, scorer in scorers.items()}


def accuracy_scorer(settings: EvalSettings) -> str | None:
    choice = settings.accuracy.scorer
    if choice == "auto":
        return "shapes_truth" if "shapes_truth" in settings.scorers else None
    if choice is not None and choice not in settings.scorers:
        raise ConfigError(f"accuracy.scorer: '{choice}' is not one of scorers {settings.scorers}; add it or set null.")
    return choice


def _import_world_scorers() -> None:
    """Register the shapes world's scorers (idempotent) in case mmpref.reward_models does not import them."""
    import importlib

    try:
        importlib.import_module("mmpref.sandbox.shapes.scorers")
    except ImportError:
        pass


def build_scorers(names: list[str]) -> dict[str, Any]:
    from mmpref.reward_models import build_scorer

    _import_world_scorers()
    return {name: build_scorer(name) for name in names}


def prompt_forms(texts: list[str]) -> list[str] | None:
    """Shapes-world prompt forms (single / count / relation) when every prompt is a grammar sentence."""
    try:
        from mmpref.sandbox.shapes.grammar import parse_prompt

        return [parse_prompt(t).form for t in texts]
    except Exception:  # noqa: BLE001 - not a shapes prompt set: no per-form breakdown
        return None


def relation_outcome_shares(samples: ModelSamples, texts: list[str], forms: list[str]) -> dict[str, float]:
    """Shapes world: share of relation samples whose layout is right, reversed, other, or missing an object."""
    from mmpref.sandbox.shapes.truth import RELATION_OUTCOMES, relation_outcome

    outcomes = [relation_outcome(image, text) for text, form, row in zip(texts, forms, samples.images)
                if form == "relation" for image in row]
    return {k: outcomes.count(k) / max(len(outcomes), 1) for k in RELATION_OUTCOMES}


def log_model_start(log: Callable[[str], None], model: EvalModel, info: dict[str, Any], n_prompts: int,
                    settings: EvalSettings, pool: Any) -> None:
    where = f" in {pool.processes} processes" if pool is not None else ""
    log(f"eval: {model.name} ({info['kind']} {info['path']}{' on ' + info['base'] if info['base'] else ''}): "
        f"{n_prompts} prompts x {settings.seeds_per_prompt} seeds{where}")


def log_model_scores(log: Callable[[str], None], model: EvalModel, scores: dict[str, np.ndarray],
                     acc_name: str | None, settings: EvalSettings, seconds: float) -> None:
    summary = ", ".join(f"{n} {s.mean():.3f}" for n, s in scores.items())
    if acc_name:
        summary += f", accuracy {(scores[acc_name] >= settings.accuracy.threshold).mean():.3f}"
    log(f"eval: {model.name}: {summary} ({seconds:.0f} s)")


def _evaluate_model(model: EvalModel, info: dict[str, Any], batches: list[list[Any]], n_prompts: int,
                    texts: list[str], scorers: dict[str, Any], acc_name: str | None, settings: EvalSettings,
                    device: Any, pipe: Any, pool: Any, log: Callable[[str], None]) -> ModelSamples:
    """One model's images (in this process, or dealt out to `pool`) and scores."""
    t0 = time.time()
    pool = pool if pipe is None else None  # a preloaded pipeline samples here
    log_model_start(log, model, info, n_prompts, settings, pool)
    if pool is not None:
        results = pool.sample(model, settings, batches, work=sample_image_part)
    else:
        results = sample_batches(pipe if pipe is not None else load_model(model, settings, device), batches, settings)
    images, failures = images_of(results, n_prompts, settings.seeds_per_prompt)
    scores = score_images(scorers, images, texts)
    log_model_scores(log, model, scores, acc_name, settings, time.time() - t0)
    return ModelSamples(model.name, info, images, scores, failures, time.time() - t0)


def evaluate(settings: EvalSettings, *, log: Callable[[str], None] = print,
             preloaded: dict[str, Any] | None = None,
             decorate: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the comparison and write the report; returns the report dict (also OUT/report.json).

    `preloaded` maps model names to pipelines already in memory; `decorate` may rewrite the report
    in place before it is written (the demo nests it under "eval" beside its headline figures).
    """

    from mmpref.evaluation.parallel import sampling_pool
    from mmpref.evaluation.report import write_outputs
    from mmpref.pipelines.engine import pick_device
    from mmpref.pipelines.prompts import PromptsConfig, load_prompts

    start = time.time()
    if len(settings.models) < 1:
        raise UserError("eval: name at least one model (the first is the reference of gains and win rates).")
    prompt_list = load_prompts(PromptsConfig(source=settings.prompts, column=settings.prompt_column,
                                             limit=settings.limit))
    prompts = prompt_list.prompts
    texts = [p.text for p in prompts]
    scorers = build_scorers(list(settings.scorers))  # first: a missing scorer fails before any model loads
    acc_name = accuracy_scorer(settings)
    infos = [describe_model(m) for m in settings.models]  # every path checked before the first loads
    device = pick_device(settings.device, 0)
    batches = batches_of(sample_requests(prompts, settings), settings.batch_size)
    samples: list[ModelSamples] = []
    with sampling_pool(settings, device) as pool:
        for model, info in zip(settings.models, infos):
            samples.append(_evaluate_model(model, info, batches, len(prompts), texts, scorers, acc_name, settings,
                                           device, (preloaded or {}).get(model.name), pool, log))
    report = compare(samples, settings, texts, acc_name)
    report["prompts"] = {"source": settings.prompts, "count": len(prompts), "sha256": prompt_list.digest,
                         "skipped": len(prompt_list.skipped)}
    report["settings"] = to_plain(settings)
    report["seconds"] = round(time.time() - start, 1)
    write_outputs(Path(settings.out), report, samples, texts, settings, acc_name, [p.index for p in prompts],
                  decorate=decorate)
    return report


def compare(samples: list[ModelSamples], settings: EvalSettings, texts: list[str], acc_name: str | None) -> dict[str, Any]:
    """Means with CIs per model and metric, gains and win rates against the first model."""
    n = len(texts)
    idx = stats.resample_indices(n, settings.resamples, settings.bootstrap_seed)
    wr_name = settings.win_rate_scorer or settings.scorers[0]
    forms = prompt_forms(texts)

    def metrics_of(s: ModelSamples) -> dict[str, np.ndarray]:
        out = dict(s.scores)
        if acc_name:
            out["accuracy"] = (s.scores[acc_name] >= settings.accuracy.threshold).astype(np.float64)
        return out

    reference = metrics_of(samples[0])
    models = []
    for s in samples:
        values = metrics_of(s)
        entry: dict[str, Any] = {
            "name": s.name, **s.info, "seconds": round(s.seconds, 1), "failed_samples": len(s.failures),
            "metrics": {k: stats.mean_ci(v, idx) for k, v in values.items()},
        }
        if forms and "accuracy" in values:
            entry["accuracy_by_form"] = {f: float(values["accuracy"][[x == f for x in forms]].mean())
                                         for f in dict.fromkeys(forms)}
        if forms and "relation" in forms:
            entry["relation_outcomes"] = relation_outcome_shares(s, texts, forms)
        if s is not samples[0]:
            entry["vs_first"] = {
                "reference": samples[0].name,
                "gain": {k: stats.difference_ci(v, reference[k], idx) for k, v in values.items()},
                "win_rate_scorer": wr_name,
                **stats.win_rate(s.scores[wr_name], samples[0].scores[wr_name], idx).to_json(),
            }
        if s.failures:
            entry["failures"] = s.failures[:20]
        models.append(entry)
    return {
        "models": models,
        "seeds_per_prompt": settings.seeds_per_prompt,
        "scorers": list(settings.scorers),
        "accuracy": {"scorer": acc_name, "threshold": settings.accuracy.threshold} if acc_name else None,
        "bootstrap": {"method": "percentile", "level": 0.95, "resamples": settings.resamples,
                      "seed": settings.bootstrap_seed, "unit": "prompt (all its seeds together); one index "
                      "matrix for every statistic, so gains and win rates are paired"},
        "win_rate": {"scorer": wr_name, "definition": "wins / (wins + losses) over (prompt, seed) pairs; ties "
                     f"(|difference| <= {stats.TIE_TOLERANCE}) excluded and reported as tie_share"},
    }


def load_report(out: str | Path) -> dict[str, Any]:
    return json.loads((Path(out) / "report.json").read_text())


def format_table(report: dict[str, Any]) -> str:
    """The report as a plain-text table: means [95 % CI] per model, then gains and win rates vs the first."""
    models = report["models"]
    metrics = list(models[0]["metrics"])
    name_w = max(8, *(len(m["name"]) for m in models))
    lines = ["model".ljust(name_w) + "".join(f"  {k:>26}" for k in metrics)]
    for m in models:
        cells = [f"{m['metrics'][k]['mean']:.3f} [{m['metrics'][k]['ci95'][0]:.3f}, {m['metrics'][k]['ci95'][1]:.3f}]"
                 for k in metrics]
        lines.append(m["name"].ljust(name_w) + "".join(f"  {c:>26}" for c in cells))
    for m in models[1:]:
        v = m["vs_first"]
        gains = ", ".join(f"{k} {g['diff']:+.3f} [{g['ci95'][0]:+.3f}, {g['ci95'][1]:+.3f}]" for k, g in v["gain"].items())
        lines.append(f"{m['name']} vs {v['reference']}: {gains}")
        lines.append(f"{' ' * len(m['name'])}    win rate ({v['win_rate_scorer']}) {v['win_rate']:.3f} "
                     f"[{v['win_rate_ci95'][0]:.3f}, {v['win_rate_ci95'][1]:.3f}], {v['wins']} wins / {v['losses']} "
                     f"losses / {v['ties']} ties (tie share {v['tie_share']:.2f})")
    return "\n".join(lines)
