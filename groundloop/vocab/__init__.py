"""Object vocabularies: which words of a caption name objects, and what can be checked of them.

Every method reads captions through a `Vocabulary`, passed in rather than imported: SVP's
grounding (the phrases given to the detector), CHAIR and recall, POPE's object labels,
VL-GenRM's claims, its factored checks and the expert's verification. Two ship:

  shapes  ShapesWorld's colour+shape objects ("small red circle", "two circles").
  coco    free-text captions over the 80 COCO categories with the CHAIR synonym table.

`get(name)` returns one; `for_records(records, name)` picks it from the annotations when no
name is given (ShapesWorld's objects carry a colour attribute, COCO's do not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from groundloop.data.coco import ImageRecord

NAMES = ("shapes", "coco")


@dataclass(frozen=True)
class Mention:
    """One object mention of a caption.

    label: the object's label in the vocabulary (a COCO category, "red circle"): what CHAIR
        compares with the annotations. phrase: the mention's noun phrase with its modifiers
        ("two brown dogs", "a red double-decker bus" -> "red double-decker bus"): the detector
        query and the claim text. count: the number the phrase states, None when it states none.
    """

    label: str
    phrase: str
    count: int | None = None


@dataclass(frozen=True)
class Claim:
    """One checkable statement of a response: `phrase` is present, or (count set) present
    exactly `count` times. `text` is how a critique writes it (default: the phrase, or for a
    count "two circles")."""

    phrase: str
    count: int | None = None
    text: str = ""

    def __post_init__(self) -> None:
        if not self.text:
            from groundloop.vocab.lexicon import count_phrase

            text = self.phrase if self.count is None else count_phrase(self.count, self.phrase)
            object.__setattr__(self, "text", text)


class Vocabulary(Protocol):
    name: str

    @property
    def labels(self) -> list[str]:
        """Every object label, sorted (POPE draws its absent objects from them)."""
        ...

    def mentions(self, text: str) -> list[Mention]:
        """Every object mention of `text` in order, one per mention (repeats included);
        negated ones ("no people") are not mentions."""
        ...

    def phrases(self, text: str, sizes: bool = False) -> list[str]:
        """The distinct detector queries of `text`, in order of first mention."""
        ...

    def claims(self, text: str) -> list[Claim]:
        """The distinct claims a response makes: its objects, then its counts."""
        ...

    def look_phrase(self, claim: Claim) -> str:
        """What a checker looks at for the claim (the expert is asked it too)."""
        ...

    def check_question(self, claim_text: str) -> str:
        """The yes/no question that checks one claim on its own (a factored check)."""
        ...

    def is_count(self, claim_text: str) -> bool:
        """Whether a claim text states a count."""
        ...

    def truth_labels(self, record: ImageRecord, from_captions: bool = False) -> set[str]:
        """The labels of the objects annotated in `record`; from_captions: also those its
        reference captions mention (the original COCO CHAIR)."""
        ...


def get(name: str) -> Vocabulary:
    """The vocabulary called `name` ("shapes" or "coco")."""
    if name == "shapes":
        from groundloop.vocab.shapes import ShapesVocabulary

        return ShapesVocabulary()
    if name == "coco":
        from groundloop.vocab.coco import CocoVocabulary

        return CocoVocabulary()
    raise ValueError(f"unknown vocabulary {name!r} (known: {', '.join(NAMES)})")


def for_records(records: Sequence[ImageRecord], name: str = "") -> Vocabulary:
    """`get(name)`; with no name, ShapesWorld's when every annotated object carries a colour,
    else COCO's."""
    if name:
        return get(name)
    objs = [o for r in records for o in r.objects]
    return get("shapes" if objs and all("color" in o.attributes for o in objs) else "coco")
