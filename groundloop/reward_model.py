"""VL-GenRM's pure parts: expert-verified preference pairs, critiques, the mixture loss,
margin-based rejection and verdict parsing (Best-of-N by pairwise judging: `groundloop.best_of_n`).

The reward model is a VLM that reads (image, question, response A, response B), writes a
critique that checks the responses' claims against the image, and ends with
"Verdict: A" or "Verdict: B". Its preference is read from the verdict's log-probabilities.
Everything here works on strings, detections and tensors; the model code is in
`groundloop.genrm`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from groundloop.models.detection import Detection
from groundloop.vocab import Claim, Vocabulary

LABELS = ("A", "B")
VERDICT = "Verdict:"
JUDGE_TEMPLATE = "Question: {prompt} Response A: {a} Response B: {b} Which response is faithful to the image?"

def judge_prompt(prompt: str, a: str, b: str) -> str:
    return JUDGE_TEMPLATE.format(prompt=prompt, a=a, b=b)


# ---------------------------------------------------------------------------------------------
# The vision expert's verification of a response
# ---------------------------------------------------------------------------------------------

def expert_queries(claims: Sequence[Claim], vocab: Vocabulary) -> list[str]:
    """Phrases to ask the detector: each claim's phrase (the object, or what a count counts)
    and what to look at for it (`vocab.look_phrase`)."""
    return list(dict.fromkeys([c.phrase for c in claims] + [vocab.look_phrase(c) for c in claims]))


def check_claims(claims: Sequence[Claim], detections: Sequence[Detection]) -> list[bool]:
    """Each claim against the detector's answer to `expert_queries(claims)`: an object claim
    holds when its phrase was detected, a count claim when the shape was detected that often."""
    found: dict[str, int] = {}
    for d in detections:
        found[d.phrase] = found.get(d.phrase, 0) + 1
    return [found.get(c.phrase, 0) == c.count if c.count is not None else found.get(c.phrase, 0) > 0
            for c in claims]


def claim_boxes(claims: Sequence[Claim], detections: Sequence[Detection],
                vocab: Vocabulary) -> list[list[tuple[float, ...]]]:
    """Where the expert found what each claim is about (its `vocab.look_phrase`, asked by
    `expert_queries`): the normalized xyxy boxes of those detections, none when it found none."""
    return [[tuple(d.box) for d in detections if d.phrase == vocab.look_phrase(c)] for c in claims]


def perturb(detections: Sequence[Detection], queries: Sequence[str], miss_rate: float,
            false_alarm_rate: float, rng: random.Random) -> list[Detection]:
    """A noisier expert: each detection is dropped with probability miss_rate, and each
    queried phrase gains a spurious detection with probability false_alarm_rate."""
    kept = [d for d in detections if rng.random() >= miss_rate]
    extra = [Detection(q, (0.0, 0.0, 0.1, 0.1), 1.0) for q in queries if rng.random() < false_alarm_rate]
    return kept + extra


@dataclass(frozen=True)
class Checked:
    """A response with its claims and the expert's verdict on each."""

    response: str
    claims: tuple[Claim, ...]
    holds: tuple[bool, ...]

    @property
    def texts(self) -> list[str]:
        """The claims as the critique writes them."""
        return [c.text for c in self.claims]

    @property
    def refuted(self) -> int:
        return sum(not h for h in self.holds)

    @property
    def verified(self) -> bool:
        """Every claim checked out (and there was at least one)."""
        return bool(self.claims) and self.refuted == 0


def probe_phrases(claims: Sequence[Sequence[str]], n: int, rng: random.Random,
                  vocab: Vocabulary) -> list[list[str]]:
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


