"""Prompt perturbations that make losers from altered captions (Tango 2's Audio-Alpaca strategies 2 and 3).

A perturber turns a caption into altered captions: `kind="event"` swaps one sound event for another or
drops one (strategy 2, "perturbed captions"), `kind="temporal"` changes the order of events joined by a
temporal connective (strategy 3). Clips generated from an altered caption are scored against the
*original* caption and become rejected samples; clips of the original caption are the chosen ones.

The default `rules` perturber is rule-based and deterministic:

- audio-world prompts (`mmpref.sandbox.audio` grammar, e.g. "a low beep followed by two clicks") are
  edited in their structured form: swap = another sound in one group, drop = keep one group or one
  event fewer in a group of several ("two clicks" -> "a click"), reorder = the groups reversed
  (connective kept);
- any other caption is split at its connectives ("followed by", "and then", "then", "before", "after",
  "while", "and", ","): `parse_caption`. Event edits drop one clause or replace it with an event from a
  vocabulary (`DEFAULT_EVENTS`, or `perturbation.options.events`) not already in the caption. Temporal
  edits swap the two clauses around a sequential connective (which reverses their order whatever the
  connective: "A after B" → "B after A"), turn a sequence into an overlap ("while"), and turn an overlap
  into a sequence ("followed by", "after").

Pluggable: `@register_perturber("name")` on a factory `options -> Perturber`, or "package.module:factory"
in `perturbation.perturber`; the factory runs once per worker process, so it can load a local language
model, and the perturber it returns is called per caption. It must be deterministic in its arguments
(a resumed run has to reproduce the uninterrupted one). A local language model, for example:

    # mypkg/perturb.py; config: perturbation: {perturber: "mypkg.perturb:llm", options: {model: /models/llm}}
    def llm(options):
        from transformers import pipeline
        generate = pipeline("text-generation", model=options["model"])
        def perturb(caption, kind, count, seed):
            from transformers import set_seed
            set_seed(seed)
            ask = {"event": "Replace or remove one sound event in this audio caption",
                   "temporal": "Change the order of the events in this audio caption"}[kind]
            outs = generate(f"{ask}: {caption}\\nNew caption:", num_return_sequences=count, do_sample=True,
                            max_new_tokens=40, return_full_text=False)
            return [o["generated_text"].strip().splitlines()[0] for o in outs if o["generated_text"].strip()]
        return perturb

The "package.module:factory" form is imported by every worker process; a name registered with the decorator
is known to spawned workers only if the module registering it is imported by them (a plugin package).
"""

from __future__ import annotations

import importlib
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mmpref.errors import ConfigError, did_you_mean

Kind = Literal["event", "temporal"]
KINDS: tuple[str, ...] = ("event", "temporal")

Perturber = Callable[[str, str, int, int], list[str]]
"""(caption, kind, count, seed) -> up to `count` distinct altered captions (empty when none applies)."""

PerturberFactory = Callable[[Mapping[str, Any]], Perturber]

SEQUENTIAL: tuple[str, ...] = ("followed by", "and then", "then", "before", "after")
"""Connectives that order two events in time ("after" puts the clause after it first)."""
OVERLAP: tuple[str, ...] = ("while",)
"""Connectives of simultaneous events (the order in the text is not the order in time)."""
JOINERS: tuple[str, ...] = (*SEQUENTIAL, *OVERLAP, "and", ",")
"""Every separator between event clauses, longest first where one contains another."""

DEFAULT_EVENTS: tuple[str, ...] = (
    "a dog barks", "a car engine idles", "rain falls", "a bell rings", "a baby cries", "birds chirp",
    "a door slams", "a man speaks", "a woman laughs", "water flows", "a siren wails", "thunder rumbles",
    "a train horn honks", "footsteps echo", "a crowd cheers", "wind blows", "a phone rings", "glass breaks",
)
"""Substitute events for the rule-based swap (AudioCaps-style sound events)."""

