"""A reduced `mmpref demo` end to end on the shipped shapes base: a complete report, trained LoRA weights.

The full gain is demonstrated by `mmpref demo` itself (its report.json), not asserted here. The pairs are
ranked by the `brightness` scorer in this test so that a handful of prompts always yields pairs whatever
the shipped base's accuracy (ground-truth scores of 4 samples can all tie); evaluation uses the truth.
"""

from __future__ import annotations

from mmpref.cli import main
from mmpref.config import load_config
from mmpref.config.loader import bundled_configs
from mmpref.testing.checks import check_demo_report, check_lora_trained

REDUCED = [
    "generate.prompts.limit=16", "generate.sampling.samples_per_prompt=2", "generate.sampling.steps=4",
    "generate.scorer.name=brightness", "generate.filters.min_margin=0.0",
    "train.training.max_steps=3", "train.training.batch_size=2", "train.optimizer.lr=1e-3",
    "train.optimizer.warmup_steps=0",
    "eval.limit=4", "eval.seeds_per_prompt=2", "eval.steps=4", "eval.resamples=200", "eval.grid_prompts=4",
]


def test_reduced_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--threads", "1", *REDUCED])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    check_demo_report(out, captured.out)
    html = (out / "report.html").read_text()
    assert "base accuracy" in html and html.count("data:image/png;base64,") >= 1 + 4 * 2
    check_lora_trained(out / "aligned")


def test_reduced_demo_with_unpaired_samples_and_kto(tmp_path, capsys):
    """The demo's stages compose with generate's unpaired output and an unpaired objective."""
    import json

    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--threads", "1", "--train-config", "shapes_kto", *REDUCED,
                 "generate.pairing.strategy=unpaired", "generate.pairing.threshold=0.0"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "[1/3] generate: 32 samples (32 desirable, 0 undesirable) from 16 prompts" in captured.out
    written = json.loads((out / "report.json").read_text())["pairs"]["samples_written"]
    assert written["kept"] == 32 and written["dropped"] == {"duplicate": 0}
    assert json.loads((out / "aligned" / "data_report.json").read_text())["schema"] == "single"
    check_lora_trained(out / "aligned")


def test_train_stage_sets_its_threads_and_restores_them():
    """The train stage takes the cores (capped at the machine's CPUs) and gives them back, also on failure."""
    from pathlib import Path
    from types import SimpleNamespace

    import pytest
    import torch

    from mmpref.demo.run import train_stage
    from mmpref.pipelines.engine import cpu_cores

    seen: list[int] = []

    def fit(config):
        seen.append(torch.get_num_threads())
        if config.fail:
            raise RuntimeError("diverged")
        return {"steps": 1}

    def stage(fail: bool) -> SimpleNamespace:
        config = SimpleNamespace(objective=SimpleNamespace(name="dpo"), training=SimpleNamespace(max_steps=1),
                                 output_dir="out", fail=fail)
        return SimpleNamespace(path=Path("shapes_dpo.yaml"), config=config, entry=SimpleNamespace(obj=fit))

    before = torch.get_num_threads()
    lines: list[str] = []
    try:
        torch.set_num_threads(1)
        seconds: dict[str, float] = {}
        assert train_stage(stage(False), seconds, lines.append, threads=64) == {"steps": 1}
        assert seen == [cpu_cores()] and torch.get_num_threads() == 1 and "train" in seconds
        assert f"torch threads {seen[0]})" in lines[0]
        with pytest.raises(RuntimeError, match="diverged"):
            train_stage(stage(True), {}, lines.append, threads=2)
        assert seen[1] == min(2, cpu_cores()) and torch.get_num_threads() == 1
        train_stage(stage(False), {}, lines.append, threads=None)  # None: as the other stages
        assert seen[2] == 1
    finally:
        torch.set_num_threads(before)


