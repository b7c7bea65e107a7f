"""VL-GenRM's preference pairs: responses ranked by the expert's checks (never by a hallucinated
"negative"), the no-expert baseline (`self_checks`) and the extra probe questions."""

from __future__ import annotations

import random
from collections.abc import Sequence

from groundloop.genrm.critique import LABELS, tally_prefers
from groundloop.genrm.experts import Checked
from groundloop.vocab import Claim, Vocabulary


def probe_phrases(claims: Sequence[Sequence[str]], n: int, rng: random.Random, vocab: Vocabulary) -> list[list[str]]:
    """Extra questions for the expert, per image: up to `n` distinct object phrases drawn
    uniformly from the vocabulary of object claims made on any image (`claims[i]`: every claim
    of image i's responses), leaving out the ones made on image i itself (already checked).
    The policy's own claims are mostly true and its false ones are its habitual confusions; a
    checker trained on them alone rarely sees an object that is simply absent."""
    objects = [[c for c in cs if not vocab.is_count(c)] for cs in claims]
    phrases = sorted({c for cs in objects for c in cs})
    out = []
    for cs in objects:
        made = set(cs)
        pool = [c for c in phrases if c not in made]
        out.append(rng.sample(pool, min(n, len(pool))))
    return out


def self_checks(responses: Sequence[str], vocab: Vocabulary, quorum: float = 0.5) -> list[Checked]:
    """The baseline without a vision expert: the VLM's own belief labels the claims. A claim
    holds when at least `quorum` of the image's responses make it too (for a count: the same
    count of that shape), so what the model habitually says (its priors included) counts as true."""
    all_claims = [vocab.claims(r) for r in responses]
    votes: dict[Claim, int] = {}
    for cs in all_claims:
        for c in set(cs):
            votes[c] = votes.get(c, 0) + 1
    need = quorum * len(responses)
    return [Checked(r, tuple(cs), tuple(votes[c] >= need for c in cs)) for r, cs in zip(responses, all_claims)]


def build_pairs(
    checked: Sequence[Checked],
    max_pairs: int,
    rng: random.Random,
    graded: int = 0,
    complete: int = 0,
    separable: int = 0,
) -> list[tuple[int, int]]:
    """(chosen, rejected) index pairs among one prompt's responses: a fully verified response
    over one with a refuted claim. Two verified responses, or (by default) two refuted ones,
    are not separated by faithfulness, so no such pair is made; identical texts are never
    paired. With `graded` > 0, up to that many more pairs of two refuted responses whose
    numbers of refuted claims differ, fewer over more (a judge then sees critiques in which
    both responses fail a check); equal numbers still cannot be separated. With `complete` > 0,
    up to that many more pairs of two verified responses, the one with more verified claims
    that the other does not make over the other (the more complete of two faithful
    descriptions; `tally_prefers` on the expert's checks). With `separable` > 0, up to that
    many more pairs drawn uniformly from every pair of different responses that the expert's
    checks separate by `tally_prefers` (the tally's preferred one first), not already paired:
    the comparisons a Best-of-N knockout among the policy's own samples asks for, e.g. two
    responses that each make a false claim, or make different true ones."""
    good = [i for i, c in enumerate(checked) if c.verified]
    bad = [i for i, c in enumerate(checked) if c.refuted > 0]
    pairs = [(g, b) for g in good for b in bad if checked[g].response != checked[b].response]
    rng.shuffle(pairs)
    pairs = pairs[:max_pairs]
    if graded > 0:
        fewer = [
            (i, j)
            for i in bad
            for j in bad
            if checked[i].refuted < checked[j].refuted and checked[i].response != checked[j].response
        ]
        rng.shuffle(fewer)
        pairs += fewer[:graded]

    def first_wins(i: int, j: int) -> bool:  # the expert's tally prefers response i to j
        return (
            tally_prefers(checked[i].texts, list(checked[i].holds), checked[j].texts, list(checked[j].holds))
            == LABELS[0]
        )

    if complete > 0:
        more = [(i, j) for i in good for j in good if first_wins(i, j)]
        rng.shuffle(more)
        pairs += more[:complete]
    if separable > 0:
        taken = set(pairs)
        pool = [
            (i, j)
            for i in range(len(checked))
            for j in range(len(checked))
            if (i, j) not in taken
            and (j, i) not in taken
            and checked[i].response != checked[j].response
            and first_wins(i, j)
        ]
        rng.shuffle(pool)
        pairs += pool[:separable]
    return pairs
