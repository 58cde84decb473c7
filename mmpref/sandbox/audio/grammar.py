"""The audio world's prompt grammar: structured prompts that print to text and parse back.

Six sounds (low beep, high beep, rising chirp, falling chirp, noise burst, click) in three forms: one
sound ("a low beep"), several of one sound ("three clicks") and a sequence of two groups joined by a
temporal connective ("a low beep followed by two clicks"). `Prompt.groups` are always in *temporal*
order, whatever the connective: "two clicks after a low beep" has the beep first, so reversing
`groups` is the reorder perturbation and `Prompt.canonical` (connective "followed by") identifies
phrasings of one scene. The groups of a sequence are different sounds, so the waveform says which
group is which. "while" (overlap) is deliberately not in the grammar: overlapping events need
source separation to judge, which a ground truth computed by simple signal processing cannot promise.

Perturbations are edits of the structured form: `Prompt(p.groups[::-1], p.connective)` reorders,
`Prompt((p.groups[0],))` drops the second group, `Prompt((EventGroup("click", 2), p.groups[1]),
p.connective)` swaps a sound; `near_misses` lists every one-attribute edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

SOUNDS: tuple[str, ...] = ("low beep", "high beep", "rising chirp", "falling chirp", "noise burst", "click")
COUNT_WORDS: dict[int, str] = {1: "a", 2: "two", 3: "three"}
CONNECTIVES: tuple[str, ...] = ("followed by", "then", "before", "after")
FORMS: tuple[str, ...] = ("single", "count", "sequence")
MAX_SEQUENCE_COUNT = 2  # each group of a sequence has one or two events (at most four in a clip)

_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}
# Words accepted for a sound's qualifier, mapped to the canonical one.
_ALIASES = {
    "low": "low",
    "low-pitched": "low",
    "high": "high",
    "high-pitched": "high",
    "rising": "rising",
    "upward": "rising",
    "up": "rising",
    "ascending": "rising",
    "falling": "falling",
    "downward": "falling",
    "down": "falling",
    "descending": "falling",
    "noise": "noise",
}
_NOUNS = {"beep": "beep", "chirp": "chirp", "burst": "burst", "click": "click", "tone": "beep"}
_GROUP = r"(a|an|one|two|three)\s+(?:([\w-]+)\s+)?(beep|chirp|burst|click|tone)(s?)"
_CONNECTIVE = r"followed\s+by|and\s+then|then|before|after"
_PROMPT_RE = re.compile(rf"^{_GROUP}(?:\s+({_CONNECTIVE})\s+{_GROUP})?$")


class PromptError(ValueError):
    """Text that is not a sentence of the audio grammar."""


@dataclass(frozen=True, order=True)
class EventGroup:
    """`count` events of one sound, back to back in time."""

    sound: str
    count: int = 1

    def __post_init__(self) -> None:
        if self.sound not in SOUNDS:
            raise PromptError(f"unknown sound {self.sound!r}; the world has {', '.join(SOUNDS)}")
        if self.count not in COUNT_WORDS:
            raise PromptError(f"count must be 1, 2 or 3, got {self.count}")

    @property
    def text(self) -> str:
        noun = self.sound if self.count == 1 else f"{self.sound}s"
        return f"{COUNT_WORDS[self.count]} {noun}"


@dataclass(frozen=True, order=True)
class Prompt:
    """One group, or two groups of different sounds in temporal order and the connective that joins them."""

    groups: tuple[EventGroup, ...]
    connective: str | None = None

    def __post_init__(self) -> None:
        if self.connective is None:
            if len(self.groups) != 1:
                raise PromptError("a prompt without a connective has exactly one group")
            return
        if self.connective not in CONNECTIVES:
            raise PromptError(f"unknown connective {self.connective!r}; known: {', '.join(CONNECTIVES)}")
        if len(self.groups) != 2:
            raise PromptError("a connective joins exactly two groups")
        if self.groups[0].sound == self.groups[1].sound:
            raise PromptError("the two groups of a sequence must be different sounds")
        if any(g.count > MAX_SEQUENCE_COUNT for g in self.groups):
            raise PromptError(f"each group of a sequence has at most {MAX_SEQUENCE_COUNT} events")

    @property
    def text(self) -> str:
        if self.connective is None:
            return self.groups[0].text
        first, second = self.groups
        if self.connective == "after":  # "B after A": the text names the later group first
            return f"{second.text} after {first.text}"
        return f"{first.text} {self.connective} {second.text}"

    def __str__(self) -> str:
        return self.text

    @property
    def form(self) -> str:
        if self.connective is not None:
            return "sequence"
        return "single" if self.groups[0].count == 1 else "count"

    @property
    def sounds(self) -> tuple[str, ...]:
        """The sounds in temporal order, one per group."""
        return tuple(g.sound for g in self.groups)

    @property
    def events(self) -> tuple[str, ...]:
        """Every event's sound in temporal order ("a click followed by two beeps" -> 3 entries)."""
        return tuple(g.sound for g in self.groups for _ in range(g.count))

    def canonical(self) -> Prompt:
        """The same scene with the connective "followed by", so every phrasing of it compares equal."""
        return self if self.connective in (None, "followed by") else replace(self, connective="followed by")

    def same_scene(self, other: Prompt) -> bool:
        return self.canonical() == other.canonical()

    @classmethod
    def parse(cls, text: str) -> Prompt:
        """Parse a grammar sentence (case, commas, 'an'/'one', 'and then' and aliases such as 'upward' are
        tolerated)."""
        cleaned = " ".join(text.lower().replace(",", " ").strip(" .!").split())
        match = _PROMPT_RE.match(cleaned)
        if match is None:
            raise PromptError(
                f"not an audio-world prompt: {text!r} (try e.g. 'a low beep followed by two clicks')"
            )
        number, word, noun, plural, connective, number2, word2, noun2, plural2 = match.groups()
        first = _group(number, word, noun, plural, text)
        if connective is None:
            return cls((first,))
        second = _group(number2, word2, noun2, plural2, text)
        connective = " ".join(connective.split())
        connective = "then" if connective == "and then" else connective
        if connective == "after":
            first, second = second, first
        return cls((first, second), connective)


