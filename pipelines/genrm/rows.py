"""VL-GenRM's training and bench rows, built from the sampled responses and the expert's
checks (plain pandas, no Ray): preference pairs with their critiques, stage 0's yes/no claim
questions, the self-labelled baseline's labels, and ShapesWorld-RewardBench's pairs."""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path

import pandas as pd

from groundloop import prompts, vocab
from groundloop.data.coco import load_dataset
from groundloop.genrm import critique, experts, pairing
from groundloop.vocab import Vocabulary
from groundloop.worlds import reward_bench as rb
from pipelines.genrm.config import GenRMConfig


def vocabulary(cfg: GenRMConfig) -> Vocabulary:
    """The vocabulary claims are read with: data.vocabulary, or the one the training images'
    annotations call for."""
    return _vocabulary(cfg.data.vocabulary, cfg.data.path)


@functools.lru_cache(maxsize=8)
def _vocabulary(name: str, path: str) -> Vocabulary:
    return vocab.get(name) if name else vocab.for_records(load_dataset(Path(path).resolve()))


def make_pairs(cfg: GenRMConfig, samples: pd.DataFrame) -> pd.DataFrame:
    """Training judgements: (path, question, a, b, label, thought) per separable pair."""
    rng = random.Random(cfg.run.seed)
    words = vocabulary(cfg)
    rows = []
    for image_id, g in samples.groupby("image_id", sort=True):
        responses = list(g["response"])
        boxes = dict(zip(responses, g["boxes"])) if "boxes" in g else {}
        if cfg.pairs.labeler == "expert":
            checked = [experts.Checked(r, tuple(words.claims(r)), tuple(h)) for r, h in zip(responses, g["holds"])]
        else:
            checked = pairing.self_checks(responses, words)
        for good, bad in pairing.build_pairs(
            checked,
            cfg.pairs.max_per_image,
            rng,
            cfg.pairs.graded_per_image,
            cfg.pairs.complete_per_image,
            cfg.pairs.separable_per_image,
        ):
            a, b, label = (
                (checked[good], checked[bad], "A") if rng.random() < 0.5 else (checked[bad], checked[good], "B")
            )
            # where the expert found each claim the critique names, in its order (A's, then B's)
            grounding = (
                [
                    [c.text, [list(map(float, bx)) for bx in boxes[x.response][i]]]
                    for x in (a, b)
                    for i, c in enumerate(x.claims)
                ]
                if cfg.pairs.labeler == "expert" and cfg.pairs.thought == "critique" and boxes
                else []
            )
            rows.append(
                {
                    "image_id": int(image_id),
                    "path": g["path"].iloc[0],
                    "question": prompts.BASE_PROMPT,
                    "a": a.response,
                    "b": b.response,
                    "label": label,
                    "thought": critique.thought(a, b, cfg.pairs.thought),
                    "grounding": json.dumps(grounding),
                }
            )
    return pd.DataFrame(rows, columns=["image_id", "path", "question", "a", "b", "label", "thought", "grounding"])


def self_labelled(samples: pd.DataFrame, words: Vocabulary) -> pd.DataFrame:
    """The samples with the VLM's own belief (`pairing.self_checks`, per image) in place of the
    expert's verdicts, and without the expert's boxes: what the baseline without a vision
    expert trains on, stage 0 included."""
    holds: dict[object, list[bool]] = {}
    for _, g in samples.groupby("image_id", sort=False):
        for idx, checked in zip(g.index, pairing.self_checks(list(g["response"]), words)):
            holds[idx] = list(checked.holds)
    return samples.assign(holds=[holds[i] for i in samples.index]).drop(columns=["boxes"], errors="ignore")


def probe_rows(samples: pd.DataFrame, n: int, seed: int, words: Vocabulary) -> pd.DataFrame:
    """One row per image (image_id, path, phrases): `n` object phrases its responses did not
    make, from the vocabulary of all the samples' claims (`pairing.probe_phrases`)."""
    images = samples.groupby("image_id", sort=True)
    made = [[c for cs in g["claims"] for c in cs] for _, g in images]
    phrases = pairing.probe_phrases(made, n, random.Random(seed), words)
    paths = images["path"].first()
    return pd.DataFrame({"image_id": list(paths.index), "path": list(paths), "phrases": phrases})


def verify_rows(samples: pd.DataFrame, seed: int, words: Vocabulary, balance: str = "kind") -> pd.DataFrame:
    """Stage 0's examples: every claim the expert checked, as its yes/no question
    (`words.check_question`), with as many "No." as "Yes." rows per kind (object claims, count
    claims; balance="kind") or per claim phrase (balance="phrase"), and where the expert found
    what the claim is about (`experts.claim_boxes`: normalized xyxy boxes; none for an object it did
    not find) for grounded attention."""
    if balance not in ("kind", "phrase"):
        raise ValueError(f"stage0.balance must be 'kind' or 'phrase', not {balance!r}")
    rows: dict[tuple[object, bool], list[dict]] = {}
    boxes_of = samples["boxes"] if "boxes" in samples else [[[]] * len(c) for c in samples["claims"]]
    for path, claims, holds, boxes in zip(samples["path"], samples["claims"], samples["holds"], boxes_of):
        for c, h, bx in zip(claims, holds, boxes):
            group = c if balance == "phrase" else words.is_count(c)
            rows.setdefault((group, bool(h)), []).append(
                {
                    "path": path,
                    "question": words.check_question(c),
                    "phrase": c,
                    "answer": "Yes." if h else "No.",
                    "boxes": [list(map(float, b)) for b in bx],
                }
            )
    rng = random.Random(seed)
    out = []
    for group in sorted({g for g, _ in rows}, key=str):
        yes, no = rows.get((group, True), []), rows.get((group, False), [])
        n = min(len(yes), len(no))
        out += rng.sample(yes, n) + rng.sample(no, n)
    rng.shuffle(out)
    return pd.DataFrame(out, columns=["path", "question", "phrase", "answer", "boxes"])


def bench_pairs(cfg: GenRMConfig) -> pd.DataFrame:
    """ShapesWorld-RewardBench from the bench split's annotations, chosen as A or B at random."""
    records = load_dataset(Path(cfg.data.bench_path).resolve())
    by_id = {r.image_id: r for r in records}
    pairs = rb.build(
        [(r.image_id, rb.scene_of(r.objects)) for r in records], cfg.data.bench_per_category, seed=1000 + cfg.run.seed
    )
    rows = rb.judge_rows([(str(p.image_id), p.category, p.chosen, p.rejected, p.form) for p in pairs], cfg.run.seed)
    return pd.DataFrame(
        [
            r | {"image_id": int(r["id"]), "path": str(by_id[int(r["id"])].path), "question": prompts.BASE_PROMPT}
            for r in rows
        ]
    )
