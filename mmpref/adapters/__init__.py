"""Modality adapters: turn a batch into per-sample log-likelihood estimates for policy and reference."""
from mmpref.adapters import text_to_audio, text_to_image  # noqa: F401
