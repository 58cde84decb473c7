"""`pipeline: text_to_audio_pairs`: Audio-Alpaca-style preference pairs from a text-to-audio model (Tango 2).

Tango 2 (Majumder et al. 2024) built Audio-Alpaca from Tango itself: per caption, several clips made by one
of four strategies, ranked with CLAP, and kept only when two CLAP models agree (winner and loser floors and a
margin window per model). Here each strategy is a config entry:

    strategies:
      - {name: "1.1", samples: 4, steps: [5, 25, 50, 100]}    # one prompt, four step counts
      - {name: "1.2", samples: 4, steps: [50]}                # four seeds at 50 steps
      - {name: "2", samples: 1, perturb: event, perturbed: 3}  # losers from captions with an event swapped/dropped
      - {name: "3", samples: 1, perturb: temporal, perturbed: 3}  # losers from reordered temporal captions

Clips of the original caption compete with each other (pairing: best vs worst, all pairs, ranked); in a
perturbation strategy the chosen clip is an original-caption clip and the rejected one a perturbed-caption
clip, every clip scored against the original caption. `assign: all` runs every strategy on every prompt;
`assign: cycle` gives prompt row i strategy i mod K (or the next one that applies: a caption without a
temporal connective has no strategy-3 perturbation), as Audio-Alpaca spread its captions over strategies.

Output: `OUTPUT_DIR/data/*.parquet` in Audio-Alpaca's schema (`prompt`, `chosen`, `rejected` as datasets
Audio {bytes, path} WAV structs, `strategy`) plus provenance (scores under every scorer, seeds, steps, the
caption each clip was generated from), which `mmpref train` reads as it is (`data.source: OUTPUT_DIR`,
adapter text_to_audio); summary.json, score_distributions.png, scores_by_scorer.png and contact_sheet.png
(mel spectrograms of chosen | rejected) as for images. Resumable and splittable over processes. With a
TangoPipeline each clip's own latents are kept too (`chosen_latents`, `rejected_latents`, `latent_space`;
store_latents, mmpref/audio/latents.py), so training on the same VAE skips the lossy WAV round trip.

With pairing.strategy: unpaired (and pairing.threshold) there are no pairs: every scored clip of a prompt,
perturbed-caption clips included, is one row labelled desirable when the first scorer's score reaches the
threshold, in the `single_audio` schema (`prompt`, `audio`, `label`, plus `condition`, `role`, scores, ...;
see audio_samples.py) that unpaired objectives (KTO, BCO, NPO) train on; repeated clips are dropped (dedup),
the scorers' pair windows are refused, and summary.json counts samples_written instead of pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from mmpref.audio.latents import latents_to_bytes
from mmpref.config import REQUIRED, to_plain
from mmpref.errors import UserError
from mmpref.pipelines.audio_sampler import (
    AudioModelConfig,
    AudioSamplingConfig,
    DiffusersAudioSampler,
    encode_wav,
)
from mmpref.pipelines.audio_samples import (
    MEL_CELL,
    audio_sample_sheet,
    clip_rows,
    mel_tile,
    write_audio_samples,
)
from mmpref.pipelines.engine import Job, run_generation
from mmpref.pipelines.filters import SAMPLE_FILTERS, FiltersConfig
from mmpref.pipelines.lora import model_fingerprint
from mmpref.pipelines.multi_filters import ScorerFilter, check_labels, filter_multi, filter_names
from mmpref.pipelines.pairing import Candidate, PairingConfig, form_pairs, pairing_fingerprint
from mmpref.pipelines.perturbation import Perturber, resolve_perturber
from mmpref.pipelines.prompt_sets import PROMPT_SETS
from mmpref.pipelines.prompts import Prompt, PromptsConfig, PromptTransform, resolve_transform
from mmpref.pipelines.report import draw_sheet
from mmpref.pipelines.sampling import SampleRequest
from mmpref.pipelines.scoring import score_samples
from mmpref.pipelines.seeds import derive_seed
from mmpref.pipelines.settings import OutputConfig, RuntimeConfig
from mmpref.pipelines.worker import ShardResult, sample_and_record
from mmpref.pipelines.writer import write_table
from mmpref.registry import PIPELINES

NAME = "text_to_audio_pairs"
PERTURB_SEED_BASE = 1 << 20  # perturbation seeds use sample indices above every real one


# ---- config -------------------------------------------------------------------------------------------
@dataclass
class StrategyConfig:
    """One way of making a prompt's candidate clips (an Audio-Alpaca strategy)."""

    name: str = REQUIRED  # written to the dataset's `strategy` column (Audio-Alpaca: 1.1, 1.2, 2, 3)
    samples: int = 4  # clips generated from the original caption
    steps: list[int] = field(default_factory=list)  # denoising steps, cycled over the clips (empty: sampling.steps)
    shared_seed: bool = False  # every clip of the strategy starts from the same noise (only the steps differ)
    perturb: Literal["none", "event", "temporal"] = "none"  # losers from altered captions (swap/drop, reorder)
    perturbed: int = 0  # perturbed captions per prompt, one clip each (with perturb: event/temporal)

    def check(self) -> None:
        if self.samples < 1:
            raise ValueError(f"strategy '{self.name}': samples must be at least 1.")
        if any(s < 1 for s in self.steps):
            raise ValueError(f"strategy '{self.name}': steps must be positive.")
        if self.perturb == "none":
            if self.perturbed:
                raise ValueError(f"strategy '{self.name}': perturbed clips need perturb: event or temporal.")
        elif self.perturbed < 1:
            raise ValueError(f"strategy '{self.name}': perturb: {self.perturb} needs perturbed >= 1.")

    @property
    def size(self) -> int:
        return self.samples + self.perturbed


