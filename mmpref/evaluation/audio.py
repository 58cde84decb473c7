"""`mmpref eval` for text-to-audio models: the image evaluation's statistics and report, on clips.

Models are TangoPipeline directories or LoRA directories on one (`pipe.load_lora_weights`, fused), as
for images. Clip j of prompt i starts from the noise of `derive_seed(seed, i, j)`, the same derivation
as `mmpref generate`, so models are compared clip for clip. Scores come from registered audio scorers
(e.g. the audio world's `audio_truth`); means, bootstrap CIs, paired gains and win rates are
`engine.compare`'s. Grids and report.html show each clip's log-mel spectrogram (time left to right),
so the report is the image one; with `save_images` every clip is also written as a WAV.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmpref.errors import UserError
from mmpref.evaluation.engine import (
    EvalModel,
    EvalSettings,
    ModelSamples,
    batches_of,
    compare,
    describe_model,
    sample_requests,
)

# What `mmpref eval` compares audio models on when --prompts / --scorers are not given.
AUDIO_DEFAULTS: dict[str, Any] = {"prompts": "builtin:audio_heldout", "scorers": ["audio_truth"]}


def is_audio_model(model: EvalModel) -> bool:
    """Whether `model` (a pipeline or a LoRA on one) is a text-to-audio TangoPipeline, by its model_index.json."""
    import json

    info = describe_model(model)
    index = Path(info["base"] if info["kind"] == "lora" else info["path"]) / "model_index.json"
    if not index.is_file():
        return False
    try:
        return json.loads(index.read_text()).get("_class_name") == "TangoPipeline"
    except ValueError as err:
        raise UserError(f"model '{model.name}': {index} is not valid JSON ({err}); re-export the pipeline "
                        "with save_pretrained.") from None


def load_audio_model(model: EvalModel, settings: EvalSettings, device: Any) -> Any:
    """A text-to-audio pipeline on `device`: loaded as `mmpref generate` loads it, LoRA applied and fused."""
    from mmpref.pipelines.audio_sampler import AudioModelConfig, load_audio_pipeline
    from mmpref.pipelines.lora import fuse_lora_into

    info = describe_model(model)
    source = info["base"] if info["kind"] == "lora" else info["path"]
    pipe = load_audio_pipeline(AudioModelConfig(path=source, scheduler=settings.scheduler), device)
    if info["kind"] == "lora":
        fuse_lora_into(pipe, info["path"], model.lora_scale, what=f"model '{model.name}'", base=source)
    return pipe


def sample_clip_batches(pipe: Any, batches: list[list[Any]], settings: EvalSettings, device: Any) -> list[Any]:
    """`SampleResult`s (waveforms) of `batches`, one pipeline call each, in order."""
    import torch

    from mmpref.pipelines.audio_sampler import AudioModelConfig, AudioSamplingConfig, DiffusersAudioSampler

    sampling = AudioSamplingConfig(seed=settings.seed, steps=settings.steps, guidance_scale=settings.guidance_scale)
    sampler = DiffusersAudioSampler(AudioModelConfig(path="<loaded>"), sampling, device, pipeline=pipe)
    results = []
    with torch.no_grad():
        for batch in batches:
            results += sampler.sample(batch)
    return results


def sample_audio_part(model: EvalModel, settings: EvalSettings, batches: list[list[Any]]) -> list[list[Any]]:
    """Worker of `SamplingPool`: load the audio model and make its share of the pipeline calls."""
    from mmpref.pipelines.engine import pick_device

    device = pick_device(settings.device, 0)
    pipe = load_audio_model(model, settings, device)
    return [sample_clip_batches(pipe, [batch], settings, device) for batch in batches]


def clips_of_results(results: list[Any], prompts: int, seeds: int) -> tuple[list[list[np.ndarray]],
                                                                          list[dict[str, Any]]]:
    """Waveforms [prompt][seed] from results in request order; failed clips become silence."""
    length = next((len(r.sample) for r in results if r.ok), 16000)
    failures = [{"prompt_row": r.request.prompt_index, "sample": r.request.sample_index, "error": r.error}
                for r in results if not r.ok]
    flat = [r.sample if r.ok else np.zeros(length, np.float32) for r in results]
    return [flat[i * seeds:(i + 1) * seeds] for i in range(prompts)], failures


def sample_rate_of(info: dict[str, Any]) -> int:
    """The vocoder's output rate of a model (of its base, for a LoRA), from its config alone."""
    from transformers import SpeechT5HifiGanConfig

    source = info["base"] if info["kind"] == "lora" else info["path"]
    return int(SpeechT5HifiGanConfig.from_pretrained(source, subfolder="vocoder").sampling_rate)


def score_clips(scorers: dict[str, Any], clips: list[list[np.ndarray]], texts: list[str]) -> dict[str, np.ndarray]:
    flat = [c for row in clips for c in row]
    k = len(clips[0]) if clips else 0
    prompts = [t for t in texts for _ in range(k)]
    return {name: np.asarray(scorer.score(flat, prompts), dtype=np.float64).reshape(len(clips), k)
            for name, scorer in scorers.items()}


