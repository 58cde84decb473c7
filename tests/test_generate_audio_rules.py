"""Audio pair generation without a model: caption perturbation rules, the per-scorer (two-CLAP) filter, the
strategy plan and the config checks of `text_to_audio_pairs`."""

from __future__ import annotations

import pytest
import yaml

from mmpref.config import load_config
from mmpref.errors import ConfigError
from mmpref.pipelines.multi_filters import ScorerFilter, filter_multi, filter_names
from mmpref.pipelines.pairing import Candidate
from mmpref.pipelines.perturbation import (
    DEFAULT_EVENTS,
    PERTURBERS,
    RulePerturber,
    event_edits,
    parse_caption,
    register_perturber,
    resolve_perturber,
    temporal_edits,
)
from mmpref.pipelines.seeds import derive_seed
from mmpref.sandbox.audio.grammar import EventGroup, parse_prompt

SEQUENTIAL_CASES = [  # caption, its events in time order
    ("A dog barks followed by a man speaking", ["a dog barks", "a man speaking"]),
    ("A dog barks then a man speaks", ["a dog barks", "a man speaks"]),
    ("A dog barks, and then a man speaks.", ["a dog barks", "a man speaks"]),
    ("A dog barks before a man speaks", ["a dog barks", "a man speaks"]),
    ("A dog barks after a man speaks", ["a man speaks", "a dog barks"]),  # "A after B": B sounds first
]


@pytest.mark.parametrize("caption, order", SEQUENTIAL_CASES)
def test_reorder_reverses_the_events_of_every_sequential_connective(caption, order):
    parsed = parse_caption(caption)
    assert parsed.temporal_order() == order
    edits = temporal_edits(caption)
    reordered = edits[0]  # clause swaps come first
    again = parse_caption(reordered)
    assert again.joiners == parsed.joiners, "the connective is kept; the clauses swap"
    assert again.temporal_order() == order[::-1]
    assert reordered[0].isupper() and reordered != caption
    assert any(parse_caption(e).joiners == ("while",) for e in edits), "a sequence can also become an overlap"


def test_after_semantics_and_while():
    assert temporal_edits("A dog barks after a bell rings")[0] == "A bell rings after a dog barks"
    assert parse_caption("A bell rings after a dog barks").temporal_order() == ["a dog barks", "a bell rings"]
    edits = temporal_edits("Rain falls while thunder rumbles")
    assert edits == ["Rain falls followed by thunder rumbles", "Rain falls after thunder rumbles"]
    assert temporal_edits("A man speaks and a crowd cheers") == [], "no temporal connective, no temporal edit"
    assert temporal_edits("Birds chirp") == []
    three = parse_caption("Rain falls while thunder rumbles, then a door slams")
    assert three.clauses == ("rain falls", "thunder rumbles", "a door slams") and three.joiners == ("while", "then")


def test_event_edits_drop_and_swap():
    edits = event_edits("A dog barks followed by a man speaking", events=("a bell rings", "a dog barks"))
    assert edits == ["A man speaking", "A dog barks",  # each event dropped
                     "A bell rings followed by a man speaking",  # each event swapped for one not in the caption
                     "A dog barks followed by a bell rings"]
    single = event_edits("Birds chirp")
    assert len(single) == len(DEFAULT_EVENTS) - 1 and "Birds chirp" not in single, "one event: swaps only (not itself)"
    assert event_edits("A man speaks and a crowd cheers", events=("rain falls",))[:2] == ["A crowd cheers", "A man speaks"]


def test_audio_world_prompts_are_edited_in_their_grammar():
    prompt = "two clicks after a rising chirp"
    (reordered,) = temporal_edits(prompt)
    assert parse_prompt(reordered).groups == parse_prompt(prompt).groups[::-1]
    edits = [parse_prompt(e) for e in event_edits(prompt)]
    original = parse_prompt(prompt)
    drops = [e for e in edits if len(e.groups) == 1]
    assert {d.groups[0] for d in drops} == set(original.groups)
    swaps = [e for e in edits if len(e.groups) == 2 and [g.count for g in e.groups] == [1, 2]]
    assert len(swaps) == 8 and all(sum(a != b for a, b in zip(e.groups, original.groups)) == 1 for e in swaps)
    fewer = [e for e in edits if [g.count for g in e.groups] == [1, 1]]
    assert [e.groups for e in fewer] == [(original.groups[0], EventGroup("click", 1))], "one click dropped of two"
    assert len(edits) == len(drops) + len(swaps) + len(fewer) and len(set(edits)) == len(edits)
    assert all(not e.same_scene(original) for e in edits)
    counts = [parse_prompt(e).groups for e in event_edits("three noise bursts")]
    assert (EventGroup("noise burst", 2),) in counts and (EventGroup("noise burst", 1),) not in counts
    assert event_edits("a click") and all(parse_prompt(e).groups[0].count == 1 for e in event_edits("a click"))