@dataclass
class PerturbationConfig:
    perturber: str = "rules"  # a registered perturber or "package.module:factory" (options -> perturber)
    options: dict[str, Any] = field(default_factory=dict)  # given to the factory (rules: {events: [...]})


def _default_strategies() -> list[StrategyConfig]:
    return [StrategyConfig(name="1.2", samples=4)]


@dataclass
class TextToAudioPairsConfig:
    model: AudioModelConfig = REQUIRED  # type: ignore[assignment]
    prompts: PromptsConfig = REQUIRED  # type: ignore[assignment]
    sampling: AudioSamplingConfig = field(default_factory=AudioSamplingConfig)
    strategies: list[StrategyConfig] = field(default_factory=_default_strategies)
    assign: Literal["all", "cycle"] = "all"  # every strategy on every prompt, or prompt row i -> strategy i mod K
    perturbation: PerturbationConfig = field(default_factory=PerturbationConfig)
    scorers: list[ScorerFilter] = REQUIRED  # type: ignore[assignment]  # the first ranks; each filters
    pairing: PairingConfig = field(default_factory=PairingConfig)
    dedup: bool = True  # drop pairs of identical clips and repeats of the same pair (unpaired: repeated clips)
    wav_subtype: Literal["PCM_16", "PCM_24", "FLOAT"] = "PCM_16"  # WAV sample format of the stored clips (FLOAT: lossless)
    # keep each clip's own latents beside its WAV (TangoPipeline models), so `mmpref train` on the same VAE trains
    # on what the model produced instead of re-encoding the WAV (see mmpref/audio/latents.py)
    store_latents: bool = True
    output: OutputConfig = REQUIRED  # type: ignore[assignment]
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def check(self) -> None:
        check_labels(self.scorers)
        if not self.strategies:
            raise ValueError("strategies: give at least one strategy.")
        names = [s.name for s in self.strategies]
        if len(set(names)) != len(names):
            raise ValueError("strategies: names must be unique (they label the pairs).")
        if self.pairing.unpaired:
            self.pairing.check_unpaired()
            for position, f in enumerate(self.scorers):
                f.check_unpaired(position)
        else:
            for s in self.strategies:
                if s.perturb == "none" and s.samples < 2:
                    raise ValueError(f"strategy '{s.name}': samples must be at least 2 (a pair needs two clips).")
        for f in self.scorers:
            if getattr(f.scorer.params, "standardize", None) == "running":
                raise ValueError(f"scorers.{f.label}: running statistics make a score depend on what was scored "
                                 "before it; use standardize: fixed or none.")


