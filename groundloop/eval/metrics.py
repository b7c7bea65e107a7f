"""Caption and hallucination metrics: CHAIR, POPE, BLEU-4 and CIDEr-D, all Java-free.

Pure functions over strings and label sets (no Ray, no model code):

- CHAIR (Rohrbach et al., 2018) over the object mentions of a `groundloop.vocab.Vocabulary`
  (`shapes`: colour+shape types, "red circle"; `coco`: the CHAIR COCO synonym table).
- `tokenize` (`groundloop.vocab.lexicon`): a PTB-like tokenizer standing in for
  pycocoevalcap's Java PTBTokenizer.
- POPE lives in `groundloop.eval.pope`.
- `caption_scores`: BLEU-4 and CIDEr-D through pycocoevalcap's scorers on `tokenize`'s tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from groundloop.vocab import Vocabulary
from groundloop.vocab.lexicon import tokenize

__all__ = ["chair", "chair_per_caption", "caption_scores", "tokenize"]

# ---------------------------------------------------------------------------------------------
# CHAIR
# ---------------------------------------------------------------------------------------------


def chair_per_caption(captions: Sequence[str], truths: Sequence[set[str]], vocab: Vocabulary) -> list[list[str]]:
    """For each caption, the labels of its hallucinated mentions (not in its truth set), in
    order, one per mention (a label mentioned twice and absent appears twice)."""
    if len(captions) != len(truths):
        raise ValueError(f"{len(captions)} captions but {len(truths)} truth sets")
    return [[m.label for m in vocab.mentions(c) if m.label not in t] for c, t in zip(captions, truths, strict=True)]


def chair(captions: Sequence[str], truths: Sequence[set[str]], vocab: Vocabulary) -> dict[str, float]:
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
        ms = [m.label for m in vocab.mentions(c)]
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


def caption_scores(predictions: Mapping[Any, str], references: Mapping[Any, Sequence[str]]) -> dict[str, float]:
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
        raise ValueError(
            f"predictions and references differ on {len(missing)} ids, e.g. {sorted(map(str, missing))[:5]}"
        )
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
