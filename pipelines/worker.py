"""One shard, end to end: sample -> score -> pair -> filter -> write, with every failure recorded.

Requests go to the sampler in batches across prompts (prompt-major order, so batch composition is a
function of the shard alone and a re-run reproduces it bit for bit); each batch is scored in one
scorer call; a prompt is paired as soon as all its samples are in, and only the chosen and rejected
samples are encoded. With pairing.strategy: unpaired a prompt's scored samples become labelled single
rows instead (deduplicated, every one encoded).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from mmpref.errors import UserError
from mmpref.pipelines.filters import FILTERS, SAMPLE_FILTERS, FiltersConfig, dedup_samples, filter_pairs
from mmpref.pipelines.pairing import PairingConfig, form_pairs, label_samples
from mmpref.pipelines.prompts import Prompt, PromptTransform
from mmpref.pipelines.sampling import Sampler, SampleRequest
from mmpref.pipelines.scoring import score_samples, scorer_label
from mmpref.pipelines.seeds import derive_seed
from mmpref.pipelines.writer import ENCODERS, sample_hash


class SampledItem(Protocol):
    """A request in flight with the slots `sample_and_record` fills in (a shard's sample, an audio clip)."""

    request: SampleRequest
    sample: Any
    hash: str
    error: str | None
    stage: str | None


ItemT = TypeVar("ItemT", bound=SampledItem)


def sample_and_record(sampler: Sampler, items: Sequence[ItemT]) -> list[ItemT]:
    """Sample the items' requests in one sampler call and record each outcome on its item (the sample and its
    hash, or the sampler's reason at stage "sample"); returns the items that got a sample, the ones to score."""
    results = sampler.sample([item.request for item in items])
    if len(results) != len(items):
        raise RuntimeError(f"sampler returned {len(results)} results for {len(items)} requests")
    good = []
    for item, res in zip(items, results):
        if res.ok:
            item.sample, item.hash = res.sample, sample_hash(res.sample)
            if res.latents is not None:
                item.latents = res.latents
            good.append(item)
        else:
            item.error, item.stage = res.error, "sample"
    return good


@dataclass
class _Entry:
    """One sample of a prompt while the shard is in flight."""

    request: SampleRequest
    sample: Any = None
    score: float | None = None
    hash: str = ""
    error: str | None = None
    stage: str | None = None  # transform, sample or score, when it failed

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prompt_index": self.request.prompt_index, "sample_index": self.request.sample_index,
                               "seed": self.request.seed, "score": self.score}
        if self.request.condition != self.request.prompt:
            out["condition"] = self.request.condition
        if self.error is not None:
            out.update(stage=self.stage, reason=self.error)
        return out


@dataclass
class ShardResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    candidates: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FILTERS, 0))
    unpaired: list[dict[str, Any]] = field(default_factory=list)  # prompts that gave no row, and why

    def count_drops(self, dropped: dict[str, int]) -> None:
        """Add one prompt's drop counts to the shard's."""
        for name, count in dropped.items():
            self.dropped[name] = self.dropped.get(name, 0) + count

    def raise_if_all_failed(self, prompts: Sequence[Prompt], noun: str, culprits: str) -> None:
        """Stop the run when not one sample of the shard succeeded: that is a systematic fault, not one bad
        sample. `noun` is what a sample is called ("sample", "clip"), `culprits` what to fix."""
        if self.samples and all(s.get("reason") for s in self.samples):
            reasons = sorted({s["reason"] for s in self.samples})
            raise UserError(f"every {noun} of prompts {prompts[0].index}..{prompts[-1].index} failed "
                            f"({len(self.samples)} {noun}s), e.g. {reasons[0]!r}; fix {culprits} and re-run "
                            "(complete shards are kept).")