def test_rule_perturber_is_deterministic_distinct_and_prefers_reordering():
    perturb = RulePerturber()
    caption = "A dog barks before a bell rings, then a door slams"
    first = perturb(caption, "event", 3, seed=11)
    assert first == perturb(caption, "event", 3, seed=11) and len(set(first)) == 3 and caption not in first
    assert perturb(caption, "event", 3, seed=12) != first
    reorders = perturb(caption, "temporal", 2, seed=5)
    assert all(sorted(parse_caption(r).clauses) == sorted(parse_caption(caption).clauses) for r in reorders)
    assert all(parse_caption(r).joiners == ("before", "then") for r in reorders), "swaps before connective changes"
    assert perturb("Birds chirp", "temporal", 3, seed=0) == []


def test_perturbers_are_pluggable(monkeypatch):
    monkeypatch.setattr("mmpref.pipelines.perturbation.PERTURBERS", dict(PERTURBERS))

    @register_perturber("test_shout")
    def shout(options):
        return lambda caption, kind, count, seed: [f"{caption.upper()} {options.get('suffix', '')}".strip()][:count]

    assert resolve_perturber("test_shout")({"suffix": "!"})("a b", "event", 1, 0) == ["A B !"]
    assert resolve_perturber("mmpref.pipelines.perturbation:rules")({})("Birds chirp", "event", 1, 0)
    with pytest.raises(ConfigError, match="unknown perturber 'rulez'.*rules"):
        resolve_perturber("rulez")
    with pytest.raises(ConfigError, match="only `events`"):
        resolve_perturber("rules")({"temperature": 1.0})


# ---- Tango 2's two-model filter ----------------------------------------------------------------------------
TANGO2 = [ScorerFilter(label="clap1", min_winner=0.45, min_loser=0.40, min_margin=0.05, max_margin=0.35),
          ScorerFilter(label="clap2", min_winner=0.60, min_margin=0.08, max_margin=0.70)]
CASES = [  # (winner, loser) under clap1 and under clap2 -> the check that drops the pair (None: kept)
    (((0.60, 0.45), (0.70, 0.50)), None),
    (((0.45, 0.40), (0.60, 0.52)), None),  # exactly on every boundary: kept
    (((0.50, 0.50), (0.70, 0.50)), "clap1.order"),
    (((0.47, 0.43), (0.70, 0.50)), "clap1.min_margin"),
    (((0.80, 0.44), (0.70, 0.50)), "clap1.max_margin"),
    (((0.44, 0.30), (0.70, 0.50)), "clap1.min_winner"),
    (((0.50, 0.39), (0.70, 0.50)), "clap1.min_loser"),
    (((0.60, 0.45), (0.50, 0.55)), "clap2.order"),
    (((0.60, 0.45), (0.70, 0.65)), "clap2.min_margin"),
    (((0.60, 0.45), (0.90, 0.10)), "clap2.max_margin"),
    (((0.60, 0.45), (0.59, 0.40)), "clap2.min_winner"),
    (((0.60, 0.45), (0.70, 0.05)), None),  # model 2 has no loser floor
]


def test_two_model_filter_drops_exactly_the_pairs_outside_the_windows():
    scores, candidates = [], []
    for (c1, c2), _ in CASES:
        base = len(scores)
        scores += [{"clap1": c1[0], "clap2": c2[0]}, {"clap1": c1[1], "clap2": c2[1]}]
        candidates.append(Candidate(base, base + 1, c1[0] - c1[1], 1.0))
    hashes = [str(i) for i in range(len(scores))]
    kept, dropped = filter_multi(candidates, scores, hashes, TANGO2)
    expected_kept = [c for c, (_, why) in zip(candidates, CASES) if why is None]
    assert kept == expected_kept
    assert list(dropped) == filter_names(TANGO2)
    for name, count in dropped.items():
        assert count == sum(1 for _, why in CASES if why == name), name
    assert sum(dropped.values()) + len(kept) == len(candidates)
    # the same clips twice: the repeat is a duplicate; identical clips never pair
    kept2, dropped2 = filter_multi([candidates[0], candidates[0]], scores, ["a"] * 2 + hashes[2:], TANGO2)
    assert kept2 == [] and dropped2["duplicate"] == 2
    kept3, _ = filter_multi([candidates[0], candidates[0]], scores, hashes, TANGO2, dedup=False)
    assert len(kept3) == 2


# ---- config and plan ---------------------------------------------------------------------------------------
def _config(tmp_path, **sections):
    config = {"pipeline": "text_to_audio_pairs", "model": {"path": str(tmp_path / "model")},
              "prompts": {"source": "builtin:audio_world"},
              "strategies": [{"name": "1.1", "samples": 2, "steps": [5, 25]},
                             {"name": "2", "samples": 1, "perturb": "event", "perturbed": 2},
                             {"name": "3", "samples": 1, "perturb": "temporal", "perturbed": 1}],
              "scorers": [{"label": "truth", "scorer": "audio_truth"}],
              "output": {"dir": str(tmp_path / "out")}, **sections}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return load_config(str(path), kind="pipeline").config


