"""VL-GenRM's judgements as text: the judge prompt, the critique (every claim checked, then a
tally), the verdict ("Verdict: A" / "Verdict: B") and its parsing. The model code is in
`groundloop.genrm.judge`."""

from __future__ import annotations

import re
from collections.abc import Sequence

from groundloop.genrm.experts import Checked

LABELS = ("A", "B")


VERDICT = "Verdict:"


JUDGE_TEMPLATE = "Question: {prompt} Response A: {a} Response B: {b} Which response is faithful to the image?"


def judge_prompt(prompt: str, a: str, b: str) -> str:
    return JUDGE_TEMPLATE.format(prompt=prompt, a=a, b=b)


def critique(a: Checked, b: Checked) -> str:
    """Critique-style chain of thought: every claim of each response checked against the image,
    then the `tally` of refuted and confirmed claims where the two differ."""

    def part(label: str, c: Checked) -> str:
        body = "; ".join(f"{cl.text} {'yes' if h else 'no'}" for cl, h in zip(c.claims, c.holds))
        return f"{label}: {body or 'nothing to check'}."

    return f"{part('A', a)} {part('B', b)} " + tally(a.texts, list(a.holds), b.texts, list(b.holds))


def tally(claims_a: Sequence[str], checks_a: Sequence[bool], claims_b: Sequence[str], checks_b: Sequence[bool]) -> str:
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


def tally_prefers(
    claims_a: Sequence[str], checks_a: Sequence[bool], claims_b: Sequence[str], checks_b: Sequence[bool]
) -> str | None:
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


def differing(
    claims_a: Sequence[str], checks_a: Sequence[bool], claims_b: Sequence[str], checks_b: Sequence[bool]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """(refuted, confirmed) among the claims each response alone makes: A's, then B's."""

    def count(claims: Sequence[str], checks: Sequence[bool], other: Sequence[str]) -> tuple[int, int]:
        own = [ok for c, ok in zip(claims, checks) if c not in other]
        return own.count(False), own.count(True)

    return count(claims_a, checks_a, claims_b), count(claims_b, checks_b, claims_a)


def calibrate_check_threshold(
    pairs: Sequence[tuple[Sequence[str], Sequence[str], str]], margins: Sequence[Sequence[float]], grid: Sequence[float]
) -> tuple[float, list[float]]:
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
            prefers = tally_prefers(ca, checks[: len(ca)], cb, checks[len(ca) :])
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
