"""Evaluating a captioner: greedy captions, inference-time grounding (iSVP), POPE, metrics.

Everything takes an injected `Sampler` and `Detector`, so the same code scores a shipped
ShapesWorld VLM on a laptop and a 7B LLaVA behind vLLM.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from PIL import Image

from groundloop import prompts
from groundloop.data.coco import ImageError, ImageRecord, load_image
from groundloop.eval import metrics
from groundloop.eval import pope as pope_lib
from groundloop.models.detection import Detector
from groundloop.sampling import Sampler
from groundloop.svp.grounding import grounding_text
from groundloop.vocab import Vocabulary

T = TypeVar("T")


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def load_images(records: Sequence[ImageRecord]) -> tuple[list[tuple[ImageRecord, Image.Image]], list[dict[str, Any]]]:
    """Readable images, and one error row per unreadable one (the rest still get evaluated)."""
    ok, errors = [], []
    for r in records:
        try:
            ok.append((r, load_image(r.path)))
        except ImageError as e:
            errors.append({"image_id": r.image_id, "path": str(r.path), "error": str(e)})
    return ok, errors


def caption(
    sampler: Sampler, images: Sequence[Image.Image], text: str | Sequence[str], batch_size: int = 32
) -> list[str]:
    """Greedy captions; `text` is one prompt for all images or one prompt per image."""
    texts = [text] * len(images) if isinstance(text, str) else list(text)
    out: list[str] = []
    for i in range(0, len(images), batch_size):
        out += [c[0] for c in sampler.generate(list(images[i : i + batch_size]), texts[i : i + batch_size])]
    return out


def union_phrases(captions: Sequence[str], vocab: Vocabulary) -> list[str]:
    """The distinct phrases of several captions of one image, in order of first mention."""
    out: list[str] = []
    for c in captions:
        out += [p for p in vocab.phrases(c) if p not in out]
    return out


def ground(
    detector: Detector, images: Sequence[Image.Image], captions: Sequence[str | Sequence[str]], vocab: Vocabulary
) -> list[str]:
    """The grounding text per image: the phrases of its caption (or of all its captions),
    kept only where the detector finds them, with their boxes."""
    phrases = [vocab.phrases(c) if isinstance(c, str) else union_phrases(c, vocab) for c in captions]
    return [grounding_text(d) for d in detector.detect(list(images), phrases)]


def grounded_recaption(
    sampler: Sampler,
    detector: Detector,
    images: Sequence[Image.Image],
    priors: Sequence[str],
    vocab: Vocabulary,
    batch_size: int = 32,
    extra_samples: int = 0,
    temperature: float = 1.0,
) -> tuple[list[str], list[str]]:
    """iSVP at inference: ground the prior captions, then caption again with `<context>`.

    extra_samples > 0 also samples that many captions per image at `temperature` and grounds
    the union of all their phrases: the detector then gets to verify alternatives the
    greedy prior did not name (SVP grounds K samples per image the same way).
    """
    pools: list[list[str]] = [[p] for p in priors]
    if extra_samples:
        for i in range(0, len(images), batch_size):
            samples = sampler.generate(
                list(images[i : i + batch_size]),
                [prompts.BASE_PROMPT] * len(images[i : i + batch_size]),
                n=extra_samples,
                temperature=temperature,
            )
            for j, s in enumerate(samples):
                pools[i + j] += s
    groundings = ground(detector, images, pools, vocab)
    guided = caption(sampler, images, [prompts.grounded_prompt(g) for g in groundings], batch_size)
    return groundings, guided


def pope(
    sampler: Sampler,
    images: Sequence[Image.Image],
    truths: Sequence[set[str]],
    labels: Sequence[str],
    batch_size: int = 32,
    n_per_image: int = 6,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """POPE accuracy and F1 for random, popular and adversarial negatives."""
    out = {}
    for kind in pope_lib.POPE_KINDS:
        qs = pope_lib.pope_questions(truths, labels, kind=kind, n_per_image=n_per_image, seed=seed)
        answers = caption(
            sampler,
            [images[q["image_index"]] for q in qs],
            [prompts.yes_no_question(q["label"]) for q in qs],
            batch_size,
        )
        out[kind] = pope_lib.pope_scores(qs, answers)
    return out


def caption_metrics(records: Sequence[ImageRecord], captions: Sequence[str], vocab: Vocabulary) -> dict[str, Any]:
    """CHAIR and recall against the instances; BLEU-4 and CIDEr-D over the whole set when
    reference captions exist."""
    truths = [vocab.truth_labels(r) for r in records]
    out: dict[str, Any] = metrics.chair(captions, truths, vocab) | {"vocabulary": vocab.name}
    with_refs = [(r, c) for r, c in zip(records, captions) if r.captions]
    if with_refs:
        out |= metrics.caption_scores(
            {r.image_id: c for r, c in with_refs}, {r.image_id: list(r.captions) for r, _ in with_refs}
        )
    return out