# ---- the audio world's and a few caption prompt sets ----------------------------------------------------
def _audio_captions() -> list[str]:
    """24 AudioCaps-style captions, most with a temporal connective (for strategies 2 and 3)."""
    return [
        "A dog barks followed by a man speaking", "Rain falls while thunder rumbles in the distance",
        "A car engine idles then revs loudly", "A bell rings before a crowd cheers",
        "A woman laughs after a baby cries", "Birds chirp while water flows in a stream",
        "A door slams followed by footsteps", "A siren wails then fades away",
        "A train horn honks while a train passes", "Wind blows and leaves rustle",
        "A man speaks before music plays", "A phone rings followed by a woman speaking",
        "Glass breaks after a loud bang", "A cat meows while a dog barks",
        "Thunder rumbles then rain pours", "A crowd cheers followed by applause",
        "A drum plays before a guitar strums", "Footsteps echo then a door creaks open",
        "A baby cries while a woman sings softly", "An engine starts followed by a car driving away",
        "Water splashes then a child laughs", "A bird sings", "A clock ticks while a man snores",
        "A dog growls before barking loudly",
    ]


def _audio_world() -> list[str]:
    """Every sentence of the audio world's grammar (`mmpref.sandbox.audio`), in a fixed order."""
    from mmpref.sandbox.audio.grammar import all_prompts

    return [p.text for p in all_prompts()]


for _name, _builder in (("audio_captions", _audio_captions), ("audio_world", _audio_world)):
    PROMPT_SETS.setdefault(_name, _builder)


# ---- one shard ----------------------------------------------------------------------------------------------
@dataclass
class _Clip:
    request: SampleRequest
    strategy: int  # index into the config's strategies
    role: str  # "original" or "perturbed"
    sample: Any = None
    latents: Any = None  # the sampler's own latents of the clip (TangoPipeline), stored with output rows
    scores: dict[str, float] | None = None
    hash: str = ""
    error: str | None = None
    stage: str | None = None

    def record(self, strategy: str) -> dict[str, Any]:
        r = self.request
        out: dict[str, Any] = {"prompt_index": r.prompt_index, "sample_index": r.sample_index, "seed": r.seed,
                               "steps": r.steps, "strategy": strategy, "role": self.role,
                               "score": None, "scores": self.scores}
        if self.scores is not None:
            out["score"] = next(iter(self.scores.values()))
        if r.condition != r.prompt:
            out["condition"] = r.condition
        if self.error is not None:
            out.update(stage=self.stage, reason=self.error)
        return out


class MultiScorer:
    """The configured scorers in order, with their labels (what `Job.open_scorer` returns)."""

    modality = "audio"

    def __init__(self, filters: Sequence[ScorerFilter], scorers: Sequence[Any]) -> None:
        self.filters, self.scorers = list(filters), list(scorers)
        self.labels = [f.label for f in filters]
        for f, scorer in zip(filters, scorers):
            modality = getattr(scorer, "modality", "audio")
            if modality != "audio":
                raise UserError(f"scorers.{f.label}: '{getattr(scorer, 'name', scorer)}' scores {modality}; choose an "
                                "audio scorer (`mmpref list`: clap, audio_truth, audio_event_detector, ...).")

    @property
    def name(self) -> str:
        return "+".join(f"{f.label}={f.scorer.name}" for f in self.filters)


