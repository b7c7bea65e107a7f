"""COCO's vocabulary: object mentions of free-text captions over the 80 COCO categories.

Object words are found by CHAIR's lexicon (`chair_lexicon`: the synonym table, plurals, the
double words and qualifier rules, longest match first). Each mention keeps its noun phrase:
the object words plus the run of modifiers directly before them ("two brown dogs", "a red
double-decker bus" -> "red double-decker bus"). The run is read right to left and ends at a
determiner, preposition, conjunction, pronoun, adverb, common verb or auxiliary, an -ing word
(in captions nearly always a verb: "a man riding horses"), punctuation or another object's
words; a count word (one..twenty, a digit) is its leftmost word, and "a pair of" / "a couple
of" count 2 ("a pair of skis" / "scissors" are one object: no count). Vague quantifiers
("several", "many", "some") end the run and state no count.

Two deliberate deviations from the reference CHAIR, which counts every object word:
  * negated mentions are not mentions: a negator (no, zero, not, n't, without, none, never,
    neither, nor) followed, past articles and light words ("any", "single", "sign of",
    "appear to be", an -ing verb), by a mention negates it and the mentions joined to it by
    "or"/"nor" ("no cars or people"); "and", a comma or any other word ends the scope.
  * "orange" directly before another object's words, or before a colour list that runs into
    them, is a colour ("an orange cat", "an orange and white cat"), not the fruit.
"and" between two colours stays inside the run ("a black and white cat").
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from groundloop.eval import synonyms
from groundloop.vocab import Claim, Mention
from groundloop.vocab.lexicon import Lexicon, plural, tokenize

if TYPE_CHECKING:
    from groundloop.data.coco import ImageRecord

NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
).split()
_NUMBERS = {w: i for i, w in enumerate(NUMBER_WORDS) if i}
COLOURS = frozenset(
    "red orange yellow green blue purple pink brown black white gray grey silver gold golden beige tan".split()
)
SIZES = frozenset(
    "small smaller smallest large larger largest big bigger biggest little tall "
    "taller tiny huge giant enormous massive medium short long".split()
)
_BREAK = "|"  # stands for punctuation between tokens: no phrase or negation crosses it
_END = frozenset(
    (
        _BREAK
        + " "
        + (
            # determiners and quantifiers (vague ones state no count)
            "a an the this that these those some any each every all both no zero 0 either neither several many few multiple "
            "various numerous lots lot plenty more most much enough such what another other same half "
            # prepositions
            "of in on at by with without from to into onto over under underneath near nearby next behind beside besides "
            "between among amongst around through throughout across along alongside against above below beneath inside "
            "outside atop toward towards for like up down off out upon via within past beyond after before during "
            "including except per amid "
            # conjunctions, pronouns, clitics
            "and or but nor yet so while as than which who whom whose where when whereas if because although though since "
            "until unless whether it its they them their he him his she her we us our you your i me my there here 's ' "
            "'re 'm 've 'll 'd not n't "
            # adverbs
            "very really quite rather too also just only even almost nearly about approximately roughly possibly probably "
            "likely perhaps maybe now then still together alone "
            # auxiliaries and the verbs captions use most
            "is are was were be been being am has have had do does did can could will would shall should may might must "
            "appears appear seems seem shows show showed shown features feature depicts depict contains contain includes "
            "include displays display captures capture sits sit sat stands stand stood lies lie lay holds hold held eats "
            "eat ate rides ride rode carries carry carried wears wear wore watches watch plays play walks walk looks look "
            "see sees saw seen pulls pull pushes push uses use leans lean rests rest hangs hang waits wait flies fly "
            "grazes graze drinks drink makes make takes take gets get goes go"
        )
    ).split()
)
_NEGATORS = frozenset("no zero 0 not n't without none never neither nor".split())
# Words a negation reaches past on its way to the object ("there isn't a single cat", "no
# sign of any dogs", "doesn't appear to be any people").
_BRIDGE = frozenset(
    (
        "a an the any single other more of sign signs trace traces evidence visible apparent obvious be "
        "to appear appears seem seems have has had there is are was were been contain contains include "
        "includes show shows see seen also even really actually apparently"
    ).split()
)
_PAIRS = ("pair", "couple")
_PAIR_OBJECTS = frozenset({"skis", "scissors"})  # "a pair of skis" is one object
_PUNCT = re.compile(r"[.,;:!?()\[\]{}\"\u2014\u2013]+|\s-+\s")


def _synonyms() -> dict[str, str | None]:
    """Every singular surface phrase of CHAIR's lexicon -> its COCO category (None: a phrase
    that names no object but is consumed whole, e.g. "train track")."""
    synonym_of: dict[str, str | None] = {}
    for line in synonyms.SYNONYMS_TXT.splitlines():
        words = [w.strip().lower() for w in line.split(",") if w.strip()]
        for w in words:
            synonym_of.setdefault(w, words[0])
    for w in synonyms.DOUBLE_WORDS:
        synonym_of.setdefault(w, synonym_of.get(w))
    synonym_of.setdefault("bow tie", "tie")
    synonym_of.setdefault("toilet seat", "toilet")
    for qualifier, nouns in (
        ("baby", synonyms.ANIMAL_WORDS),
        ("adult", synonyms.ANIMAL_WORDS),
        ("passenger", synonyms.VEHICLE_WORDS),
    ):
        for noun in nouns:
            synonym_of.setdefault(f"{qualifier} {noun}", synonym_of.get(noun))
    return synonym_of


def chair_lexicon() -> Lexicon:
    """The CHAIR COCO lexicon: synonyms.txt plus plurals and the reference rules.

    The reference implementation lemmatizes with NLTK; here each phrase's plural is listed
    instead. Its double words ("hot dog", "teddy bear", "home plate") are whole phrases, longest
    first; "baby/adult {animal}" and "passenger {jet,train}" are the animal or vehicle, not a
    person; "toilet seat" is the toilet, not a chair.
    """
    entries: dict[str, str | None] = {}
    for phrase, label in _synonyms().items():
        for p in (phrase, plural(phrase)):
            entries.setdefault(p, label)
    return Lexicon("coco", tuple(entries.items()))


def _tokens(text: str) -> list[str]:
    """`tokenize`d words with `_BREAK` where punctuation separated them."""
    out: list[str] = []
    for piece in _PUNCT.split(text):
        out.extend(tokenize(piece) + [_BREAK])
    return out


def _count(tok: str) -> int | None:
    """The number a count word or digit states, None for any other word."""
    if tok.isdigit():
        return int(tok) or None
    return _NUMBERS.get(tok)


def _colours(words: list[str]) -> bool:
    """Whether words between "orange" and an object make "orange" its colour: none ("orange
    cat") or a colour list ending in a colour ("orange and white cat")."""
    return all(w in COLOURS or w == "and" for w in words) and (not words or words[-1] in COLOURS)


def _ends_run(tok: str) -> bool:
    return tok in _END or (len(tok) > 4 and tok.endswith("ing"))


def _count_len(words: list[str]) -> int:
    """How many leading words of a phrase state its count (0, 1, or 2 for "pair of")."""
    if words and _count(words[0]) is not None:
        return 1
    return 2 if len(words) > 2 and words[0] in _PAIRS and words[1] == "of" else 0


class CocoVocabulary:
    name = "coco"

    def __init__(self) -> None:
        self.lexicon = chair_lexicon()
        labels = set(self.lexicon.labels)
        # plural surface -> singular, so "dogs" and "a dog" give one detector query; a plural
        # that is itself a category ("skis") stays
        self._singular = {
            tuple(plural(p).split()): p.split() for p in _synonyms() if plural(p) != p and plural(p) not in labels
        }

    @property
    def labels(self) -> list[str]:
        """The 80 COCO categories, sorted."""
        return self.lexicon.labels

    def mentions(self, text: str) -> list[Mention]:
        """Every non-negated object mention of `text`, in order, repeats included: its
        category, its noun phrase (lowercased, without the article) and the count it states."""
        toks = _tokens(text)
        spans = self.lexicon.matches(toks)
        spans = [
            (s, e, lab)
            for k, (s, e, lab) in enumerate(spans)
            if not (toks[s:e] == ["orange"] and k + 1 < len(spans) and _colours(toks[e : spans[k + 1][0]]))
        ]
        found: list[tuple[int, int, str, int | None]] = []  # (phrase start, end, label, count)
        lo = 0
        for s, e, label in spans:
            j = s
            while j > lo and (
                not _ends_run(toks[j - 1])
                or j - 2 >= lo
                and toks[j - 1] == "and"
                and toks[j] in COLOURS
                and toks[j - 2] in COLOURS
            ):
                j -= 1
                if _count(toks[j]) is not None:
                    break
            count = _count(toks[j]) if j < s else None
            if (
                count is None
                and j - 2 >= lo
                and toks[j - 2] in _PAIRS
                and toks[j - 1] == "of"
                and label not in _PAIR_OBJECTS
            ):
                j, count = j - 2, 2
            found.append((j, e, label, count))
            lo = e
        negated = self._negated(toks, found)
        return [
            Mention(label, " ".join(toks[j:e]), count)
            for k, (j, e, label, count) in enumerate(found)
            if k not in negated
        ]

    @staticmethod
    def _negated(toks: list[str], found: list[tuple[int, int, str, int | None]]) -> set[int]:
        """Indices in `found` of the mentions a negator governs (see the module docstring)."""
        out: set[int] = set()
        for i, tok in enumerate(toks):
            if tok not in _NEGATORS:
                continue
            p = i + 1
            for k, (j, e, _, _) in enumerate(found):
                if j < p:
                    continue
                while p < j and (toks[p] in _BRIDGE or _ends_run(toks[p]) and toks[p] not in _END):
                    p += 1
                if p != j:
                    break
                out.add(k)
                p = e
                if toks[p] not in ("or", "nor"):
                    break
                p += 1
        return out

    def _bare(self, phrase: str) -> str:
        """The phrase without its count words, its object words singular ("two brown dogs"
        -> "brown dog", "people" -> "person")."""
        words = phrase.split()
        words = words[_count_len(words) :]
        for n in range(min(len(words), 3), 0, -1):
            if tuple(words[-n:]) in self._singular:
                return " ".join(words[:-n] + self._singular[tuple(words[-n:])])
        return " ".join(words)

    @staticmethod
    def _distinct(items: list[tuple[str, str]]) -> list[str]:
        """Distinct phrases of (label, phrase) pairs in order of first mention; a phrase that
        ends another of the same label ("dog", "brown dog") is the same object and the longer
        one is kept, where the first stood ("hot dog" and "dog" differ in label)."""
        out: list[tuple[str, str]] = []
        for label, p in items:
            for k, (lab, q) in enumerate(out):
                if lab == label and (q == p or q.endswith(" " + p)):
                    break
                if lab == label and p.endswith(" " + q):
                    out[k] = (label, p)
                    break
            else:
                out.append((label, p))
        return list(dict.fromkeys(p for _, p in out))

    def phrases(self, text: str, sizes: bool = False) -> list[str]:
        """The distinct detector queries of `text`: mention phrases without count words, object
        words singular. Size words are dropped unless `sizes`: the box already shows the size,
        and a wrong size word would make the detector reject a real object."""
        items = [(m.label, self._bare(m.phrase)) for m in self.mentions(text)]
        if not sizes:
            items = [(lab, " ".join(w for w in p.split() if w not in SIZES)) for lab, p in items]
        return self._distinct(items)

    def claims(self, text: str) -> list[Claim]:
        """Distinct claims: a mention without a count claims its object (`phrases` with sizes,
        from those mentions), then each distinct count as Claim("brown dog", 2, "two brown
        dogs"); the count is written as a number word."""
        ms = self.mentions(text)
        claims = [Claim(p) for p in self._distinct([(m.label, self._bare(m.phrase)) for m in ms if m.count is None])]
        counts: dict[tuple[str, int], str] = {}
        for m in ms:
            if m.count is not None:
                words = m.phrase.split()
                number = NUMBER_WORDS[m.count] if m.count < len(NUMBER_WORDS) else str(m.count)
                rest = " ".join(words[_count_len(words) :])
                counts.setdefault((self._bare(m.phrase), m.count), f"{number} {rest}")
        return claims + [Claim(p, k, t) for (p, k), t in counts.items()]

    def look_phrase(self, claim: Claim) -> str:
        """The claim's phrase without size words ("red bus" for "big red bus", "brown dog" for
        two brown dogs): a wrong size or count is judged by looking at the object itself."""
        return " ".join(w for w in claim.phrase.split() if w not in SIZES) or claim.phrase

    def check_question(self, claim_text: str) -> str:
        """ "Is there a red bus in the image?", "Is there an apple ...?", "Are there exactly two
        brown dogs in the image?", "Is there exactly one dog in the image?"."""
        if self.is_count(claim_text):
            if claim_text.split()[0] in ("one", "1"):
                return f"Is there exactly {claim_text} in the image?"
            return f"Are there exactly {claim_text} in the image?"
        article = "an" if claim_text[:1] and claim_text[0] in "aeiou" else "a"
        return f"Is there {article} {claim_text} in the image?"

    def is_count(self, claim_text: str) -> bool:
        """Whether the claim text starts with a count word."""
        return _count_len(claim_text.lower().split()) > 0

    def truth_labels(self, record: ImageRecord, from_captions: bool = False) -> set[str]:
        """The categories annotated in `record`; from_captions: also those its reference
        captions mention (negated mentions excluded, as in `mentions`)."""
        labels = {o.category for o in record.objects}
        if from_captions:
            for c in record.captions:
                labels.update(m.label for m in self.mentions(c))
        return labels