def _group(number: str, word: str | None, noun: str, plural: str, text: str) -> EventGroup:
    count = _NUMBER_WORDS[number]
    if (count == 1) == bool(plural):
        raise PromptError(f"number and noun disagree in {text!r}")
    qualifier = _ALIASES.get(word or "")
    if word is not None and qualifier is None:
        raise PromptError(f"unknown word {word!r} in {text!r}")
    sound = f"{qualifier} {_NOUNS[noun]}" if qualifier else _NOUNS[noun]
    if sound not in SOUNDS:
        raise PromptError(f"no sound {sound!r} in {text!r}; the world has {', '.join(SOUNDS)}")
    return EventGroup(sound, count)


def parse_prompt(text: str | Prompt) -> Prompt:
    """A `Prompt` from text (or the prompt itself)."""
    return text if isinstance(text, Prompt) else Prompt.parse(text)


def all_prompts(form: str | None = None) -> list[Prompt]:
    """Every sentence of the grammar (each sequence scene in all four connectives), in a fixed order."""
    if form not in (None, *FORMS):
        raise PromptError(f"unknown form {form!r}; known: {', '.join(FORMS)}")
    out: list[Prompt] = []
    if form in (None, "single", "count"):
        counts = {None: (1, 2, 3), "single": (1,), "count": (2, 3)}[form]
        out += [Prompt((EventGroup(s, n),)) for n in counts for s in SOUNDS]
    if form in (None, "sequence"):
        groups = [EventGroup(s, n) for s in SOUNDS for n in range(1, MAX_SEQUENCE_COUNT + 1)]
        out += [Prompt((a, b), c) for c in CONNECTIVES for a in groups for b in groups if a.sound != b.sound]
    return out


def near_misses(prompt: str | Prompt) -> list[Prompt]:
    """Prompts that differ from `prompt` in one attribute (a sound, a count, or the order of the two
    groups), none describing the same scene: hard negatives for checking the ground truth."""
    prompt = parse_prompt(prompt)
    out: set[Prompt] = set()
    groups = list(prompt.groups)
    limit = 3 if prompt.connective is None else MAX_SEQUENCE_COUNT
    for i, g in enumerate(groups):
        taken = {h.sound for j, h in enumerate(groups) if j != i}
        variants = [EventGroup(s, g.count) for s in SOUNDS if s != g.sound and s not in taken]
        variants += [EventGroup(g.sound, n) for n in range(1, limit + 1) if n != g.count]
        out |= {Prompt(tuple(groups[:i] + [v] + groups[i + 1 :]), prompt.connective) for v in variants}
    if prompt.connective is not None:
        out.add(Prompt(prompt.groups[::-1], prompt.connective))
    return sorted(p for p in out if not p.same_scene(prompt))
