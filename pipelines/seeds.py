"""Per-sample seeds that depend only on (global seed, prompt index, sample index).

A sample's seed must not depend on batch size, process count or which shard ran first, so that a
resumed or distributed run draws the same noise and any single sample can be regenerated alone.
"""

from __future__ import annotations

import hashlib

SEED_BITS = 63
"""Seeds fit a signed int64 parquet column and `torch.Generator.manual_seed`."""


def derive_seed(global_seed: int, prompt_index: int, sample_index: int) -> int:
    """A well-mixed 63-bit seed for one sample (BLAKE2b of the three integers)."""
    key = f"mmpref-sample-seed:{int(global_seed)}:{int(prompt_index)}:{int(sample_index)}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "little") >> (64 - SEED_BITS)
