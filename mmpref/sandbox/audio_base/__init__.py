"""The audio world's Tango-shaped base model: architecture builders, loader, sampling and accuracy.

Built by `scripts/train_audio_base.py`; see `architecture.py` for the components and sizes.
"""

from mmpref.sandbox.audio_base.base import (
    DEFAULT_SAMPLER,
    audio_base_info,
    audio_base_path,
    load_audio_base,
)
from mmpref.sandbox.audio_base.evaluate import accuracy_by_form, generate

__all__ = [
    "DEFAULT_SAMPLER",
    "accuracy_by_form",
    "audio_base_info",
    "audio_base_path",
    "generate",
    "load_audio_base",
]
