"""POPE (Li et al., 2023): yes/no object-probing questions with random, popular and
adversarial negatives, answer parsing and scores. Pure functions over label sets."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from groundloop.vocab.lexicon import tokenize

POPE_KINDS = ("random", "popular", "adversarial")


def cooccurrence_counts(truths: Iterable[set[str]]) -> dict[str, dict[str, int]]:
    """counts[a][b]: the number of images holding both a and b (a != b)."""
    counts: dict[str, Counter[str]] = {}
    for t in truths:
        for a in t:
            c = counts.setdefault(a, Counter())
            for b in t:
                if b != a:
                    c[b] += 1
    return {a: dict(c) for a, c in counts.items()}


def pope_questions(
    truths: Sequence[set[str]],
    all_labels: Sequence[str],
    kind: str = "random",
    n_per_image: int = 6,
    seed: int = 0,
    cooccurrence: Mapping[str, Mapping[str, int]] | None = None,
) -> list[dict[str, Any]]:
    """POPE yes/no probes: per image, up to n_per_image // 2 present labels ('yes') and as many
    absent labels from `all_labels` ('no').

    Both halves take min(n_per_image // 2, #present, #absent), so every image (and the set)
    stays balanced at 50% 'yes', as POPE assumes. Negatives:
      random: uniform over the absent labels.
      popular: the absent labels held by the most images of `truths`.
      adversarial: the absent labels that co-occur most with the image's present labels,
        scored by sum over present a of cooccurrence[a][b]; `cooccurrence` defaults to
        cooccurrence_counts(truths) (pass one from a training split to probe its prior).
    Ties go to the earlier label in `all_labels`. Deterministic for a given seed.
    """
    if kind not in POPE_KINDS:
        raise ValueError(f"kind must be one of {POPE_KINDS}, got {kind!r}")
    rng = random.Random(seed)
    order = {lab: i for i, lab in enumerate(all_labels)}
    freq = Counter(lab for t in truths for lab in t)
    cooc = cooccurrence if cooccurrence is not None else cooccurrence_counts(truths)
    out: list[dict[str, Any]] = []
    for i, truth in enumerate(truths):
        present = sorted(truth, key=lambda lab: (order.get(lab, len(order)), lab))
        absent = [lab for lab in all_labels if lab not in truth]
        n = min(n_per_image // 2, len(present), len(absent))
        if n == 0:
            continue
        positives = rng.sample(present, n)
        if kind == "random":
            negatives = rng.sample(absent, n)
        elif kind == "popular":
            negatives = sorted(absent, key=lambda lab: (-freq[lab], order[lab]))[:n]
        else:

            def score(lab: str, present: list[str] = present) -> int:
                return sum(cooc.get(a, {}).get(lab, 0) for a in present)

            negatives = sorted(absent, key=lambda lab: (-score(lab), order[lab]))[:n]
        out += [{"image_index": i, "label": lab, "answer": "yes"} for lab in positives]
        out += [{"image_index": i, "label": lab, "answer": "no"} for lab in negatives]
    return out


def pope_question_text(label: str) -> str:
    return f"Is there a {label} in the image?"


_YES = {"yes", "yeah", "yep", "true"}
_NO = {"no", "nope", "false"}


def parse_yes_no(text: str) -> str | None:
    """'yes', 'no', or None when the answer is neither or both.

    The first word decides when it is a yes/no word ("No, there is not" -> 'no'); otherwise a
    yes word or a no word anywhere, if only one kind occurs ("There is no cat" -> 'no').
    """
    toks = tokenize(text)
    if not toks:
        return None
    if toks[0] in _YES:
        return "yes"
    if toks[0] in _NO:
        return "no"
    has_yes = any(t in _YES for t in toks)
    has_no = any(t in _NO for t in toks)
    if has_yes != has_no:
        return "yes" if has_yes else "no"
    return None


def pope_scores(questions: Sequence[Mapping[str, Any]], answers: Sequence[str]) -> dict[str, float]:
    """Accuracy, precision, recall and F1 (positive class 'yes') and the 'yes' ratio.

    An answer that parses as neither yes nor no is wrong for accuracy and counts as 'no' for
    precision/recall/F1 (so a missed 'yes' is a false negative and a 'no' question is not a
    false positive). `n_unparsed` counts them.
    """
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    tp = fp = fn = tn = unparsed = 0
    for q, a in zip(questions, answers, strict=True):
        pred = parse_yes_no(a)
        unparsed += pred is None
        if q["answer"] == "yes":
            tp += pred == "yes"
            fn += pred != "yes"
        else:
            fp += pred == "yes"
            tn += pred == "no"
    n = len(questions)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": (tp + tn) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "yes_ratio": (tp + fp) / n if n else 0.0,
        "n": n,
        "n_unparsed": unparsed,
    }