def build_pairs(checked: Sequence[Checked], max_pairs: int, rng: random.Random,
                graded: int = 0, complete: int = 0, separable: int = 0) -> list[tuple[int, int]]:
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
        fewer = [(i, j) for i in bad for j in bad
                 if checked[i].refuted < checked[j].refuted and checked[i].response != checked[j].response]
        rng.shuffle(fewer)
        pairs += fewer[:graded]
    def first_wins(i: int, j: int) -> bool:  # the expert's tally prefers response i to j
        return tally_prefers(checked[i].texts, list(checked[i].holds),
                             checked[j].texts, list(checked[j].holds)) == LABELS[0]

    if complete > 0:
        more = [(i, j) for i in good for j in good if first_wins(i, j)]
        rng.shuffle(more)
        pairs += more[:complete]
    if separable > 0:
        taken = set(pairs)
        pool = [(i, j) for i in range(len(checked)) for j in range(len(checked))
                if (i, j) not in taken and (j, i) not in taken
                and checked[i].response != checked[j].response and first_wins(i, j)]
        rng.shuffle(pool)
        pairs += pool[:separable]
    return pairs


# ---------------------------------------------------------------------------------------------
# Critiques and verdicts
# ---------------------------------------------------------------------------------------------

def critique(a: Checked, b: Checked) -> str:
    """Critique-style chain of thought: every claim of each response checked against the image,
    then the `tally` of refuted and confirmed claims where the two differ."""
    def part(label: str, c: Checked) -> str:
        body = "; ".join(f"{cl.text} {'yes' if h else 'no'}" for cl, h in zip(c.claims, c.holds))
        return f"{label}: {body or 'nothing to check'}."

    return f"{part('A', a)} {part('B', b)} " + tally(a.texts, list(a.holds), b.texts, list(b.holds))


def tally(claims_a: Sequence[str], checks_a: Sequence[bool], claims_b: Sequence[str],
          checks_b: Sequence[bool]) -> str:
    """The critique's last sentences: of the claims only one response makes (a claim both make
    says nothing about which is better), how many the checks refuted and how many they
    confirmed in each, then what that says (`tally_prefers`: fewer refuted wins, then more
    confirmed): "A has fewer refuted claims.", "Refuted even; B has more confirmed claims." or
    "They are even." The verdict follows the conclusion (without it, it followed the tally on
    69.5 % of Best-of-N comparisons: `benchmarks/genrm_tally_rules.py`)."""
    (ra, ca), (rb, cb) = differing(claims_a, checks_a, claims_b, checks_b)
    better = _prefers((ra, ca), (rb, cb))
    if better is None:
        conclusion = "They are even."
    elif ra != rb:
        conclusion = f"{better} has fewer refuted claims."
    else:
        conclusion = f"Refuted even; {better} has more confirmed claims."
    return f"Where they differ, refuted: A {ra}, B {rb}; confirmed: A {ca}, B {cb}. {conclusion}"


def tally_prefers(claims_a: Sequence[str], checks_a: Sequence[bool], claims_b: Sequence[str],
                  checks_b: Sequence[bool]) -> str | None:
    """The label the tally favours: fewer refuted claims where they differ (faithfulness first,
    as the expert's pairs rank), then, on a tie, more confirmed ones (the more complete of two
    equally faithful descriptions); None when both tie."""
    return _prefers(*differing(claims_a, checks_a, claims_b, checks_b))


def _prefers(a: tuple[int, int], b: tuple[int, int]) -> str | None:
    """`tally_prefers` on (refuted, confirmed) counts of A and of B."""
    (ra, ca), (rb, cb) = a, b
    if (ra, -ca) == (rb, -cb):
        return None
    return LABELS[int((rb, -cb) < (ra, -ca))]