class AudioShardWorker:
    """Plans each prompt's clips by strategy, samples, scores with every scorer, pairs per strategy, filters."""

    def __init__(self, sampler: Any, scorer: MultiScorer, config: TextToAudioPairsConfig,
                 perturber: Perturber, transform: PromptTransform | None = None) -> None:
        self.sampler, self.scorer, self.config = sampler, scorer, config
        self.perturber, self.transform = perturber, transform
        self.scorer_name = scorer.name
        self.sample_rate = int(getattr(sampler, "sample_rate", 16000))
        self.latent_space = getattr(sampler, "latent_space", None) if config.store_latents else None

    # -- planning ----------------------------------------------------------------------------------------
    def _strategy_order(self, prompt: Prompt) -> list[int]:
        k = len(self.config.strategies)
        if self.config.assign == "all":
            return list(range(k))
        return [(prompt.index + j) % k for j in range(k)]

    def plan(self, prompt: Prompt) -> tuple[list[_Clip], list[dict[str, Any]]]:
        """The prompt's clips (strategy blocks of consecutive sample indices), and the strategies skipped and why."""
        clips: list[_Clip] = []
        skipped: list[dict[str, Any]] = []
        start = 0
        seed = self.config.sampling.seed
        for k in self._strategy_order(prompt):
            strategy = self.config.strategies[k]
            conditions: list[str] = []
            if strategy.perturb != "none":
                try:
                    conditions = [str(c) for c in self.perturber(prompt.text, strategy.perturb, strategy.perturbed,
                                                                 derive_seed(seed, prompt.index, PERTURB_SEED_BASE + k))]
                except Exception as err:  # noqa: BLE001 - recorded in summary.json (prompts.without_pairs)
                    skipped.append({"index": prompt.index, "strategy": strategy.name,
                                    "reason": f"perturber error: {type(err).__name__}: {err}"})
                    continue
                conditions = [c for c in dict.fromkeys(conditions) if c.strip() and c != prompt.text][:strategy.perturbed]
                if not conditions:
                    skipped.append({"index": prompt.index, "strategy": strategy.name,
                                    "reason": f"no {strategy.perturb} perturbation of this caption"})
                    continue
            block = self._block(prompt, k, start, conditions)
            clips += block
            start += len(block)
            if self.config.assign == "cycle":
                break
        return clips, skipped

    def _block(self, prompt: Prompt, k: int, start: int, perturbed: list[str]) -> list[_Clip]:
        strategy, seed = self.config.strategies[k], self.config.sampling.seed
        out = []
        for j in range(strategy.samples + len(perturbed)):
            index = start + j
            clip_seed = derive_seed(seed, prompt.index, start if strategy.shared_seed else index)
            steps = strategy.steps[j % len(strategy.steps)] if strategy.steps else self.config.sampling.steps
            role, condition, error = "original", prompt.text, None
            if j >= strategy.samples:
                role, condition = "perturbed", perturbed[j - strategy.samples]
            elif self.transform is not None:
                try:
                    condition = str(self.transform(prompt.text, prompt.index, index, clip_seed))
                except Exception as err:  # noqa: BLE001 - recorded per clip
                    error = f"prompt transform error: {type(err).__name__}: {err}"
            clip = _Clip(SampleRequest(prompt.index, index, clip_seed, prompt.text, condition, steps), k, role)
            if error:
                clip.error, clip.stage = error, "transform"
            out.append(clip)
        return out

    # -- running --------------------------------------------------------------------------------------------
    def run(self, prompts: Sequence[Prompt], on_prompt_done: Callable[[int], None] | None = None) -> ShardResult:
        planned = [self.plan(p) for p in prompts]
        groups = [clips for clips, _ in planned]
        todo = [(g, c) for g, clips in enumerate(groups) for c in clips if c.error is None]
        # One pipeline call runs one step count: batch clips of equal steps together (stable, so still prompt-major
        # within a step count and a function of the shard alone). Prompts are paired once all their clips are in.
        todo.sort(key=lambda item: item[1].request.steps or 0)
        remaining = [sum(c.error is None for c in clips) for clips in groups]
        names = SAMPLE_FILTERS if self.config.pairing.unpaired else filter_names(self.scorer.filters)
        result = ShardResult(dropped=dict.fromkeys(names, 0))
        next_group = 0

        def flush(upto: int) -> None:
            nonlocal next_group
            while next_group < upto:
                self._pair(prompts[next_group], groups[next_group], planned[next_group][1], result)
                groups[next_group] = []
                next_group += 1
                if on_prompt_done:
                    on_prompt_done(1)

        batch_size = self.config.runtime.batch_size
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            self._sample_and_score([c for _, c in batch])
            for g, _ in batch:
                remaining[g] -= 1
            done = next_group
            while done < len(groups) and remaining[done] == 0:
                done += 1
            flush(done)
        flush(len(groups))
        result.raise_if_all_failed(prompts, "clip", "the model, scorers or perturber")
        return result

    def _sample_and_score(self, clips: list[_Clip]) -> None:
        good = sample_and_record(self.sampler, clips)
        per_scorer = [score_samples(s, [c.sample for c in good], [c.request.prompt for c in good])
                      for s in self.scorer.scorers]
        for i, clip in enumerate(good):
            values = [scores[i] for scores in per_scorer]
            bad = [(label, v) for label, v in zip(self.scorer.labels, values) if isinstance(v, str)]
            if bad:
                clip.error, clip.stage, clip.sample = f"{bad[0][0]}: {bad[0][1]}", "score", None
            else:
                clip.scores = dict(zip(self.scorer.labels, (float(v) for v in values)))

    def _candidates(self, strategy: StrategyConfig, scored: list[_Clip]) -> list[Candidate]:
        primary = self.scorer.labels[0]
        scores = [c.scores[primary] for c in scored]  # type: ignore[index]
        if strategy.perturb == "none":
            return form_pairs(scores, self.config.pairing)
        rank = sorted(range(len(scored)), key=lambda i: (-scores[i], i))
        originals = [i for i in rank if scored[i].role == "original"]
        perturbed = [i for i in rank if scored[i].role == "perturbed"]
        if not originals or not perturbed:
            return []
        pairs = [(originals[0], perturbed[-1])] if self.config.pairing.strategy == "best_vs_worst" else \
            [(o, p) for o in originals for p in perturbed]
        out = []
        for o, p in pairs:
            margin = scores[o] - scores[p]
            target = 1.0
            if self.config.pairing.strategy == "ranked":
                target = 1.0 / (1.0 + math.exp(-margin / self.config.pairing.temperature))
            out.append(Candidate(o, p, margin, target))
        return out

    def _pair(self, prompt: Prompt, clips: list[_Clip], skipped: list[dict[str, Any]], result: ShardResult) -> None:
        """Pairs of each strategy of one prompt; a strategy that gives none is listed with why (per prompt and
        strategy, in summary.json's prompts.without_pairs)."""
        strategies = self.config.strategies
        result.samples.extend(c.record(strategies[c.strategy].name) for c in clips)
        result.unpaired.extend(skipped)
        if self.config.pairing.unpaired:
            self._single_rows(prompt, clips, result)
            return
        for k in dict.fromkeys(c.strategy for c in clips):
            strategy = strategies[k]
            block = [c for c in clips if c.strategy == k]
            scored = [c for c in block if c.scores is not None]
            candidates = self._candidates(strategy, scored)
            kept, dropped = filter_multi(candidates, [c.scores for c in scored],  # type: ignore[misc]
                                         [c.hash for c in scored], self.scorer.filters, self.config.dedup)
            result.candidates += len(candidates)
            result.count_drops(dropped)
            if not kept:
                why = (f"only {len(scored)} of {len(block)} clips scored" if not candidates else
                       "every candidate pair was dropped: " + ", ".join(f"{n} {k}" for k, n in dropped.items() if n))
                result.unpaired.append({"index": prompt.index, "strategy": strategy.name, "reason": why})
            for cand in kept:
                result.rows.append(self._row(prompt, strategy, scored[cand.chosen], scored[cand.rejected], cand))

    def _single_rows(self, prompt: Prompt, clips: list[_Clip], result: ShardResult) -> None:
        """An unpaired run's rows of one prompt: its distinct scored clips, labelled (scored == kept + dropped)."""
        rows, dropped, without = clip_rows(prompt, clips, [s.name for s in self.config.strategies],
                                           self.scorer.labels[0], self.config.pairing, self.config.dedup,
                                           lambda clip: self._audio(prompt, clip), self._latents, self.latent_space)
        result.candidates += sum(c.scores is not None for c in clips)
        result.count_drops(dropped)
        result.unpaired.extend(without)
        result.rows.extend(rows)

    def _audio(self, prompt: Prompt, clip: _Clip) -> dict[str, Any]:
        """The clip as a datasets Audio struct: WAV bytes (config.wav_subtype) and a file name."""
        return {"bytes": encode_wav(clip.sample, self.sample_rate, self.config.wav_subtype),
                "path": f"{prompt.index:06d}_{clip.request.sample_index:03d}.wav"}

    def _latents(self, clip: _Clip) -> bytes | None:
        """The clip's own latents as npy bytes, when this run keeps them."""
        if self.latent_space is None or clip.latents is None:
            return None
        return latents_to_bytes(clip.latents)

    def _row(self, prompt: Prompt, strategy: StrategyConfig, win: _Clip, lose: _Clip, cand: Candidate) -> dict[str, Any]:
        primary = self.scorer.labels[0]
        return {
            "prompt": prompt.text,
            "chosen": self._audio(prompt, win),
            "rejected": self._audio(prompt, lose),
            "strategy": strategy.name,
            "chosen_score": win.scores[primary],  # type: ignore[index]
            "rejected_score": lose.scores[primary],  # type: ignore[index]
            "margin": cand.margin,
            "target": cand.target,
            "chosen_scores": dict(win.scores),  # type: ignore[arg-type]
            "rejected_scores": dict(lose.scores),  # type: ignore[arg-type]
            "chosen_prompt": win.request.condition,
            "rejected_prompt": lose.request.condition,
            "chosen_seed": win.request.seed,
            "rejected_seed": lose.request.seed,
            "chosen_steps": win.request.steps,
            "rejected_steps": lose.request.steps,
            "chosen_sample_index": win.request.sample_index,
            "rejected_sample_index": lose.request.sample_index,
            "prompt_index": prompt.index,
            "scorer": primary,
            "pairing": self.config.pairing.strategy,
            "chosen_latents": self._latents(win),
            "rejected_latents": self._latents(lose),
            "latent_space": self.latent_space,
        }