def mel_images(clips: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """Each clip's log-mel picture (uint8 H x W x 3, time left to right, one colour scale) for the grids."""
    from mmpref.audio.mel import log_mel, mel_picture

    return [[np.asarray(mel_picture(log_mel(c)).convert("RGB")) for c in row] for row in clips]


def audio_forms(texts: list[str]) -> list[str] | None:
    """Audio-world prompt forms (single / count / sequence) when every prompt is a grammar sentence."""
    try:
        from mmpref.sandbox.audio.grammar import parse_prompt

        return [parse_prompt(t).form for t in texts]
    except Exception:  # noqa: BLE001 - not the audio world: no per-form breakdown
        return None


def _accuracy_scorer(settings: EvalSettings) -> str | None:
    choice = settings.accuracy.scorer
    if choice == "auto":
        return "audio_truth" if "audio_truth" in settings.scorers else None
    if choice is not None and choice not in settings.scorers:
        raise UserError(f"accuracy.scorer: '{choice}' is not one of scorers {settings.scorers}; add it or set null.")
    return choice


def _write_wavs(out: Path, samples: list[ModelSamples], clips: dict[str, list[list[np.ndarray]]], rate: int) -> None:
    from mmpref.audio.mel import write_wav

    for s in samples:
        folder = out / "clips" / s.name
        folder.mkdir(parents=True, exist_ok=True)
        for i, row in enumerate(clips[s.name]):
            for j, clip in enumerate(row):
                write_wav(folder / f"{i:04d}_{j}.wav", clip, rate)


def evaluate_audio(settings: EvalSettings, *, log: Callable[[str], None] = print,
                   decorate: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the comparison on text-to-audio models and write the report; returns it (also OUT/report.json)."""

    import mmpref.pipelines.text_to_audio  # noqa: F401  audio prompt sets and the WAV encoder
    import mmpref.sandbox.audio.scorers  # noqa: F401  registers audio_truth and the detectors
    from mmpref.evaluation.engine import build_scorers, log_model_scores, log_model_start
    from mmpref.evaluation.parallel import sampling_pool
    from mmpref.evaluation.report import write_outputs
    from mmpref.pipelines.engine import pick_device
    from mmpref.pipelines.prompts import PromptsConfig, load_prompts

    start = time.time()
    if not settings.models:
        raise UserError("eval: name at least one model (the first is the reference of gains and win rates).")
    prompt_list = load_prompts(PromptsConfig(source=settings.prompts, column=settings.prompt_column,
                                             limit=settings.limit))
    prompts = prompt_list.prompts
    texts = [p.text for p in prompts]
    scorers = build_scorers(list(settings.scorers))
    acc_name = _accuracy_scorer(settings)
    infos = [describe_model(m) for m in settings.models]
    device = pick_device(settings.device, 0)
    batches = batches_of(sample_requests(prompts, settings), settings.batch_size)
    samples: list[ModelSamples] = []
    clips_of: dict[str, list[list[np.ndarray]]] = {}
    with sampling_pool(settings, device) as pool:
        for model, info in zip(settings.models, infos):
            t0 = time.time()
            log_model_start(log, model, info, len(prompts), settings, pool)
            if pool is not None:
                results = pool.sample(model, settings, batches, work=sample_audio_part)
            else:
                results = sample_clip_batches(load_audio_model(model, settings, device), batches, settings, device)
            clips, failures = clips_of_results(results, len(prompts), settings.seeds_per_prompt)
            scores = score_clips(scorers, clips, texts)
            clips_of[model.name] = clips
            samples.append(ModelSamples(model.name, info, mel_images(clips), scores, failures, time.time() - t0))
            log_model_scores(log, model, scores, acc_name, settings, time.time() - t0)
    report = compare(samples, settings, texts, acc_name)
    forms = audio_forms(texts)
    if forms and acc_name:
        for entry, s in zip(report["models"], samples):
            correct = s.scores[acc_name] >= settings.accuracy.threshold
            entry["accuracy_by_form"] = {f: float(correct[[x == f for x in forms]].mean()) for f in dict.fromkeys(forms)}
    report["modality"] = "audio"
    report["prompts"] = {"source": settings.prompts, "count": len(prompts), "sha256": prompt_list.digest,
                         "skipped": len(prompt_list.skipped)}
    report["settings"] = {k: v for k, v in _plain(settings).items() if k not in ("height", "width")}
    report["seconds"] = round(time.time() - start, 1)
    out = Path(settings.out)
    if settings.save_images:
        _write_wavs(out, samples, clips_of, sample_rate_of(infos[0]))
    write_outputs(out, report, samples, texts, settings, acc_name, [p.index for p in prompts], decorate=decorate)
    return report


def _plain(settings: EvalSettings) -> dict[str, Any]:
    from mmpref.config import to_plain

    return to_plain(settings)
