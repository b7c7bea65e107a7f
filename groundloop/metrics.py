"""Caption and hallucination metrics: CHAIR, POPE, BLEU-4 and CIDEr-D, all Java-free.

Pure functions over strings and label sets (no Ray, no model code):

- `tokenize`: a PTB-like tokenizer (lowercase, punctuation dropped, clitics split), standing in
  for pycocoevalcap's Java PTBTokenizer.
- CHAIR (Rohrbach et al., 2018) with a pluggable `Vocabulary` of surface phrases -> object
  labels: `shapesworld_vocabulary()` (objects are colour+shape types, "red circle") and
  `coco_vocabulary()` (the CHAIR COCO synonym table, `groundloop.coco_synonyms`).
- POPE lives in `groundloop.pope`.
- `caption_scores`: BLEU-4 and CIDEr-D through pycocoevalcap's scorers on our tokens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from groundloop import coco_synonyms

if TYPE_CHECKING:
    from groundloop.data.coco import ImageRecord

# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Vocabularies and CHAIR
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """Surface phrases (token sequences) that name objects, mapped to object labels.

    `entries` holds (phrase, label) pairs; a label of None marks a phrase that names no
    object but must still be consumed whole (so "train track" is not read as "train").
    `truth_attribute`: how `truth_labels` names an annotated object: None uses the
    category, "color" makes it "{color} {category}" (ShapesWorld object types).
    """

    name: str
    entries: tuple[tuple[str, str | None], ...]
    truth_attribute: str | None = None
    _lookup: dict[tuple[str, ...], str | None] = field(
        init=False, repr=False, compare=False, hash=False)
    _max_len: int = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        lookup: dict[tuple[str, ...], str | None] = {}
        for phrase, label in self.entries:
            toks = tuple(tokenize(phrase))
            if not toks:
                raise ValueError(f"vocabulary {self.name!r}: empty phrase {phrase!r}")
            if toks in lookup and lookup[toks] != label:
                raise ValueError(f"vocabulary {self.name!r}: phrase {phrase!r} maps to both "
                                 f"{lookup[toks]!r} and {label!r}")
            lookup[toks] = label
        object.__setattr__(self, "_lookup", lookup)
        object.__setattr__(self, "_max_len", max((len(k) for k in lookup), default=1))

    @property
    def labels(self) -> list[str]:
        """Every object label, sorted."""
        return sorted({lab for lab in self._lookup.values() if lab is not None})

    def mentions(self, caption: str) -> list[str]:
        """Labels of the object mentions in `caption`, in order, one per mention.

        Longest match first, left to right: "hot dog" is one mention of "hot dog", not a
        "dog"; a matched phrase's tokens are not matched again.
        """
        toks = tokenize(caption)
        out: list[str] = []
        i = 0
        while i < len(toks):
            for n in range(min(self._max_len, len(toks) - i), 0, -1):
                key = tuple(toks[i:i + n])
                if key in self._lookup:
                    label = self._lookup[key]
                    if label is not None:
                        out.append(label)
                    i += n
                    break
            else:
                i += 1
        return out

    def truth_labels(self, record: ImageRecord, from_captions: bool = False) -> set[str]:
        """The labels of the objects annotated in `record` (an ImageRecord).

        from_captions: also count the objects its reference captions mention, as the
        original COCO CHAIR does (instance masks miss visible objects).
        """
        labels: set[str] = set()
        for o in record.objects:
            if self.truth_attribute is None:
                labels.add(o.category)
            elif self.truth_attribute not in o.attributes:
                raise ValueError(f"vocabulary {self.name!r}: image {record.image_id} has an "
                                 f"object without attribute {self.truth_attribute!r}")
            else:
                labels.add(f"{o.attributes[self.truth_attribute]} {o.category}")
        if from_captions:
            for c in record.captions:
                labels.update(self.mentions(c))
        return labels


_IRREGULAR_PLURALS = {
    "man": "men", "woman": "women", "child": "children", "person": "people", "mouse": "mice",
    "goose": "geese", "ox": "oxen", "calf": "calves", "knife": "knives", "foot": "feet",
    "pocketknife": "pocketknives", "tooth": "teeth", "shelf": "shelves", "leaf": "leaves",
}
_UNINFLECTED = {"sheep", "cattle", "bison", "people", "children", "oxen", "skis", "scissors",
                "luggage", "broccoli", "equine", "knive"}


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


def shapesworld_vocabulary() -> Vocabulary:
    """ShapesWorld objects are colour+shape types: "{color} {synonym}" -> "{color} {shape}".

    Every synonym and plural in SHAPE_SYNONYMS counts ("red discs" -> "red circle"). A bare
    shape word names no object type, so the count sentence ("two circles and one triangle")
    has no mentions; relation clauses ("under the red circle") do, as every object word does
    in CHAIR.
    """
    from groundloop.worlds.shapes import COLORS, SHAPE_SYNONYMS

    entries = tuple((f"{color} {syn}", f"{color} {shape}")
                    for color in COLORS for shape, syns in SHAPE_SYNONYMS.items()
                    for syn in syns)
    return Vocabulary("shapesworld", entries, truth_attribute="color")


def coco_vocabulary() -> Vocabulary:
    """The CHAIR COCO vocabulary: synonyms.txt plus plurals and the reference rules.

    The reference implementation lemmatizes with NLTK; here each phrase's plural is listed
    instead. Its double words ("hot dog", "teddy bear", "home plate") are whole phrases, longest
    first; "baby/adult {animal}" and "passenger {jet,train}" are the animal or vehicle, not a
    person; "toilet seat" is the toilet, not a chair.
    """
    entries: dict[str, str | None] = {}

    def add(phrase: str, label: str | None) -> None:
        for p in (phrase, plural(phrase)):
            entries.setdefault(p, label)

    synonym_of: dict[str, str] = {}
    for line in coco_synonyms.SYNONYMS_TXT.splitlines():
        words = [w.strip().lower() for w in line.split(",") if w.strip()]
        if not words:
            continue
        for w in words:
            synonym_of.setdefault(w, words[0])
    for w, label in synonym_of.items():
        add(w, label)
    for w in coco_synonyms.DOUBLE_WORDS:
        add(w, synonym_of.get(w))
    add("bow tie", "tie")
    add("toilet seat", "toilet")
    for qualifier, nouns in (("baby", coco_synonyms.ANIMAL_WORDS),
                             ("adult", coco_synonyms.ANIMAL_WORDS),
                             ("passenger", coco_synonyms.VEHICLE_WORDS)):
        for noun in nouns:
            add(f"{qualifier} {noun}", synonym_of.get(noun))
    return Vocabulary("coco", tuple(entries.items()), truth_attribute=None)


def chair_per_caption(captions: Sequence[str], truths: Sequence[set[str]],
                      vocab: Vocabulary) -> list[list[str]]:
    """For each caption, the labels of its hallucinated mentions (not in its truth set), in
    order, one per mention (a label mentioned twice and absent appears twice)."""
    if len(captions) != len(truths):
        raise ValueError(f"{len(captions)} captions but {len(truths)} truth sets")
    return [[m for m in vocab.mentions(c) if m not in t]
            for c, t in zip(captions, truths, strict=True)]


def chair(captions: Sequence[str], truths: Sequence[set[str]],
          vocab: Vocabulary) -> dict[str, float]:
    """CHAIR over a set of captions, one truth label set per caption.

    chair_s: fraction of captions with >= 1 hallucinated mention.
    chair_i: hallucinated mentions / all mentions (every mention counts, repeats included).
    recall: true objects mentioned at least once / all true objects, summed over images.
    An empty denominator gives 0.0; the counts say when that happened.
    """
    if len(captions) != len(truths):
        raise ValueError(f"{len(captions)} captions but {len(truths)} truth sets")
    n_mentions = n_halluc = n_bad_caps = n_truth = n_recalled = 0
    for c, t in zip(captions, truths, strict=True):
        ms = vocab.mentions(c)
        bad = sum(m not in t for m in ms)
        n_mentions += len(ms)
        n_halluc += bad
        n_bad_caps += bad > 0
        n_truth += len(t)
        n_recalled += len(t & set(ms))
    return {
        "chair_s": n_bad_caps / len(captions) if captions else 0.0,
        "chair_i": n_halluc / n_mentions if n_mentions else 0.0,
        "recall": n_recalled / n_truth if n_truth else 0.0,
        "n_captions": len(captions),
        "n_mentions": n_mentions,
        "n_hallucinated": n_halluc,
        "n_truth": n_truth,
    }


# ---------------------------------------------------------------------------------------------
# BLEU-4 and CIDEr-D
# ---------------------------------------------------------------------------------------------


def caption_scores(predictions: Mapping[Any, str],
                   references: Mapping[Any, Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU-4 and CIDEr-D of `predictions` against `references` (same image ids).

    Both go through pycocoevalcap's Bleu(4) and Cider() on `tokenize`d text joined by
    spaces. They are corpus-level: BLEU pools n-gram counts over all images, and CIDEr-D
    takes its IDF weights from the reference set being evaluated. Score the whole evaluation
    set in one call: averaging scores over shards is NOT the corpus score (and a shard of one
    image has CIDEr 0, since every n-gram's IDF is log(1) = 0).
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    if set(predictions) != set(references):
        missing = set(references) ^ set(predictions)
        raise ValueError(f"predictions and references differ on {len(missing)} ids, "
                         f"e.g. {sorted(map(str, missing))[:5]}")
    if not predictions:
        raise ValueError("no predictions to score")
    gts: dict[Any, list[str]] = {}
    res: dict[Any, list[str]] = {}
    for k in predictions:
        refs = [" ".join(tokenize(r)) for r in references[k]]
        if not refs:
            raise ValueError(f"image {k!r} has no reference captions")
        gts[k] = refs
        res[k] = [" ".join(tokenize(predictions[k]))]
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {"bleu4": float(bleu[3]), "cider": float(cider)}
