"""The model-free stages of `mmpref generate`: seeds, prompt sources, pairing, filters, shard bookkeeping."""

from __future__ import annotations

import json
import math

import pytest

from mmpref.errors import ConfigError, DataError
from mmpref.pipelines.engine import assign_shards, plan_shards
from mmpref.pipelines.filters import FILTERS, FiltersConfig, filter_pairs
from mmpref.pipelines.pairing import PairingConfig, form_pairs
from mmpref.pipelines.prompts import PromptsConfig, load_prompts, resolve_transform
from mmpref.pipelines.seeds import derive_seed
from mmpref.pipelines.shards import RunDirectory


def test_seeds_depend_only_on_the_three_integers():
    seeds = {derive_seed(g, p, s) for g in range(3) for p in range(20) for s in range(4)}
    assert len(seeds) == 3 * 20 * 4, "no collisions between (global, prompt, sample)"
    assert derive_seed(0, 5, 1) == derive_seed(0, 5, 1)
    assert all(0 <= s < 2**63 for s in seeds), "fits int64 columns and torch.Generator.manual_seed"
    assert derive_seed(0, 1, 0) != derive_seed(0, 0, 1)


def test_prompt_file_keeps_row_indices_and_reports_every_skipped_row(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a cat\n\n  a dog  \na cat\n   \na bird\n")
    got = load_prompts(PromptsConfig(source=str(path)))
    assert [(p.index, p.text) for p in got.prompts] == [(0, "a cat"), (2, "a dog"), (5, "a bird")]
    assert got.skipped == [{"index": 1, "reason": "empty prompt"}, {"index": 3, "reason": "duplicate of row 0"},
                           {"index": 4, "reason": "empty prompt"}]
    limited = load_prompts(PromptsConfig(source=str(path), limit=2, dedup=False))
    assert [p.text for p in limited.prompts] == ["a cat", "a dog"]
    assert limited.digest != got.digest


def test_dataset_column_prompts_and_clear_errors(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "prompts.parquet"
    pq.write_table(pa.table({"caption": ["red cube", None, "blue ball"], "id": [1, 2, 3]}), path)
    got = load_prompts(PromptsConfig(source=str(path), column="caption"))
    assert [(p.index, p.text) for p in got.prompts] == [(0, "red cube"), (2, "blue ball")]
    assert got.skipped == [{"index": 1, "reason": "not text (NoneType)"}]
    folder = tmp_path / "folder"
    folder.mkdir()
    pq.write_table(pa.table({"prompt": ["a", "b"]}), folder / "part-0.parquet")
    assert [p.text for p in load_prompts(PromptsConfig(source=str(folder))).prompts] == ["a", "b"]
    with pytest.raises(DataError, match="cannot load 'no-such-user/no-such-prompts'"):
        load_prompts(PromptsConfig(source="no-such-user/no-such-prompts"))
    with pytest.raises(DataError, match="has no column 'captoin'. Did you mean 'caption'"):
        load_prompts(PromptsConfig(source=str(path), column="captoin"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_prompts(PromptsConfig(source=str(tmp_path / "missing.txt")))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="no usable prompt"):
        load_prompts(PromptsConfig(source=str(empty)))


def test_builtin_sets_and_transform_resolution():
    objects = load_prompts(PromptsConfig(source="builtin:objects"))
    assert len(objects.prompts) == 80 and len({p.text for p in objects.prompts}) == 80
    with pytest.raises(ValueError, match="Did you mean 'objects'"):
        PromptsConfig(source="builtin:object").check()
    assert resolve_transform(None) is None
    assert resolve_transform("test_generate_support:shout_odd_samples")("a b", 0, 1, 0) == "A B"
    with pytest.raises(ConfigError, match="unknown transform"):
        resolve_transform("shout")
    with pytest.raises(ConfigError, match="cannot import"):
        resolve_transform("no_such_module_xyz:fn")


def test_best_vs_worst_breaks_ties_by_sample_index():
    pairs = form_pairs([0.2, 0.9, 0.1, 0.9], PairingConfig("best_vs_worst"))
    assert [(c.chosen, c.rejected) for c in pairs] == [(1, 2)]
    assert pairs[0].margin == pytest.approx(0.8) and pairs[0].target == 1.0
    assert form_pairs([0.5], PairingConfig()) == []


def test_all_pairs_and_ranked_soft_targets():
    scores = [0.0, 2.0, 1.0]
    all_pairs = form_pairs(scores, PairingConfig("all_pairs"))
    assert [(c.chosen, c.rejected) for c in all_pairs] == [(1, 2), (1, 0), (2, 0)]
    assert all(scores[c.chosen] - scores[c.rejected] == c.margin >= 0 for c in all_pairs)
    ranked = form_pairs(scores, PairingConfig("ranked", temperature=0.5))
    assert [(c.chosen, c.rejected) for c in ranked] == [(1, 2), (1, 0), (2, 0)]
    assert [c.target for c in ranked] == pytest.approx([1 / (1 + math.exp(-m / 0.5)) for m in (1.0, 2.0, 1.0)])


def test_filters_count_each_drop_once_in_order():
    scores = [5.0, 3.0, 4.0, 1.0, 4.0]
    hashes = ["a", "b", "c", "d", "c"]  # samples 2 and 4 are the same image (so the same score)
    cands = form_pairs(scores, PairingConfig("all_pairs"))
    assert len(cands) == 10
    kept, dropped = filter_pairs(cands, scores, hashes, FiltersConfig())
    assert dropped == {**dict.fromkeys(FILTERS, 0), "tie": 1, "duplicate": 3}  # 2~4; (4,x) repeats (2,x)
    pairs = [(hashes[c.chosen], hashes[c.rejected]) for c in kept]
    assert len(kept) == 6 and len(pairs) == len(set(pairs))
    config = FiltersConfig(min_margin=1.5, max_margin=3.5, min_winner_score=4.5, dedup=False)
    kept, dropped = filter_pairs(cands, scores, hashes, config)
    assert len(kept) + sum(dropped.values()) == len(cands)
    # gaps: (0,2) 1, (0,4) 1, (0,1) 2, (0,3) 4, (2,4) 0, (2,1) 1, (2,3) 3, (4,1) 1, (4,3) 3, (1,3) 2
    assert dropped == {**dict.fromkeys(FILTERS, 0), "tie": 1, "min_margin": 4, "max_margin": 1, "min_winner_score": 3}
    assert [(c.chosen, c.rejected) for c in kept] == [(0, 1)]
    assert all(config.min_margin <= c.margin <= config.max_margin and scores[c.chosen] >= 4.5 for c in kept)
    kept, dropped = filter_pairs(cands, scores, hashes, FiltersConfig(min_loser_score=2.0))
    assert all(scores[c.rejected] >= 2.0 for c in kept) and dropped["min_loser_score"] == 4  # every pair vs sample 3


def test_shard_plan_covers_every_prompt_once_and_split_has_no_overlap():
    shards = plan_shards(10, 3)
    assert [list(r) for r in shards] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    for world in (1, 2, 3, 5):
        parts = [assign_shards(len(shards), r, world) for r in range(world)]
        flat = sorted(k for part in parts for k in part)
        assert flat == list(range(len(shards)))


def test_run_directory_refuses_a_different_run_and_ignores_torn_shards(tmp_path):
    rundir = RunDirectory(tmp_path / "out", total_shards=2)
    content = {"model": {"path": "m"}, "sampling": {"steps": 2}}
    other = {"model": {"path": "m"}, "sampling": {"steps": 3}}
    assert rundir.start("p", content) is False
    assert rundir.start("p", content) is True
    assert rundir.start("p", other) is False, "no shard written yet: a changed config simply restarts"
    assert rundir.start("p", content) is False
    # a record whose parquet is missing or of another size is not a complete shard
    rundir.write_record(0, {"bytes": 10, "rows": 0})
    assert rundir.complete_shards() == []
    rundir.shard_file(0).parent.mkdir(parents=True)
    rundir.shard_file(0).write_bytes(b"x" * 10)
    assert RunDirectory(tmp_path / "out", 2).complete_shards() == [0]
    with pytest.raises(ConfigError, match=r"differs in: sampling.steps\). Use a new output.dir"):
        RunDirectory(tmp_path / "out", 2).start("p", other)
    (rundir.data_dir / ".train-00001-of-00002.parquet.tmp-123").write_bytes(b"partial")
    assert rundir.clean_temporaries() == 1
    assert json.loads(rundir.manifest_path.read_text())["fingerprint"]


def test_generate_configs_refuse_order_dependent_scorers(tmp_path):
    from mmpref.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("pipeline: text_to_image_pairs\nmodel: {path: m}\nprompts: {source: 'builtin:objects'}\n"
                    "scorer: {name: composite, members: [{name: brightness}], standardize: running}\n"
                    "output: {dir: out}\n")
    with pytest.raises(ConfigError, match="scorer.standardize: running statistics"):
        load_config(str(path), kind="pipeline")
    run = load_config(str(path), ["scorer.standardize=none"], kind="pipeline")
    assert run.config.scorer.name == "composite"