def _worker(config):
    from mmpref.pipelines.perturbation import RulePerturber
    from mmpref.pipelines.text_to_audio import AudioShardWorker, MultiScorer

    return AudioShardWorker(object(), MultiScorer(config.scorers, [None] * len(config.scorers)), config, RulePerturber())


def test_plan_all_and_cycle(tmp_path):
    from mmpref.pipelines.prompts import Prompt

    worker = _worker(_config(tmp_path))
    sequence, single = Prompt(40, "a low beep followed by two clicks"), Prompt(3, "a noise burst")
    clips, skipped = worker.plan(sequence)
    assert skipped == []
    assert [c.request.sample_index for c in clips] == list(range(7))
    assert [c.request.seed for c in clips] == [derive_seed(0, 40, i) for i in range(7)]
    assert [(c.strategy, c.role, c.request.steps) for c in clips] == [
        (0, "original", 5), (0, "original", 25), (1, "original", 100), (1, "perturbed", 100), (1, "perturbed", 100),
        (2, "original", 100), (2, "perturbed", 100)]
    assert clips[-1].request.condition == "two clicks followed by a low beep"
    assert all(c.request.prompt == sequence.text for c in clips), "every clip is scored against the original"
    clips, skipped = worker.plan(single)
    assert {c.strategy for c in clips} == {0, 1}, "no temporal perturbation of a single sound"
    assert skipped == [{"index": 3, "strategy": "3", "reason": "no temporal perturbation of this caption"}]

    cycle = _worker(_config(tmp_path, assign="cycle", strategies=[
        {"name": "1.2", "samples": 2, "shared_seed": True}, {"name": "3", "samples": 1, "perturb": "temporal",
                                                           "perturbed": 1}]))
    clips, _ = cycle.plan(Prompt(5, sequence.text))
    assert {c.strategy for c in clips} == {1}, "row 5 of 2 strategies -> strategy 1"
    clips, _ = cycle.plan(Prompt(4, sequence.text))
    assert {c.strategy for c in clips} == {0} and clips[0].request.seed == clips[1].request.seed  # shared seed
    clips, _ = cycle.plan(Prompt(3, single.text))
    assert {c.strategy for c in clips} == {0}, "strategy 3 does not apply: the next one is used"


@pytest.mark.parametrize("change, message", [
    ({"scorers": [{"label": "clap 1", "scorer": "audio_truth"}]}, "must be an identifier"),
    ({"scorers": [{"label": "a", "scorer": "audio_truth"}, {"label": "a", "scorer": "audio_event_detector"}]},
     "labels must be unique"),
    ({"strategies": [{"name": "2", "samples": 1, "perturb": "event"}]}, "needs perturbed >= 1"),
    ({"strategies": [{"name": "1.2", "samples": 1}]}, "at least 2"),
    ({"scorers": [{"label": "a", "scorer": "audio_truth", "min_margin": 0.3, "max_margin": 0.1}]},
     "max_margin must be >= min_margin"),
])
def test_config_errors(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, **change)


def test_wav_encoding_default_and_lossless():
    import io

    import numpy as np
    import soundfile as sf

    from mmpref.pipelines.audio_sampler import encode_wav
    from mmpref.pipelines.writer import ENCODERS

    wave = (0.5 * np.sin(np.linspace(0, 200, 2048))).astype(np.float32)
    data = encode_wav(wave)
    assert data == encode_wav(wave) and ENCODERS["audio"] is encode_wav
    info = sf.info(io.BytesIO(data))
    assert (info.samplerate, info.frames, info.subtype) == (16000, 2048, "PCM_16")
    lossless = encode_wav(wave, 16000, "FLOAT")
    back, _ = sf.read(io.BytesIO(lossless), dtype="float32")
    assert np.array_equal(back, wave)
    assert b"PEAK" not in lossless, "libsndfile's timestamped PEAK chunk would make the bytes differ run to run"


def test_bundled_tango2_config_has_audio_alpacas_strategies_and_filter():
    config = load_config("generate_tango2_clap", kind="pipeline").config
    windows = [(f.label, f.min_winner, f.min_loser, f.min_margin, f.max_margin, f.require_order) for f in config.scorers]
    assert windows == [("clap1", 0.45, 0.40, 0.05, 0.35, True), ("clap2", 0.60, None, 0.08, 0.70, True)]
    assert all(f.scorer.name == "clap" and f.scorer.params.scaled is False for f in config.scorers)
    plan = [(s.name, s.samples, s.steps, s.perturb, s.perturbed) for s in config.strategies]
    assert plan == [("1.1", 4, [5, 25, 50, 100], "none", 0), ("1.2", 4, [50], "none", 0),
                    ("2", 1, [50], "event", 3), ("3", 1, [50], "temporal", 3)]
    assert config.sampling.audio_length_in_s == 10.24 and config.assign == "cycle"