# ---- the dataset files --------------------------------------------------------------------------------------
def pair_features(labels: Sequence[str]) -> Any:
    """datasets Features of a shard: Audio-Alpaca's columns first (Audio structs of WAV bytes), then provenance."""
    import datasets

    value, scores = datasets.Value, {label: datasets.Value("float64") for label in labels}
    return datasets.Features({
        "prompt": value("string"),
        "chosen": datasets.Audio(decode=False),  # {bytes: WAV, path: name}; decode=False: no audio backend needed
        "rejected": datasets.Audio(decode=False),
        "strategy": value("string"),  # the strategy's name (Audio-Alpaca: 1.1, 1.2, 2, 3)
        "chosen_score": value("float64"),  # under the first (ranking) scorer
        "rejected_score": value("float64"),
        "margin": value("float64"),
        "target": value("float64"),  # P(chosen > rejected): 1.0, or the soft target with pairing: ranked
        "chosen_scores": scores,  # every scorer, by label
        "rejected_scores": scores,
        "chosen_prompt": value("string"),  # the caption the clip was generated from (perturbed for strategy 2/3 losers)
        "rejected_prompt": value("string"),
        "chosen_seed": value("int64"),
        "rejected_seed": value("int64"),
        "chosen_steps": value("int32"),
        "rejected_steps": value("int32"),
        "chosen_sample_index": value("int32"),
        "rejected_sample_index": value("int32"),
        "prompt_index": value("int64"),
        "scorer": value("string"),
        "pairing": value("string"),
        "chosen_latents": value("binary"),  # the sampler's own latents (npy, float16), null when not kept
        "rejected_latents": value("binary"),
        "latent_space": value("string"),  # id of the VAE that decodes them (mmpref/audio/latents.py)
    })