def critique_so_far(claims: Sequence[Sequence[str]], checks: Sequence[bool]) -> str:
    """A `critique` being written slot by slot (the scaffolded critique): claims[0] are A's
    claim texts, claims[1] B's; `checks` the verdicts written so far, in order. While a claim
    is unchecked the text ends with that claim (the model writes "yes" or "no" next); once
    every claim is checked it is exactly `critique` of the two responses, tally included."""
    out, k, total = [], 0, sum(len(c) for c in claims)
    for label, cl in zip(LABELS, claims):
        parts: list[str] = []
        for text in cl:
            if k == len(checks):
                out.append(f"{label}: {'; '.join(parts + [text])}")
                return " ".join(out)
            parts.append(f"{text} {'yes' if checks[k] else 'no'}")
            k += 1
        out.append(f"{label}: {'; '.join(parts) or 'nothing to check'}.")
    if len(checks) != total:
        raise ValueError(f"{len(checks)} checks for {total} claims")
    n_a = len(claims[0])
    return " ".join(out + [tally(claims[0], checks[:n_a], claims[1], checks[n_a:])])


def differing(claims_a: Sequence[str], checks_a: Sequence[bool], claims_b: Sequence[str],
              checks_b: Sequence[bool]) -> tuple[tuple[int, int], tuple[int, int]]:
    """(refuted, confirmed) among the claims each response alone makes: A's, then B's."""
    def count(claims: Sequence[str], checks: Sequence[bool], other: Sequence[str]) -> tuple[int, int]:
        own = [ok for c, ok in zip(claims, checks) if c not in other]
        return own.count(False), own.count(True)

    return count(claims_a, checks_a, claims_b), count(claims_b, checks_b, claims_a)


def calibrate_check_threshold(pairs: Sequence[tuple[Sequence[str], Sequence[str], str]],
                              margins: Sequence[Sequence[float]], grid: Sequence[float]) -> tuple[float, list[float]]:
    """The check threshold for factored critiques: a claim is checked "yes" when its margin
    (logit Yes - logit No of its question) is at least the threshold. Picked from `grid` as the
    one whose tally (`tally_prefers`) best separates labelled training pairs (claims of
    A, claims of B, label; `margins[i]` the margins of A's claims then B's), a tie counting a
    half. Returns the threshold and the accuracy at every grid point."""
    if not pairs or not grid:
        raise ValueError("calibration needs labelled pairs and a grid of thresholds")
    scores = []
    for tau in grid:
        acc = 0.0
        for (ca, cb, label), m in zip(pairs, margins):
            checks = [x >= tau for x in m]
            prefers = tally_prefers(ca, checks[:len(ca)], cb, checks[len(ca):])
            acc += 0.5 if prefers is None else float(prefers == label)
        scores.append(acc / len(pairs))
    return grid[max(range(len(grid)), key=lambda i: (scores[i], -abs(grid[i])))], scores


def description(seen: Sequence[str]) -> str:
    """Description-style chain of thought (the baseline): what the image shows, no checking."""
    if not seen:
        return "The image shows nothing."
    return "The image shows " + ", ".join(seen) + "."


def thought(a: Checked, b: Checked, style: str) -> str:
    """The chain of thought a training judgement starts with: a `critique` of both responses'
    claims, or (the baseline) a `description` of the objects the expert confirmed."""
    if style == "critique":
        return critique(a, b)
    if style == "description":
        seen = [c.text for x in (a, b) for c, h in zip(x.claims, x.holds) if h and c.count is None]
        return description(list(dict.fromkeys(seen)))
    raise ValueError(f"thought style must be 'critique' or 'description', got {style!r}")


def with_verdict(thought: str, label: str) -> str:
    if label not in LABELS:
        raise ValueError(f"verdict must be one of {LABELS}, got {label!r}")
    return f"{thought} {VERDICT} {label}"


_VERDICT_RE = re.compile(re.escape(VERDICT) + r"\s*(?:response\s+)?\(?([AB])\b", re.IGNORECASE)


def parse_verdict(text: str) -> str | None:
    """The label of the last "Verdict: X" in a generated judgement, or None when there is no
    well-formed verdict (missing, truncated, or naming something other than A or B)."""
    found = _VERDICT_RE.findall(text or "")
    return found[-1].upper() if found else None


