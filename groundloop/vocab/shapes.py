"""ShapesWorld's vocabulary: objects are colour+shape types ("red circle"), claims are object
phrases with their size ("small red circle") and the count sentence's shape counts."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from groundloop.vocab import Claim, Mention
from groundloop.vocab.lexicon import Lexicon
from groundloop.worlds import shapes as world

if TYPE_CHECKING:
    from groundloop.data.coco import ImageRecord

_SHAPE_WORDS = sorted({w for syns in world.SHAPE_SYNONYMS.values() for w in syns}, key=len, reverse=True)
PHRASE = re.compile(
    r"\b(?:(small|large)\s+)?(" + "|".join(world.COLORS) + r")\s+(" + "|".join(_SHAPE_WORDS) + r")\b",
    re.IGNORECASE,
)
_CANONICAL = {w: s for s, syns in world.SHAPE_SYNONYMS.items() for w in syns}
_NUMBERS = {w: i for i, w in enumerate(world.NUMBER_WORDS)}
_PLURALS = {("crosses" if s == "cross" else s + "s"): s for s in world.SHAPES} | {s: s for s in world.SHAPES}
COUNT = re.compile(r"\b(" + "|".join(world.NUMBER_WORDS[1:]) + r")\s+(" + "|".join(_PLURALS) + r")\b")


def _lexicon() -> Lexicon:
    """Every "{color} {synonym}" (plurals included: "red discs") -> "{color} {shape}". A bare
    shape word names no object type, so the count sentence ("two circles and one triangle")
    has no mentions; relation clauses ("under the red circle") do, as every object word does
    in CHAIR."""
    entries = tuple(
        (f"{color} {syn}", f"{color} {shape}")
        for color in world.COLORS
        for shape, syns in world.SHAPE_SYNONYMS.items()
        for syn in syns
    )
    return Lexicon("shapes", entries)


class ShapesVocabulary:
    name = "shapes"

    def __init__(self) -> None:
        self.lexicon = _lexicon()

    @property
    def labels(self) -> list[str]:
        return self.lexicon.labels

    def mentions(self, text: str) -> list[Mention]:
        return [Mention(label, label) for label in self.lexicon.labels_of(text)]

    def phrases(self, text: str, sizes: bool = False) -> list[str]:
        """Distinct "colour shape" phrases, the shape in its canonical singular. Sizes are dropped
        by default: the detector's box already says how big an object is, and a wrong size word
        would make it reject a real object. With sizes=True a phrase seen with and without size
        keeps the sized form ("small red circle")."""
        out: list[str] = []
        for m in PHRASE.finditer(text):
            size, color, shape = (g.lower() if g else g for g in m.groups())
            size = size if sizes else None
            phrase = " ".join(w for w in (size, color, _CANONICAL.get(shape, shape)) if w)
            bare = f"{color} {_CANONICAL.get(shape, shape)}"
            if phrase in out or (size is None and any(p.endswith(bare) for p in out)):
                continue
            if size is not None and bare in out:
                out[out.index(bare)] = phrase
                continue
            out.append(phrase)
        return out

    def claims(self, text: str) -> list[Claim]:
        """The object phrases (with size when given) and the shape counts: the first count of a
        shape is the caption's count sentence."""
        claims = [Claim(p) for p in self.phrases(text, sizes=True)]
        seen: set[str] = set()
        for m in COUNT.finditer(text.lower()):
            shape = _PLURALS[m.group(2)]
            if shape not in seen:
                seen.add(shape)
                claims.append(Claim(shape, _NUMBERS[m.group(1)]))
        return claims

    def look_phrase(self, claim: Claim) -> str:
        """The object without its size ("red circle" for "small red circle": a wrong size is
        judged by looking at the red circle); the bare shape for a count."""
        return " ".join(w for w in claim.phrase.split() if w not in world.SIZES)

    def check_question(self, claim_text: str) -> str:
        if self.is_count(claim_text):
            return f"Are there exactly {claim_text} in the image?"
        return f"Is there a {claim_text} in the image?"

    def is_count(self, claim_text: str) -> bool:
        return claim_text.split()[0] in world.NUMBER_WORDS

    def truth_labels(self, record: ImageRecord, from_captions: bool = False) -> set[str]:
        labels: set[str] = set()
        for o in record.objects:
            if "color" not in o.attributes:
                raise ValueError(
                    f"vocabulary 'shapes': image {record.image_id} has an object without a 'color' attribute"
                )
            labels.add(f"{o.attributes['color']} {o.category}")
        if from_captions:
            for c in record.captions:
                labels.update(self.lexicon.labels_of(c))
        return labels
