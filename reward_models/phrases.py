"""Object phrases and counts from a prompt, so detectors know what to look for and how many.

Deliberately simple rules (no NLP model to download): split at conjunctions and spatial relations,
read a leading number word or article, keep the adjectives, singularise the head noun.
"two red circles and a dog" -> [("red circle", 2), ("dog", 1)].
"""

from __future__ import annotations

import re
from typing import NamedTuple

NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "single": 1, "dozen": 12,
}
ARTICLES = {"a", "an", "the", "some", "several", "many", "few", "multiple", "another", "this", "that", "these",
            "those", "its", "his", "her", "their", "my", "our", "your"}
FRAMES = re.compile(r"^(?:(?:a|an|the)\s+)?(?:photo|picture|image|painting|drawing|rendering|illustration|render|"
                    r"sketch|closeup|close-up|portrait|shot|view)\s+of\s+")
SEPARATORS = re.compile(
    r",|;|\.|:|\band\b|\bwith\b|\bnext to\b|\bbeside\b|\bnear\b|\bon top of\b|\bin front of\b|\bbehind\b|"
    r"\babove\b|\bbelow\b|\bunder\b|\bunderneath\b|\bto the (?:left|right) of\b|\b(?:left|right) of\b|"
    r"\bbetween\b|\bholding\b|\binside\b|\bover\b|\bon\b|\bin\b|\bat\b|\bby\b|\bfrom\b|\bof\b|\bagainst\b"
)
STOP = {"is", "are", "was", "were", "that", "which", "who", "while", "there", "it", "they"}
IRREGULAR = {
    "people": "person", "men": "man", "women": "woman", "children": "child", "mice": "mouse", "geese": "goose",
    "teeth": "tooth", "feet": "foot", "oxen": "ox", "sheep": "sheep", "fish": "fish", "deer": "deer",
    "shoes": "shoe", "glasses": "glass", "dice": "die", "cacti": "cactus", "buses": "bus", "knives": "knife",
}


class ObjectPhrase(NamedTuple):
    """An object to find: its phrase, how many, and whether the number was explicit ("two", "3")."""

    phrase: str
    count: int
    exact: bool = False


def singular(word: str) -> str:
    """A noun's singular by common English rules (irregulars listed)."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("ives"):
        return word[:-3] + "fe"
    if word.endswith("lves"):
        return word[:-3] + "f"
    if word.endswith(("ches", "shes", "xes", "sses", "zzes", "oes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def _parse_chunk(chunk: str) -> ObjectPhrase | None:
    words = chunk.split()
    count, exact = 1, False
    while words:
        if words[0].isdigit():
            count, exact, words = int(words[0]), True, words[1:]
        elif words[0] in NUMBERS:
            count, exact, words = NUMBERS[words[0]], True, words[1:]
        elif words[0] in ARTICLES:
            words = words[1:]
        else:
            break
    kept: list[str] = []
    for word in words:
        if word in STOP or (kept and word.endswith("ing")):
            break
        kept.append(word)
    if not kept:
        return None
    kept[-1] = singular(kept[-1])
    return ObjectPhrase(" ".join(kept), max(count, 1), exact)


def parse_objects(prompt: str) -> list[ObjectPhrase]:
    """Object phrases of `prompt` in order of appearance; repeated phrases add up their counts."""
    text = re.sub(r"[^\w\s,;.:'-]", " ", prompt.lower()).strip()
    text = FRAMES.sub("", text)
    text = re.sub(r"\b(?:a |an )?(?:pair|couple) of\b", "two", text)  # before "of" splits the phrase
    merged: dict[str, ObjectPhrase] = {}
    for chunk in SEPARATORS.split(text):
        parsed = _parse_chunk(chunk.strip(" '-"))
        if parsed is None:
            continue
        if parsed.phrase in merged:
            old = merged[parsed.phrase]
            parsed = ObjectPhrase(parsed.phrase, old.count + parsed.count, old.exact or parsed.exact)
        merged[parsed.phrase] = parsed
    return list(merged.values())
