"""A lexicon of surface phrases (token sequences) that name objects, matched longest first."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NUMBER_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
)

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens, punctuation dropped, PTB-style clitics split.

    "A man's hot-dog, isn't it?" -> ["a", "man", "'s", "hot-dog", "is", "n't", "it"].
    Intra-word hyphens are kept (as PTB does); every other non-alphanumeric character
    separates tokens and is dropped, like pycocoevalcap's PTBTokenizer punctuation filter.
    """
    out: list[str] = []
    for w in _WORD.findall(text.lower().replace("\u2019", "'")):
        if "'" not in w:
            out.append(w)
        elif w.endswith("n't") and len(w) > 3:
            out.extend([w[:-3], "n't"])
        else:
            head, _, tail = w.partition("'")
            out.extend([head, "'" + tail])
    return out


@dataclass(frozen=True)
class Lexicon:
    """Surface phrases mapped to object labels.

    `entries` holds (phrase, label) pairs; a label of None marks a phrase that names no
    object but must still be consumed whole (so "train track" is not read as "train").
    """

    name: str
    entries: tuple[tuple[str, str | None], ...]
    _lookup: dict[tuple[str, ...], str | None] = field(init=False, repr=False, compare=False, hash=False)
    _max_len: int = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        lookup: dict[tuple[str, ...], str | None] = {}
        for phrase, label in self.entries:
            toks = tuple(tokenize(phrase))
            if not toks:
                raise ValueError(f"lexicon {self.name!r}: empty phrase {phrase!r}")
            if toks in lookup and lookup[toks] != label:
                raise ValueError(
                    f"lexicon {self.name!r}: phrase {phrase!r} maps to both {lookup[toks]!r} and {label!r}"
                )
            lookup[toks] = label
        object.__setattr__(self, "_lookup", lookup)
        object.__setattr__(self, "_max_len", max((len(k) for k in lookup), default=1))

    @property
    def labels(self) -> list[str]:
        """Every object label, sorted."""
        return sorted({lab for lab in self._lookup.values() if lab is not None})

    def matches(self, toks: list[str]) -> list[tuple[int, int, str]]:
        """(start, end, label) of every object phrase in a token list, left to right, longest
        match first: "hot dog" is one match of "hot dog", not a "dog"; matched tokens are not
        matched again."""
        out: list[tuple[int, int, str]] = []
        i = 0
        while i < len(toks):
            for n in range(min(self._max_len, len(toks) - i), 0, -1):
                key = tuple(toks[i : i + n])
                if key in self._lookup:
                    label = self._lookup[key]
                    if label is not None:
                        out.append((i, i + n, label))
                    i += n
                    break
            else:
                i += 1
        return out

    def labels_of(self, text: str) -> list[str]:
        """Labels of the object phrases in `text`, in order, one per occurrence."""
        return [lab for _, _, lab in self.matches(tokenize(text))]


_IRREGULAR_PLURALS = {
    "man": "men",
    "woman": "women",
    "child": "children",
    "person": "people",
    "mouse": "mice",
    "goose": "geese",
    "ox": "oxen",
    "calf": "calves",
    "knife": "knives",
    "foot": "feet",
    "pocketknife": "pocketknives",
    "tooth": "teeth",
    "shelf": "shelves",
    "leaf": "leaves",
}
_UNINFLECTED = {
    "sheep",
    "cattle",
    "bison",
    "people",
    "children",
    "oxen",
    "skis",
    "scissors",
    "luggage",
    "broccoli",
    "equine",
    "knive",
}


def plural(word: str) -> str:
    """English plural of a noun phrase's last word ("wine glass" -> "wine glasses")."""
    head, _, last = word.rpartition(" ")
    if last in _UNINFLECTED:
        p = last
    elif last in _IRREGULAR_PLURALS:
        p = _IRREGULAR_PLURALS[last]
    elif last.endswith("man") and len(last) > 3:  # policeman, gentleman
        p = last[:-3] + "men"
    elif re.search(r"(s|x|z|ch|sh)$", last):
        p = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        p = last[:-1] + "ies"
    else:
        p = last + "s"
    return f"{head} {p}" if head else p


def count_phrase(count: int, noun: str) -> str:
    """ "two circles", "one cross", "13 dogs" (number words up to twelve)."""
    number = NUMBER_WORDS[count] if 0 <= count < len(NUMBER_WORDS) else str(count)
    return f"{number} {noun if count == 1 else plural(noun)}"
