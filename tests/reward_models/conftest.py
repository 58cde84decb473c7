"""Tiny random reward models in their official on-disk layouts, each built once per test session."""

from __future__ import annotations

import pytest

from mmpref.reward_models import testing as tiny


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny_reward_models")


@pytest.fixture(scope="session")
def clip_dir(model_dir) -> str:
    return tiny.make_hf_clip(model_dir / "pickscore")


@pytest.fixture(scope="session")
def hps_files(model_dir) -> tuple[str, str]:
    return tiny.make_open_clip_checkpoint(model_dir / "hps")


@pytest.fixture(scope="session")
def aesthetic_file(model_dir) -> str:
    return tiny.make_aesthetic_mlp(model_dir / "aesthetic" / "sac+logos+ava1-l14-linearMSE.pth", input_size=16)


@pytest.fixture(scope="session")
def imagereward_files(model_dir) -> dict:
    return tiny.make_imagereward(model_dir / "imagereward")


@pytest.fixture(scope="session")
def clap_dir(model_dir) -> str:
    return tiny.make_clap(model_dir / "clap")


@pytest.fixture(scope="session")
def owlv2_dir(model_dir) -> str:
    return tiny.make_owlv2(model_dir / "owlv2")


@pytest.fixture(scope="session")
def grounding_dino_dir(model_dir) -> str:
    return tiny.make_grounding_dino(model_dir / "grounding_dino")


@pytest.fixture(scope="session")
def image_specs(clip_dir, hps_files, aesthetic_file, imagereward_files) -> dict[str, dict]:
    """Build specs of every differentiable image scorer, pointing at the tiny files."""
    config, checkpoint = hps_files
    return {
        "pickscore": {"name": "pickscore", "weights": clip_dir},
        "hpsv2.1": {"name": "hpsv2.1", "weights": checkpoint, "model_config": config},
        "clip_score": {"name": "clip_score", "weights": clip_dir},
        "clip_score_open_clip": {"name": "clip_score", "backend": "open_clip", "weights": checkpoint,
                                 "model_config": config},
        "aesthetic": {"name": "aesthetic", "weights": aesthetic_file, "clip_model": clip_dir},
        "imagereward": {"name": "imagereward", **imagereward_files},
        "brightness": {"name": "brightness"},
    }


@pytest.fixture(scope="session")
def scorers(image_specs) -> dict:
    from mmpref.reward_models import build_scorer

    return {key: build_scorer(spec) for key, spec in image_specs.items()}
