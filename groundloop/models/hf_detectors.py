"""Open-vocabulary detectors from transformers: GroundingDINO and OWLv2 / OWL-ViT.

`HFDetector` wraps a transformers zero-shot detection model and its processor behind the
`Detector` protocol: per image a list of phrases in, a list of `Detection`s out, with boxes
normalized xyxy in [0, 1] and greedy NMS applied within each phrase.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

import torch
from PIL import Image

from groundloop.models.detection import Detection, clip_box, nms

__all__ = ["HFDetector", "GROUNDING_DINO_TYPES", "OWL_TYPES"]

GROUNDING_DINO_TYPES = frozenset({"grounding-dino", "mm-grounding-dino"})
OWL_TYPES = frozenset({"owlv2", "owlvit"})

_WORD = re.compile(r"[a-z0-9]+")


def _normalize_phrase(phrase: str) -> str:
    """Lowercase, single-spaced, without periods (GroundingDINO uses '.' as separator)."""
    return " ".join(phrase.replace(".", " ").lower().split())


def _unique_phrases(phrases: Sequence[str]) -> list[tuple[str, str]]:
    """(normalized, original) for each distinct non-blank phrase, first occurrence kept."""
    seen: dict[str, str] = {}
    for p in phrases:
        norm = _normalize_phrase(p)
        if norm and norm not in seen:
            seen[norm] = p
    return list(seen.items())


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("##", ""))


def match_phrase(label: str, candidates: Sequence[str]) -> int | None:
    """Index of the candidate with the best word overlap with `label`, or None if none overlap.

    GroundingDINO labels are the decoded text tokens above `text_threshold`, which can be a
    sub-span of one query phrase ("circle" for "red circle") or straddle several. An exact
    match wins; otherwise the highest Jaccard overlap of word sets; ties go to the earlier
    candidate (the one that comes first in the prompt).
    """
    label_norm = " ".join(_words(label))
    if not label_norm:
        return None
    best, best_score = None, 0.0
    label_set = set(label_norm.split())
    for i, cand in enumerate(candidates):
        cand_words = _words(cand)
        if " ".join(cand_words) == label_norm:
            return i
        cand_set = set(cand_words)
        inter = len(label_set & cand_set)
        if inter == 0:
            continue
        score = inter / len(label_set | cand_set)
        if score > best_score:
            best, best_score = i, score
    return best


class HFDetector:
    """A `Detector` over transformers' GroundingDINO or OWLv2 (chosen by config.model_type).

    `box_threshold` is the score threshold for keeping a box (GroundingDINO's `threshold`,
    OWL's `threshold`); `text_threshold` is GroundingDINO's per-token threshold that decides
    which prompt tokens form a box's label (unused by OWL); `nms_iou` is the IoU above which
    a lower-scoring box of the same phrase is suppressed. `batch_size` images go through one
    forward pass.
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
        nms_iou: float = 0.5,
        batch_size: int = 8,
    ) -> None:
        model_type = getattr(model.config, "model_type", None)
        if model_type in GROUNDING_DINO_TYPES:
            self.kind = "grounding-dino"
        elif model_type in OWL_TYPES:
            self.kind = "owl"
        else:
            raise ValueError(
                f"HFDetector supports GroundingDINO {sorted(GROUNDING_DINO_TYPES)} and OWL "
                f"{sorted(OWL_TYPES)} models, not model_type={model_type!r}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.eval()
        self.processor = processor
        self.box_threshold = float(box_threshold)
        self.text_threshold = float(text_threshold)
        self.nms_iou = float(nms_iou)
        self.batch_size = int(batch_size)

    @classmethod
    def from_pretrained(
        cls,
        spec: str,
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
        nms_iou: float = 0.5,
        device: str | torch.device | None = None,
        batch_size: int = 8,
    ) -> HFDetector:
        """Load model + processor from a hub id or local folder (transformers' usual path)."""
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = AutoModelForZeroShotObjectDetection.from_pretrained(spec).to(device)
        processor = AutoProcessor.from_pretrained(spec)  # type: ignore[no-untyped-call]  # untyped in transformers
        return cls(
            model,
            processor,
            box_threshold=box_threshold,
            text_threshold=text_threshold,
            nms_iou=nms_iou,
            batch_size=batch_size,
        )

    @property
    def device(self) -> torch.device:
        return cast(torch.device, next(self.model.parameters()).device)

    def detect(self, images: list[Image.Image], phrases: list[list[str]]) -> list[list[Detection]]:
        if len(images) != len(phrases):
            raise ValueError(
                f"detect() needs one phrase list per image: got {len(images)} images and {len(phrases)} phrase lists"
            )
        results: list[list[Detection]] = [[] for _ in images]
        # Images with no (non-blank) phrase are skipped: nothing to ground.
        todo = [(i, _unique_phrases(phrases[i])) for i in range(len(images))]
        todo = [(i, q) for i, q in todo if q]
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            imgs = [images[i].convert("RGB") for i, _ in chunk]
            queries = [q for _, q in chunk]
            if self.kind == "grounding-dino":
                dets = self._detect_grounding_dino(imgs, queries)
            else:
                dets = self._detect_owl(imgs, queries)
            for (i, _), d in zip(chunk, dets, strict=True):
                results[i] = nms(d, self.nms_iou)
        return results

    # -- backends -------------------------------------------------------------------------

    def _forward(self, inputs: Any) -> tuple[Any, Any]:
        """(inputs on the model's device, model outputs)."""
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        with torch.no_grad():
            return inputs, self.model(**inputs)

    def _detect_grounding_dino(
        self, images: list[Image.Image], queries: list[list[tuple[str, str]]]
    ) -> list[list[Detection]]:
        # One prompt per image ("a. b. c."), all images in one padded forward pass: the
        # processor pads the texts (attention_mask) and the images (pixel_mask) itself.
        texts = [" ".join(f"{norm}." for norm, _ in q) for q in queries]
        inputs = self.processor(images=images, text=texts, return_tensors="pt", padding=True, truncation=True)
        inputs, outputs = self._forward(inputs)
        sizes = [(im.height, im.width) for im in images]
        processed = self.processor.post_process_grounded_object_detection(
            outputs,
            input_ids=inputs["input_ids"],
            threshold=self.box_threshold,
            text_threshold=self.text_threshold,
            target_sizes=sizes,
        )
        special = set(getattr(self.processor.tokenizer, "all_special_tokens", []))
        out: list[list[Detection]] = []
        for res, q, (h, w) in zip(processed, queries, sizes, strict=True):
            norms = [norm for norm, _ in q]
            dets: list[Detection] = []
            # `text_labels`, not `labels` (deprecated alias with a FutureWarning).
            for label, score, box in zip(res["text_labels"], res["scores"], res["boxes"], strict=True):
                label = " ".join(t for t in str(label).split() if t not in special)
                k = match_phrase(label, norms)
                if k is None:
                    continue
                dets.append(Detection(q[k][1], _normalize_box(box, w, h), float(score)))
            out.append(dets)
        return out

    def _detect_owl(self, images: list[Image.Image], queries: list[list[tuple[str, str]]]) -> list[list[Detection]]:
        # Nested text lists batch natively: the processor pads every image's query list to
        # the longest with " " queries, which the model does NOT mask (their first token is
        # BOS, not pad), so their logits are masked here before post-processing.
        texts = [[norm for norm, _ in q] for q in queries]
        inputs = self.processor(images=images, text=texts, return_tensors="pt", truncation=True)
        inputs, outputs = self._forward(inputs)
        logits = outputs.logits.clone()
        for b, q in enumerate(queries):
            logits[b, :, len(q) :] = torch.finfo(logits.dtype).min
        outputs.logits = logits
        sizes = [(im.height, im.width) for im in images]
        # Boxes come back scaled to the padded square (max(h, w)), i.e. in the original
        # image's pixel frame; dividing by (w, h) normalizes them.
        processed = self.processor.post_process_grounded_object_detection(
            outputs, threshold=self.box_threshold, target_sizes=sizes
        )
        out: list[list[Detection]] = []
        for res, q, (h, w) in zip(processed, queries, sizes, strict=True):
            dets = [
                Detection(q[int(k)][1], _normalize_box(box, w, h), float(score))
                for k, score, box in zip(res["labels"], res["scores"], res["boxes"], strict=True)
                if int(k) < len(q)
            ]
            out.append(dets)
        return out


def _normalize_box(box: torch.Tensor, width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = sorted((x0 / width, x1 / width))
    y0, y1 = sorted((y0 / height, y1 / height))
    return clip_box((x0, y0, x1, y1))