_CONNECTIVE = r"followed\s+by|and\s+then|then|before|after|while|and"
_COMMA_BEFORE_CONNECTIVE = re.compile(rf"\s*,\s*(?=(?:{_CONNECTIVE})\s)", re.IGNORECASE)
_SPLIT = re.compile(rf"\s*,\s*|\s+({_CONNECTIVE})\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Caption:
    """A caption as event clauses and the joiners between them (`joiners[i]` joins clauses i and i+1)."""

    clauses: tuple[str, ...]
    joiners: tuple[str, ...]
    capitalised: bool = False  # the caption began with a capital letter

    @property
    def text(self) -> str:
        parts = [self.clauses[0]]
        for joiner, clause in zip(self.joiners, self.clauses[1:]):
            parts.append(f", {clause}" if joiner == "," else f" {joiner} {clause}")
        text = "".join(parts)
        return text[:1].upper() + text[1:] if self.capitalised else text

    def temporal_order(self) -> list[str]:
        """The clauses in the order they sound (a two-clause "A after B" gives [B, A]; overlaps keep text order)."""
        order = list(self.clauses)
        for i, joiner in enumerate(self.joiners):
            if joiner == "after":
                order[i], order[i + 1] = order[i + 1], order[i]
        return order


def _lower_first(clause: str) -> str:
    word = clause.split(" ", 1)[0]
    return clause if (len(word) > 1 and word.isupper()) or word == "I" else clause[:1].lower() + clause[1:]


def parse_caption(caption: str) -> Caption:
    """Split a caption into event clauses at its connectives (case-insensitive; trailing '.' dropped)."""
    text = " ".join(caption.strip().rstrip(".!").split())
    pieces = _SPLIT.split(_COMMA_BEFORE_CONNECTIVE.sub(" ", text))
    clauses: list[str] = []
    joiners: list[str] = []
    # re.split with one group gives [clause, joiner-or-None, clause, ...]; a comma match has group None.
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            clauses.append(_lower_first(piece.strip()))
        else:
            joiners.append(" ".join(piece.lower().split()) if piece else ",")
    keep = [i for i, c in enumerate(clauses) if c]
    if len(keep) != len(clauses):  # empty clauses (a leading connective, ", and" at the end): drop their joiners
        clauses = [clauses[i] for i in keep]
        joiners = joiners[: max(0, len(clauses) - 1)]
    return Caption(tuple(clauses), tuple(joiners), capitalised=text[:1].isupper())


# ---- rule-based edits -----------------------------------------------------------------------------
def _world(caption: str) -> Any:
    try:
        from mmpref.sandbox.audio.grammar import parse_prompt

        return parse_prompt(caption)
    except Exception:  # noqa: BLE001 - not a sentence of the audio world: the generic rules apply
        return None


def _world_edits(prompt: Any, kind: str) -> list[str]:
    from mmpref.sandbox.audio.grammar import SOUNDS, EventGroup, Prompt

    out: list[str] = []
    groups = list(prompt.groups)
    if kind == "temporal":
        if prompt.connective is not None:
            out.append(Prompt(prompt.groups[::-1], prompt.connective).text)
        return out

    def with_group(i: int, group: Any) -> str:
        """The prompt with its group i replaced."""
        return Prompt(tuple(groups[:i] + [group] + groups[i + 1:]), prompt.connective).text

    for i, group in enumerate(groups):  # swap: another sound in one group
        taken = {g.sound for j, g in enumerate(groups) if j != i}
        out += [with_group(i, EventGroup(sound, group.count)) for sound in SOUNDS
                if sound != group.sound and sound not in taken]
    if len(groups) == 2:  # drop: keep one group
        out += [Prompt((groups[1],)).text, Prompt((groups[0],)).text]
    # drop one event of a group of several ("two clicks" -> "a click")
    out += [with_group(i, EventGroup(g.sound, g.count - 1)) for i, g in enumerate(groups) if g.count > 1]
    return out


def event_edits(caption: str, events: tuple[str, ...] = DEFAULT_EVENTS) -> list[str]:
    """Every rule-based event edit of a caption: each clause dropped (when there are two or more), then
    each clause replaced by each vocabulary event not already in the caption, in a fixed order."""
    world = _world(caption)
    if world is not None:
        return _dedupe(caption, _world_edits(world, "event"))
    parsed = parse_caption(caption)
    clauses, joiners = list(parsed.clauses), list(parsed.joiners)
    out: list[str] = []
    if len(clauses) >= 2:
        for j in range(len(clauses)):
            kept = clauses[:j] + clauses[j + 1:]
            kept_joiners = joiners[:j - 1] + joiners[j:] if j > 0 else joiners[1:]
            out.append(Caption(tuple(kept), tuple(kept_joiners), parsed.capitalised).text)
    present = {c.lower() for c in clauses}
    substitutes = [e for e in events if e.lower() not in present]
    for j in range(len(clauses)):
        for event in substitutes:
            swapped = clauses[:j] + [_lower_first(event)] + clauses[j + 1:]
            out.append(Caption(tuple(swapped), tuple(joiners), parsed.capitalised).text)
    return _dedupe(caption, out)


def temporal_edits(caption: str) -> list[str]:
    """Every rule-based temporal edit: around each sequential connective the two clauses swapped (their order
    reversed) and the connective made "while"; each "while" made "followed by" and "after". Empty when the
    caption has no temporal connective."""
    swaps, others = _temporal(caption)
    return _dedupe(caption, swaps + others)


def _temporal(caption: str) -> tuple[list[str], list[str]]:
    """(reorderings, connective changes) of a caption."""
    world = _world(caption)
    if world is not None:
        return _world_edits(world, "temporal"), []
    parsed = parse_caption(caption)
    clauses, joiners = list(parsed.clauses), list(parsed.joiners)
    swaps: list[str] = []
    others: list[str] = []
    for i, joiner in enumerate(joiners):
        if joiner in SEQUENTIAL:
            swapped = clauses[:i] + [clauses[i + 1], clauses[i]] + clauses[i + 2:]
            swaps.append(Caption(tuple(swapped), tuple(joiners), parsed.capitalised).text)
            others.append(Caption(tuple(clauses), tuple(joiners[:i] + ["while"] + joiners[i + 1:]),
                                  parsed.capitalised).text)
        elif joiner in OVERLAP:
            for new in ("followed by", "after"):
                others.append(Caption(tuple(clauses), tuple(joiners[:i] + [new] + joiners[i + 1:]),
                                      parsed.capitalised).text)
    return swaps, others


def _dedupe(caption: str, edits: list[str]) -> list[str]:
    original = " ".join(caption.lower().strip().rstrip(".!").split())
    seen: set[str] = set()
    out = []
    for edit in edits:
        key = edit.lower()
        if key != original and key not in seen:
            seen.add(key)
            out.append(edit)
    return out


def choose(edits: list[str], count: int, seed: int, prefer: int = 0) -> list[str]:
    """`count` edits, deterministic in `seed`: the first `prefer` candidates (the preferred rule) shuffled
    first, then the rest shuffled."""
    rng = random.Random(seed)
    head, tail = edits[:prefer], edits[prefer:]
    rng.shuffle(head)
    rng.shuffle(tail)
    return (head + tail)[:count]


class RulePerturber:
    """The default perturber: the rule-based edits above, `count` of them chosen with `seed`.

    Temporal edits prefer reorderings (clause swaps) over connective changes; event edits mix swaps and drops.
    """

    def __init__(self, events: tuple[str, ...] = DEFAULT_EVENTS) -> None:
        self.events = tuple(events)

    def __call__(self, caption: str, kind: str, count: int, seed: int) -> list[str]:
        if kind == "event":
            return choose(event_edits(caption, self.events), count, seed)
        if kind == "temporal":
            swaps, others = _temporal(caption)
            swaps = _dedupe(caption, swaps)
            return choose(swaps + [e for e in _dedupe(caption, others) if e not in swaps], count, seed,
                          prefer=len(swaps))
        raise ValueError(f"unknown perturbation kind {kind!r}; one of {', '.join(KINDS)}")


# ---- registry -------------------------------------------------------------------------------------
PERTURBERS: dict[str, PerturberFactory] = {}


def register_perturber(name: str) -> Callable[[PerturberFactory], PerturberFactory]:
    """Decorator: make a perturber factory `options -> Perturber` available as `perturbation.perturber: NAME`."""

    def decorator(factory: PerturberFactory) -> PerturberFactory:
        if name in PERTURBERS and PERTURBERS[name] is not factory:
            raise ValueError(f"perturber '{name}' is registered twice")
        PERTURBERS[name] = factory
        return factory

    return decorator


@register_perturber("rules")
def rules(options: Mapping[str, Any]) -> Perturber:
    """Options: `events` (list of substitute event phrases for swaps; default DEFAULT_EVENTS)."""
    unknown = sorted(set(options) - {"events"})
    if unknown:
        raise ConfigError(f"perturbation.options: the rules perturber takes only `events`, not {', '.join(unknown)}.")
    events = options.get("events") or DEFAULT_EVENTS
    if isinstance(events, str) or not all(isinstance(e, str) and e.strip() for e in events):
        raise ConfigError("perturbation.options.events: give a list of event phrases, e.g. ['a dog barks'].")
    return RulePerturber(tuple(e.strip() for e in events))


def resolve_perturber(spec: str) -> PerturberFactory:
    """The factory a config names: a registered name or "package.module:factory"."""
    if spec in PERTURBERS:
        return PERTURBERS[spec]
    if ":" not in spec:
        raise ConfigError(f"perturbation.perturber: unknown perturber '{spec}'.{did_you_mean(spec, PERTURBERS)} "
                          f"Registered: {', '.join(sorted(PERTURBERS))}; or give 'package.module:factory'.")
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"perturbation.perturber: cannot import '{spec}' ({err}).") from None
    if not callable(factory):
        raise ConfigError(f"perturbation.perturber: '{spec}' is not callable.")
    return factory
