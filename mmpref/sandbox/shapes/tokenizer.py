"""A tiny CLIP BPE vocabulary in which every word of the shapes grammar is one token.

The merges are learnt by plain BPE on the grammar's words, so stock `CLIPTokenizer` reproduces one token
per word; single letters stay in the vocabulary so any other lower-case word still tokenizes (into
letters) instead of failing.
"""

from __future__ import annotations

import json
import string
from collections import Counter
from pathlib import Path

from mmpref.sandbox.shapes.grammar import COLORS, COUNT_WORDS, RELATIONS, SHAPES

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 16  # tokens, with BOS and EOS; the longest grammar sentence has 10


def grammar_words() -> list[str]:
    """Every word the grammar (and its parser's aliases) can produce, sorted."""
    words = {"an", "one", "to", "the", *COUNT_WORDS.values(), *COLORS}
    words |= set(SHAPES) | {f"{s}s" for s in SHAPES}
    for relation in RELATIONS:
        words |= set(relation.split())
    return sorted(words)


def learn_merges(words: list[str]) -> list[tuple[str, str]]:
    """BPE merges, most frequent pair first (ties by the pair's text), until each word is one symbol."""
    pieces = {w: [*w[:-1], w[-1] + "</w>"] for w in words}
    merges: list[tuple[str, str]] = []
    while any(len(p) > 1 for p in pieces.values()):
        pairs = Counter(pair for p in pieces.values() for pair in zip(p, p[1:]))
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        for w, p in pieces.items():
            merged, i = [], 0
            while i < len(p):
                if i + 1 < len(p) and (p[i], p[i + 1]) == best:
                    merged.append(p[i] + p[i + 1])
                    i += 2
                else:
                    merged.append(p[i])
                    i += 1
            pieces[w] = merged
    return merges


def write_tokenizer_files(directory: str | Path) -> Path:
    """Write vocab.json and merges.txt for `CLIPTokenizer.from_pretrained(directory, model_max_length=...)`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    merges = learn_merges(grammar_words())
    tokens = list(string.ascii_lowercase) + [f"{c}</w>" for c in string.ascii_lowercase]
    for a, b in merges:
        if a + b not in tokens:
            tokens.append(a + b)
    tokens += [BOS, EOS]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, indent=0))
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (directory / "merges.txt").write_text("\n".join(lines) + "\n")
    return directory