class ShardWorker:
    """Holds the loaded sampler and scorer and turns a list of prompts into rows (pairs, or labelled samples)."""

    def __init__(self, sampler: Sampler, scorer: Any, *, samples_per_prompt: int, seed: int, batch_size: int,
                 pairing: PairingConfig, filters: FiltersConfig, transform: PromptTransform | None = None) -> None:
        self.sampler = sampler
        self.scorer = scorer
        self.samples_per_prompt = samples_per_prompt
        self.seed = seed
        self.batch_size = batch_size
        self.pairing = pairing
        self.filters = filters
        self.transform = transform
        scorer_modality = getattr(scorer, "modality", sampler.modality)
        if scorer_modality != sampler.modality:
            raise UserError(f"scorer: '{getattr(scorer, 'name', scorer)}' scores {scorer_modality} but this pipeline "
                            f"samples {sampler.modality}; choose a{'n' if sampler.modality[0] in 'aeiou' else ''} "
                            f"{sampler.modality} scorer (`mmpref list`).")
        self.encode = ENCODERS[sampler.modality]
        self.scorer_name = scorer_label(scorer)

    def _entries(self, prompt: Prompt) -> list[_Entry]:
        entries = []
        for s in range(self.samples_per_prompt):
            seed = derive_seed(self.seed, prompt.index, s)
            condition, error = prompt.text, None
            if self.transform is not None:
                try:
                    condition = str(self.transform(prompt.text, prompt.index, s, seed))
                except Exception as err:  # noqa: BLE001 - recorded per sample
                    error = f"prompt transform error: {type(err).__name__}: {err}"
            entry = _Entry(SampleRequest(prompt.index, s, seed, prompt.text, condition))
            if error:
                entry.error, entry.stage = error, "transform"
            entries.append(entry)
        return entries

    def run(self, prompts: Sequence[Prompt], on_prompt_done: Callable[[int], None] | None = None) -> ShardResult:
        """Rows and per-sample records for `prompts`; raises if not one sample succeeded."""
        groups = [self._entries(p) for p in prompts]
        todo = [(g, e) for g, entries in enumerate(groups) for e in entries if e.error is None]
        remaining = [sum(e.error is None for e in entries) for entries in groups]
        result = ShardResult(dropped=dict.fromkeys(SAMPLE_FILTERS if self.pairing.unpaired else FILTERS, 0))
        next_group = 0
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            self._sample_and_score([e for _, e in batch])
            for g, _ in batch:
                remaining[g] -= 1
            while next_group < len(groups) and remaining[next_group] == 0:
                self._pair(prompts[next_group], groups[next_group], result)
                groups[next_group] = []  # free the samples
                next_group += 1
                if on_prompt_done:
                    on_prompt_done(1)
        while next_group < len(groups):  # prompts whose every sample failed before sampling
            self._pair(prompts[next_group], groups[next_group], result)
            next_group += 1
            if on_prompt_done:
                on_prompt_done(1)
        result.raise_if_all_failed(prompts, "sample", "the model, scorer or transform")
        return result

    def _sample_and_score(self, entries: list[_Entry]) -> None:
        good = sample_and_record(self.sampler, entries)
        scores = score_samples(self.scorer, [e.sample for e in good], [e.request.prompt for e in good])
        for entry, score in zip(good, scores):
            if isinstance(score, str):
                entry.error, entry.stage, entry.sample = score, "score", None
            else:
                entry.score = score

    def _pair(self, prompt: Prompt, entries: list[_Entry], result: ShardResult) -> None:
        """Record a finished prompt's samples and turn its scored ones into rows."""
        result.samples.extend(e.record() for e in entries)
        scored = [e for e in entries if e.score is not None]
        if self.pairing.unpaired:
            self._single_rows(prompt, entries, scored, result)
        else:
            self._pair_rows(prompt, entries, scored, result)

    def _single_rows(self, prompt: Prompt, entries: list[_Entry], scored: list[_Entry], result: ShardResult) -> None:
        """One labelled row per distinct scored sample: the candidates are the scored samples, so the summary's
        scored == kept + dropped."""
        kept, dropped = dedup_samples([e.hash for e in scored], self.filters.dedup)
        labels = label_samples([float(e.score) for e in scored], self.pairing)  # type: ignore[arg-type]
        result.candidates += len(scored)
        result.count_drops(dropped)
        if not kept:
            result.unpaired.append({"index": prompt.index, "reason": f"only 0 of {len(entries)} samples scored"})
        for position in kept:
            entry = scored[position]
            result.rows.append({
                "prompt": prompt.text,
                "image": self.encode(entry.sample),
                "label": labels[position],
                "score": entry.score,
                "seed": entry.request.seed,
                "sample_index": entry.request.sample_index,
                "prompt_index": prompt.index,
                "scorer": self.scorer_name,
                "strategy": self.pairing.strategy,
            })

    def _pair_rows(self, prompt: Prompt, entries: list[_Entry], scored: list[_Entry], result: ShardResult) -> None:
        """The prompt's pairs that pass the filters (or why none did)."""
        scores = [float(e.score) for e in scored]  # type: ignore[arg-type]
        candidates = form_pairs(scores, self.pairing)
        kept, dropped = filter_pairs(candidates, scores, [e.hash for e in scored], self.filters)
        result.candidates += len(candidates)
        result.count_drops(dropped)
        if not kept:
            why = (f"only {len(scored)} of {len(entries)} samples scored" if len(scored) < 2 else
                   "every candidate pair was dropped: " + ", ".join(f"{n} {k}" for k, n in dropped.items() if n))
            result.unpaired.append({"index": prompt.index, "reason": why})
        for cand in kept:
            win, lose = scored[cand.chosen], scored[cand.rejected]
            result.rows.append({
                "prompt": prompt.text,
                "chosen": self.encode(win.sample),
                "rejected": self.encode(lose.sample),
                "chosen_score": win.score,
                "rejected_score": lose.score,
                "margin": cand.margin,
                "target": cand.target,
                "chosen_seed": win.request.seed,
                "rejected_seed": lose.request.seed,
                "chosen_sample_index": win.request.sample_index,
                "rejected_sample_index": lose.request.sample_index,
                "prompt_index": prompt.index,
                "scorer": self.scorer_name,
                "strategy": self.pairing.strategy,
            })
