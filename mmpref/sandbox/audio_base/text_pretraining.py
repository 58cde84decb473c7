"""Teach the audio base's T5 encoder to parse the world's prompts before the UNet trains against it.

Tango conditions on FLAN-T5, which arrives knowing that "two clicks after a beep" puts the beep first. The
audio world's T5 starts from random weights, and trained only through the UNet's denoising loss it never
learnt word order: its states for a prompt and its reverse were 0.9998 cosine-similar, and the UNet played
held-out sequences as the training scenes they reverse. So, as Tango's encoder arrives pretrained, this one
is first taught to parse: from its final state, every word of a sound group predicts that group's temporal
slot (first or second in time), sound and count, through linear heads that are discarded afterwards. It sees
training-split prompts only; `parse_accuracy` on held-out prompts checks that the rule, not the scenes, was
learnt. The UNet then trains against the frozen encoder, as Tango's does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from mmpref.sandbox.audio.grammar import SOUNDS, Prompt

IGNORE = -100
ATTRIBUTES = ("slot", "sound", "count")
CLASSES = {"slot": 2, "sound": len(SOUNDS), "count": 3}


def word_targets(prompt: Prompt) -> list[tuple[int, int, int] | None]:
    """(temporal slot, sound index, count - 1) for each word of `prompt.text`; None for connective words."""
    after = prompt.connective == "after"  # the text names the later group first
    text_groups = prompt.groups[::-1] if after else prompt.groups
    slots = (1, 0) if after else (0, 1)
    out: list[tuple[int, int, int] | None] = []
    for k, group in enumerate(text_groups):
        if k == 1:
            out += [None] * len(prompt.connective.split())
        out += [(slots[k], SOUNDS.index(group.sound), group.count - 1)] * len(group.text.split())
    assert len(out) == len(prompt.text.split()), prompt.text
    return out


def token_targets(prompts: Sequence[Prompt], max_length: int) -> dict[str, torch.Tensor]:
    """Per-token targets [N, max_length] for each attribute (the word-level tokenizer gives one token per
    word, then `</s>` and padding, which are ignored)."""
    targets = {name: torch.full((len(prompts), max_length), IGNORE, dtype=torch.long) for name in ATTRIBUTES}
    for i, prompt in enumerate(prompts):
        for j, word in enumerate(word_targets(prompt)):
            if word is not None:
                for name, value in zip(ATTRIBUTES, word):
                    targets[name][i, j] = value
    return targets


class ParseHeads(torch.nn.Module):
    """One linear read-out per attribute from the encoder's final states."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.heads = torch.nn.ModuleDict({name: torch.nn.Linear(dim, CLASSES[name]) for name in ATTRIBUTES})

    def forward(self, states: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: head(states) for name, head in self.heads.items()}


def _encode(tokenizer, prompts: Sequence[Prompt], max_length: int):
    enc = tokenizer([p.text for p in prompts], padding="max_length", max_length=max_length, truncation=True,
                    return_tensors="pt")
    return enc.input_ids, enc.attention_mask


def pretrain_text_encoder(
    text_encoder,
    tokenizer,
    prompts: Sequence[Prompt],
    *,
    steps: int,
    max_length: int,
    lr: float = 1e-3,
    batch: int = 64,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> ParseHeads:
    """Train `text_encoder` (in place) and fresh parse heads on `prompts`; returns the heads."""
    ids, mask = _encode(tokenizer, prompts, max_length)
    targets = token_targets(prompts, max_length)
    heads = ParseHeads(text_encoder.config.d_model)
    params = list(text_encoder.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    gen = torch.Generator().manual_seed(seed)
    text_encoder.train()
    for step in range(steps):
        idx = torch.randint(len(prompts), (batch,), generator=gen)
        logits = heads(text_encoder(input_ids=ids[idx], attention_mask=mask[idx])[0])
        loss = sum(torch.nn.functional.cross_entropy(logits[n].flatten(0, 1), targets[n][idx].flatten(),
                                                     ignore_index=IGNORE) for n in ATTRIBUTES)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log is not None and (step + 1) % max(1, steps // 5) == 0:
            log(f"text step {step + 1}/{steps} parse loss {loss.item():.4f}")
    return heads.eval()


@torch.no_grad()
def parse_accuracy(text_encoder, heads: ParseHeads, tokenizer, prompts: Sequence[Prompt], max_length: int) -> dict:
    """Share of group words whose slot / sound / count the heads read right, and of prompts read right in full."""
    text_encoder.eval()
    ids, mask = _encode(tokenizer, prompts, max_length)
    targets = token_targets(prompts, max_length)
    logits = heads(text_encoder(input_ids=ids, attention_mask=mask)[0])
    scored = targets["slot"] != IGNORE
    right = {n: (logits[n].argmax(-1) == targets[n]) | ~scored for n in ATTRIBUTES}
    every = torch.stack(list(right.values())).all(0)
    out = {n: float(right[n][scored].float().mean()) for n in ATTRIBUTES}
    out["prompts"] = float(every.all(1).float().mean())
    return out