def thought_of(text: str) -> str:
    """A judgement's chain of thought: everything before its first verdict marker."""
    i = text.find(VERDICT)
    return (text if i < 0 else text[:i]).strip()


# ---------------------------------------------------------------------------------------------
# Losses, margins and rejection
# ---------------------------------------------------------------------------------------------

def preference(logp_a: torch.Tensor, logp_b: torch.Tensor) -> torch.Tensor:
    """P(A is better) from the log-probabilities of the two verdicts, renormalised over them."""
    return torch.sigmoid(logp_a - logp_b)


def margin(logp_correct: torch.Tensor, logp_wrong: torch.Tensor) -> torch.Tensor:
    """log p(correct verdict) - log p(wrong verdict): > 0 means the judge gets it right."""
    return logp_correct - logp_wrong


def mixture_loss(token_logp: torch.Tensor, loss_mask: torch.Tensor, logp_correct: torch.Tensor,
                 logp_wrong: torch.Tensor, weight: torch.Tensor, lam: float) -> torch.Tensor:
    """Fine-tuning loss on the critique and verdict plus lam x a correctness-weighted
    Bradley-Terry term on the verdict.

    token_logp: (B, T) log-prob of each target token; loss_mask: (B, T) 1 on critique and
    verdict tokens; logp_correct / logp_wrong: (B,) log-probs of the right and wrong verdict
    after the critique; weight: (B,) per-example weight of the BT term (1 for a verified-correct
    label, 0 to switch it off for an example).
    """
    sft = -(token_logp * loss_mask).sum() / loss_mask.sum().clamp(min=1)
    bt = -(F.logsigmoid(margin(logp_correct, logp_wrong)) * weight).sum() / weight.sum().clamp(min=1e-8)
    return sft + lam * bt


def margin_threshold(margins: Sequence[float], correct: Sequence[bool], retention: float) -> float:
    """The margin above which a `retention` fraction of all sampled critiques is kept, counting
    only correct ones (so the threshold is never below 0 when enough critiques are correct)."""
    ok = sorted((m for m, c in zip(margins, correct) if c), reverse=True)
    n_keep = int(round(retention * len(margins)))
    if not ok or n_keep <= 0:
        return float("inf")
    return ok[min(n_keep, len(ok)) - 1]


def reject(margins: Sequence[float], correct: Sequence[bool], threshold: float) -> list[bool]:
    """Rejection sampling: keep a critique when its verdict is correct and its margin is at
    least the threshold."""
    if len(margins) != len(correct):
        raise ValueError(f"{len(margins)} margins but {len(correct)} correctness flags")
    return [bool(c) and m >= threshold for m, c in zip(margins, correct)]


def reject_per_label(margins: Sequence[float], correct: Sequence[bool], labels: Sequence[str],
                     retention: float) -> tuple[list[bool], dict[str, float]]:
    """Rejection with the threshold set within each right label's critiques (`margin_threshold`
    per label), so each keeps `retention` of its own. One threshold for all keeps mostly the
    label the judge already leans to (its margins there are larger), and the next round learns
    the lean: in the run that showed it, 2 A-labelled critiques kept for every B-labelled one,
    and the next round picked A for 74 % of the bench pairs (half are A). Returns what is kept
    and each label's threshold."""
    if not len(margins) == len(correct) == len(labels):
        raise ValueError(f"{len(margins)} margins, {len(correct)} correctness flags, {len(labels)} labels")
    keep = [False] * len(margins)
    thresholds = {}
    for label in sorted(set(labels)):
        idx = [i for i, x in enumerate(labels) if x == label]
        thresholds[label] = margin_threshold([margins[i] for i in idx], [correct[i] for i in idx], retention)
        for i, k in zip(idx, reject([margins[i] for i in idx], [correct[i] for i in idx], thresholds[label])):
            keep[i] = k
    return keep, thresholds