def write_audio_pairs(rows: Sequence[dict[str, Any]], path: Path, labels: Sequence[str]) -> int:
    return write_table(rows, path, pair_features(labels).arrow_schema)


def audio_contact_sheet(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Mel spectrograms of chosen | rejected per pair, with the scores and the captions they were made from."""

    def caption(row: dict[str, Any]) -> tuple[str, str]:
        rejected_prompt = row.get("rejected_prompt")
        alt = f"  vs '{str(rejected_prompt)[:40]}'" if rejected_prompt and rejected_prompt != row["prompt"] else ""
        return f"[{row['strategy']}] {str(row['prompt'])[:70]}", f"{row['chosen_score']:.3g} > {row['rejected_score']:.3g}{alt}"

    draw_sheet([[(mel_tile(row["chosen"]), *caption(row)), (mel_tile(row["rejected"]), "", "")] for row in rows],
               path, "no pairs kept", MEL_CELL)


def _finish(labels: Sequence[str], strategies: Sequence[str], sample_rate: Callable[[], int | None],
            wav_subtype: str, unpaired: bool) -> Callable:
    def finish(rundir: Any, records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
        import pyarrow.parquet as pq

        from mmpref.pipelines.report import describe

        samples = [s for r in records for s in r["samples"]]
        by_scorer = {label: [float(s["scores"][label]) for s in samples if s.get("scores")] for label in labels}
        kept = {name: 0 for name in strategies}
        for k in range(rundir.total_shards):
            for name in pq.read_table(rundir.shard_file(k), columns=["strategy"]).column("strategy").to_pylist():
                kept[name] = kept.get(name, 0) + 1
        summary["scores_by_scorer"] = {label: describe(v) for label, v in by_scorer.items()}
        summary["strategies"] = {name: {"clips": sum(1 for s in samples if s.get("strategy") == name),
                                        "failed": sum(1 for s in samples if s.get("strategy") == name and s.get("reason")),
                                        "samples" if unpaired else "pairs": kept.get(name, 0)} for name in strategies}
        summary["audio"] = {"format": f"WAV {wav_subtype} in datasets Audio structs", "sample_rate": sample_rate()}
        _plot_scorers(by_scorer, rundir.root / "scores_by_scorer.png")

    return finish


def _plot_scorers(by_scorer: dict[str, list[float]], path: Path) -> None:
    """One histogram of clip scores per scorer, side by side."""
    from mmpref.pipelines.report import plot_histograms

    plot_histograms([(f"clip scores ({label})", values) for label, values in by_scorer.items()], path, "#55a868")


# ---- the job ------------------------------------------------------------------------------------------------
def _open_scorer(config: TextToAudioPairsConfig, device: torch.device) -> MultiScorer:
    from mmpref.reward_models.build import resolve_dtype

    dtype = resolve_dtype(config.runtime.scorer_dtype)
    return MultiScorer(config.scorers, [f.scorer.build(device=device, dtype=dtype) for f in config.scorers])


def make_job(config: TextToAudioPairsConfig) -> Job:
    """Describe the run to the modality-agnostic engine (module-level, so worker processes can rebuild it)."""
    prompts = to_plain(config.prompts)
    labels = [f.label for f in config.scorers]
    unpaired = config.pairing.unpaired
    content = {
        "model": model_fingerprint(config.model),
        "sampling": to_plain(config.sampling),
        "strategies": to_plain(config.strategies),
        "assign": config.assign,
        "perturbation": to_plain(config.perturbation),
        "scorers": to_plain(config.scorers),
        "pairing": pairing_fingerprint(config.pairing),
        "dedup": config.dedup,
        "wav_subtype": config.wav_subtype,
        "store_latents": config.store_latents,
        "prompt_options": {k: prompts[k] for k in ("column", "split", "limit", "dedup", "transform")},
        "prompts_per_shard": config.output.prompts_per_shard,
    }
    rate: dict[str, int] = {}

    def open_sampler(device: torch.device) -> DiffusersAudioSampler:
        sampler = DiffusersAudioSampler(config.model, config.sampling, device)
        rate["value"] = sampler.sample_rate
        return sampler

    def open_worker(sampler: Any, scorer: MultiScorer) -> AudioShardWorker:
        perturber = resolve_perturber(config.perturbation.perturber)(dict(config.perturbation.options))
        return AudioShardWorker(sampler, scorer, config, perturber, resolve_transform(config.prompts.transform))

    def sample_rate() -> int | None:
        return rate.get("value") or _model_rate(config.model.path)

    return Job(
        pipeline=NAME,
        prompts=config.prompts,
        samples_per_prompt=sum(s.size for s in config.strategies),
        seed=config.sampling.seed,
        pairing=config.pairing,
        filters=FiltersConfig(),  # unused: the scorers' own windows filter (multi_filters)
        output=config.output,
        runtime=config.runtime,
        content=content,
        config={"pipeline": NAME, **to_plain(config)},
        open_sampler=open_sampler,
        open_scorer=lambda device: _open_scorer(config, device),
        plugin_modules=tuple(dict.fromkeys(f.scorer.entry().obj.__module__ for f in config.scorers)),
        open_worker=open_worker,
        write_rows=lambda rows, path: (write_audio_samples if unpaired else write_audio_pairs)(rows, path, labels),
        contact_sheet=audio_sample_sheet if unpaired else audio_contact_sheet,
        finish=_finish(labels, [s.name for s in config.strategies], sample_rate, config.wav_subtype, unpaired),
    )


def _model_rate(path: str) -> int | None:
    import json

    config = Path(path) / "vocoder" / "config.json"
    try:
        return int(json.loads(config.read_text())["sampling_rate"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


@PIPELINES.register(NAME, summary="sample a text-to-audio model (Tango) by Audio-Alpaca strategies (steps, seeds, "
                    "perturbed captions), rank with CLAP or any audio scorer, filter per scorer, write Audio-Alpaca "
                    "pairs (or every clip labelled, for unpaired objectives)", params=TextToAudioPairsConfig)
def run(config: TextToAudioPairsConfig) -> dict[str, Any]:
    """Run the pipeline; returns the summary that is also written to OUTPUT_DIR/summary.json."""
    return run_generation(make_job, config)


__all__ = ["NAME", "AudioShardWorker", "MultiScorer", "StrategyConfig", "TextToAudioPairsConfig", "make_job", "run",
           "write_audio_pairs"]
