"""The shapes world's prompt grammar: structured prompts that print to text and parse back.

Three forms: a single object ("a red circle"), several of one kind ("two blue squares") and two objects
in a spatial relation ("a blue square left of a yellow triangle"). Objects in a relation have different
colours, so the pixels say unambiguously which object is which. "A left of B" and "B right of A" describe
the same scene; `Prompt.canonical` maps both to one form so the train/held-out split and the mismatch
checks treat them as one scene.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow")
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
COUNT_WORDS: dict[int, str] = {1: "a", 2: "two", 3: "three"}
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
FORMS: tuple[str, ...] = ("single", "count", "relation")

# Each relation's mirror: "A left of B" is "B right of A".
MIRROR: dict[str, str] = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}

_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}
_RELATION_PATTERN = "|".join(
    [r"(?:to\s+the\s+)?left\s+of", r"(?:to\s+the\s+)?right\s+of", r"above", r"below"]
)
_OBJECT = r"(a|an|one|two|three)\s+(\w+)\s+(\w+?)(s?)"
_PROMPT_RE = re.compile(rf"^{_OBJECT}(?:\s+({_RELATION_PATTERN})\s+{_OBJECT})?$")


class PromptError(ValueError):
    """Text that is not a sentence of the shapes grammar."""


@dataclass(frozen=True, order=True)
class ShapeGroup:
    """`count` objects of one colour and shape."""

    color: str
    shape: str
    count: int = 1

    def __post_init__(self) -> None:
        if self.color not in COLORS:
            raise PromptError(f"unknown colour {self.color!r}; the world has {', '.join(COLORS)}")
        if self.shape not in SHAPES:
            raise PromptError(f"unknown shape {self.shape!r}; the world has {', '.join(SHAPES)}")
        if self.count not in COUNT_WORDS:
            raise PromptError(f"count must be 1, 2 or 3, got {self.count}")

    @property
    def text(self) -> str:
        noun = self.shape if self.count == 1 else f"{self.shape}s"
        return f"{COUNT_WORDS[self.count]} {self.color} {noun}"


@dataclass(frozen=True, order=True)
class Prompt:
    """One prompt: one group, or two single objects and the relation of the first to the second."""

    groups: tuple[ShapeGroup, ...]
    relation: str | None = None

    def __post_init__(self) -> None:
        if self.relation is None:
            if len(self.groups) != 1:
                raise PromptError("a prompt without a relation has exactly one group")
            return
        if self.relation not in RELATIONS:
            raise PromptError(f"unknown relation {self.relation!r}; known: {', '.join(RELATIONS)}")
        if len(self.groups) != 2 or any(g.count != 1 for g in self.groups):
            raise PromptError("a relation joins exactly two single objects")
        if self.groups[0].color == self.groups[1].color:
            raise PromptError("the two objects of a relation must have different colours")

    @property
    def text(self) -> str:
        if self.relation is None:
            return self.groups[0].text
        return f"{self.groups[0].text} {self.relation} {self.groups[1].text}"

    def __str__(self) -> str:
        return self.text

    @property
    def form(self) -> str:
        if self.relation is not None:
            return "relation"
        return "single" if self.groups[0].count == 1 else "count"

    @property
    def colors(self) -> tuple[str, ...]:
        return tuple(g.color for g in self.groups)

    def canonical(self) -> Prompt:
        """The same scene phrased with 'left of' or 'above', so mirrored phrasings compare equal."""
        if self.relation in ("right of", "below"):
            return Prompt((self.groups[1], self.groups[0]), MIRROR[self.relation])
        return self

    def same_scene(self, other: Prompt) -> bool:
        return self.canonical() == other.canonical()

    @classmethod
    def parse(cls, text: str) -> Prompt:
        """Parse a grammar sentence (case, extra spaces, 'one'/'an' and 'to the left of' are tolerated)."""
        cleaned = " ".join(text.lower().replace(",", " ").strip(" .!").split())
        match = _PROMPT_RE.match(cleaned)
        if match is None:
            raise PromptError(
                f"not a shapes-world prompt: {text!r} (try e.g. 'a blue square left of a red circle')"
            )
        number, color, shape, plural, relation, number2, color2, shape2, plural2 = match.groups()
        first = _group(number, color, shape, plural, text)
        if relation is None:
            return cls((first,))
        second = _group(number2, color2, shape2, plural2, text)
        relation = relation.replace("to the ", "")
        relation = " ".join(relation.split())
        return cls((first, second), relation)


def _group(number: str, color: str, shape: str, plural: str, text: str) -> ShapeGroup:
    count = _NUMBER_WORDS[number]
    if (count == 1) == bool(plural):
        raise PromptError(f"number and noun disagree in {text!r}")
    return ShapeGroup(color, shape, count)


def parse_prompt(text: str | Prompt) -> Prompt:
    """A `Prompt` from text (or the prompt itself)."""
    return text if isinstance(text, Prompt) else Prompt.parse(text)


def near_misses(prompt: str | Prompt) -> list[Prompt]:
    """Prompts that differ from `prompt` in exactly one attribute (colour, shape, count, relation or the
    order of the two objects), none describing the same scene: hard negatives for checks and pairs."""
    prompt = parse_prompt(prompt)
    out: set[Prompt] = set()
    groups = list(prompt.groups)
    for i, g in enumerate(groups):
        taken = {h.color for j, h in enumerate(groups) if j != i}
        variants = [ShapeGroup(c, g.shape, g.count) for c in COLORS if c != g.color and c not in taken]
        variants += [ShapeGroup(g.color, s, g.count) for s in SHAPES if s != g.shape]
        if prompt.relation is None:
            variants += [ShapeGroup(g.color, g.shape, n) for n in COUNT_WORDS if n != g.count]
        for v in variants:
            out.add(Prompt(tuple(groups[:i] + [v] + groups[i + 1 :]), prompt.relation))
    if prompt.relation is not None:
        out |= {Prompt(prompt.groups, r) for r in RELATIONS if r != prompt.relation}
        out.add(Prompt(prompt.groups[::-1], prompt.relation))
    return sorted(p for p in out if not p.same_scene(prompt))


def all_prompts(form: str | None = None) -> list[Prompt]:
    """Every sentence of the grammar (both phrasings of each relation scene), in a fixed order."""
    out: list[Prompt] = []
    if form in (None, "single", "count"):
        counts = {None: (1, 2, 3), "single": (1,), "count": (2, 3)}[form]
        out += [Prompt((ShapeGroup(c, s, n),)) for n in counts for c in COLORS for s in SHAPES]
    if form in (None, "relation"):
        objects = [ShapeGroup(c, s) for c in COLORS for s in SHAPES]
        out += [
            Prompt((a, b), rel) for rel in RELATIONS for a in objects for b in objects if a.color != b.color
        ]
    if form not in (None, *FORMS):
        raise PromptError(f"unknown form {form!r}; known: {', '.join(FORMS)}")
    return out
