"""Reward models and detectors as swappable, batched scorers, installed as mmpref.reward_models.

`build_scorer("pickscore")` or `build_scorer({"name": "hpsv2.1", "weights": "/path/HPS_v2.1_compressed.pt"})`
returns a `Scorer`: `score(images, prompts)` for inference, `score_pixels(pixels, prompts)` for
reward-guided training. Each scorer is one module below that registers itself in REWARD_MODELS;
transformers and open_clip are imported only when a scorer is built.
"""

from .base import Scorer, ScorerParams
from .build import build_scorer, resolve_dtype
from .detection import Detection, object_agreement
from .phrases import ObjectPhrase, parse_objects
from .procedural import procedural_scorer, register_procedural

# Registration: one import line per scorer module.
from . import pickscore  # noqa: E402,F401  isort: skip
from . import hps  # noqa: E402,F401  isort: skip
from . import clip_score  # noqa: E402,F401  isort: skip
from . import aesthetic  # noqa: E402,F401  isort: skip
from . import imagereward  # noqa: E402,F401  isort: skip
from . import clap  # noqa: E402,F401  isort: skip
from . import owlv2  # noqa: E402,F401  isort: skip
from . import grounding_dino  # noqa: E402,F401  isort: skip
from . import composite  # noqa: E402,F401  isort: skip
from mmpref.sandbox.audio import scorers as _audio_world_scorers  # noqa: E402,F401  isort: skip
from mmpref.sandbox.shapes import scorers as _shapes_world_scorers  # noqa: E402,F401  isort: skip

__all__ = [
    "Detection",
    "ObjectPhrase",
    "Scorer",
    "ScorerParams",
    "build_scorer",
    "object_agreement",
    "parse_objects",
    "procedural_scorer",
    "register_procedural",
    "resolve_dtype",
]