def test_demo_configs_and_override_errors(tmp_path, capsys):
    import mmpref.sandbox.shapes.scorers  # noqa: F401

    for name in ("shapes_demo_generate", "shapes_dpo", "shapes_ipo", "shapes_cdpo", "shapes_rdpo", "shapes_lcpo",
                 "shapes_sympo", "shapes_kto"):
        assert name in bundled_configs()
        first = bundled_configs()[name].read_text().splitlines()[0]
        assert first.startswith("# ") and "hapes" in first
    train = load_config("shapes_dpo", kind="method").config
    generate = load_config("shapes_demo_generate", kind="pipeline").config
    assert train.data.source == generate.output.dir  # `mmpref train shapes_*` reads what the generate step writes
    assert train.model.adapter.params.random_flip is False  # a flip would turn "left of" into "right of"
    code = main(["demo", "training.max_steps=3"])
    assert code == 2 and "STAGE.KEY.PATH=VALUE" in capsys.readouterr().err
    code = main(["demo", "eval.seeds_per_prompt=0"])
    assert code == 2 and "seeds_per_prompt" in capsys.readouterr().err
    # A paired objective on unpaired samples is refused before generate runs (nothing is written), in both worlds.
    for world, generate in (("shapes", "generate.filters.min_margin=0"), ("audio", "generate.scorers.0.min_margin=0")):
        code = main(["demo", "--world", world, "--out", str(tmp_path / world), "generate.pairing.strategy=unpaired",
                     "generate.pairing.threshold=1", generate])
        err = capsys.readouterr().err
        assert code == 2 and "writes labelled single samples (pairing.strategy: unpaired), but" in err
        assert "objective 'dpo' trains on pairs; choose an unpaired objective (train.objective.name=kto" in err
        assert not (tmp_path / world).exists()


def test_shipped_bases_resolve_to_the_installed_copy_when_named_or_missing(tmp_path):
    from mmpref.demo.audio import _resolve_base as resolve_audio
    from mmpref.demo.run import _resolve_base as resolve_shapes
    from mmpref.sandbox.audio_base.base import audio_base_path
    from mmpref.sandbox.shapes.base import shapes_base_path

    assert resolve_shapes("shapes_base") == str(shapes_base_path())
    assert resolve_audio("audio_base") == str(audio_base_path())
    # a repository path that does not exist here (another working directory) still finds the installed copy
    assert resolve_shapes(str(tmp_path / "mmpref/sandbox/assets/shapes_base/")) == str(shapes_base_path())
    assert resolve_audio(str(tmp_path / "mmpref/sandbox/assets/audio_base")) == str(audio_base_path())
    # an existing directory, or any other path, is the user's own and stays as given
    own = tmp_path / "sandbox" / "assets" / "shapes_base"
    own.mkdir(parents=True)
    assert resolve_shapes(str(own)) == str(own)
    assert resolve_audio(str(tmp_path / "my_base")) == str(tmp_path / "my_base")


def test_demo_keeps_an_encoded_pair_cache_inside_its_output(tmp_path):
    """With train.data.cache.enabled and no cache dir, the cache goes to OUT/cache (not the user's home);
    a dir the config names is kept."""
    from mmpref.demo.run import DemoSettings, load_stage_configs

    out = tmp_path / "demo"
    _, train, _ = load_stage_configs(DemoSettings(out=str(out), overrides=["train.data.cache.enabled=true"]))
    assert train.config.data.cache.dir == str(out / "cache")
    named = str(tmp_path / "elsewhere")
    _, train, _ = load_stage_configs(DemoSettings(out=str(out), overrides=[
        "train.data.cache.enabled=true", f"train.data.cache.dir={named}"]))
    assert train.config.data.cache.dir == named
    _, train, _ = load_stage_configs(DemoSettings(out=str(out)))
    assert not train.config.data.cache.enabled and not train.config.data.cache.dir


def test_reduced_demo_in_two_on_policy_rounds(tmp_path, capsys):
    """Round 2 samples round 1's model (its LoRA fused into the base) and the eval measures round 2's LoRA on it."""
    import json

    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--threads", "1", "--rounds", "2", *REDUCED])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = check_demo_report(out, captured.out)
    assert "[round 2/2] generate: round 1's model" in captured.out and "[round 2/2] train: done" in captured.out
    model, aligned = out / "round2" / "model", out / "round2" / "aligned"
    assert [r["round"] for r in report["rounds"]] == [1, 2] and report["rounds"][1]["aligned"] == str(aligned)
    assert json.loads((model / "mmpref_fused.json").read_text())["lora"] == str(out / "aligned")
    assert (model / "model_index.json").is_file()
    evaluated = report["eval"]["models"][1]
    assert (evaluated["path"], evaluated["base"]) == (str(aligned), str(model))  # base from round 2's config.yaml
    check_lora_trained(aligned)
