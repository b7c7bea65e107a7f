"""ShapesWorld-RewardBench: held-out preference pairs whose truth comes from the world's
annotations (the scene's object list), never from a detector or a model.

Every pair is (the scene's true caption, a caption of a minimally changed scene or text):
- hallucination: the rejected caption names an object whose colour+shape type is not in the
  image (counts and relations are rewritten to match, so only that object is wrong), in
  three equally likely forms, so that neither the shorter nor the longer caption is the
  answer: the object is added (the rejected caption is longer), it replaces one object at
  its place and size (as long), or it replaces one object and another is left out (shorter);
- attribute: one object's colour or size is wrong;
- reasoning: a count or a spatial relation is wrong;
- general: the rejected caption leaves an object out (less complete, and its counts follow).
The chosen caption is response A or B at random.

In `general` the chosen caption is the longer one, so a judge that prefers fewer claims
scores ~0 there (and ~0.5 on `hallucination`). Diagnostic categories, not in the default
bench: `hallucination_added`, `hallucination_swap` and `hallucination_swap_drop`, one form
each (until this version `hallucination` was `hallucination_added` alone, on which a judge
that prefers fewer claims scores ~1).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from groundloop.data.coco import ObjectAnn
from groundloop.genrm.bench import accuracy, judge_rows
from groundloop.worlds import shapes as world

__all__ = ["CATEGORIES", "DIAGNOSTIC", "BenchPair", "build", "scene_of", "claim_truth", "accuracy", "judge_rows"]

CATEGORIES = ("hallucination", "attribute", "reasoning", "general")
MAX_OBJECTS = 6  # ShapesWorld scenes hold 1 to 6 objects; a 7th would be out of distribution
_RELATION_SWAPS = {
    "to the left of": "to the right of",
    "to the right of": "to the left of",
    "above": "below",
    "below": "above",
    "on": "under",
    "under": "on",
}
_RELATION = re.compile(r", (to the left of|to the right of|above|below|on|under) the ")


@dataclass(frozen=True)
class BenchPair:
    image_id: int
    category: str
    chosen: str
    rejected: str
    form: str = ""  # in `hallucination`: "added", "swapped" or "swapped_dropped"


def _free_box(objects: Sequence[world.SceneObject], side: int, rng: random.Random) -> tuple[int, int, int, int] | None:
    for _ in range(50):
        x, y = rng.randrange(0, world.IMAGE_SIZE - side), rng.randrange(0, world.IMAGE_SIZE - side)
        box = (x, y, x + side, y + side)
        if all(world._overlap(box, o.box) == 0 for o in objects):
            return box
    return None


def added(objects: list[world.SceneObject], rng: random.Random) -> str | None:
    """One more object, of a colour+shape type that is not in the image."""
    present = {(o.color, o.shape) for o in objects}
    absent = [t for t in world.object_types() if t not in present]
    size = rng.choice(world.SIZES)
    box = _free_box(objects, world.SIZE_RANGE[size][0], rng)
    if not absent or box is None or len(objects) >= MAX_OBJECTS:
        return None
    color, shape = rng.choice(absent)
    return world.caption(objects + [world.SceneObject(shape, color, size, box)])


def swapped(objects: list[world.SceneObject], rng: random.Random, drop: bool = False) -> str | None:
    """One object replaced by an absent colour+shape type of another shape (a hallucinated
    object in a caption as long as the true one; its counts follow); with drop, another
    object is also left out (the caption is shorter than the true one)."""
    if drop and len(objects) < 2:
        return None
    i = rng.randrange(len(objects))
    present = {(o.color, o.shape) for o in objects}  # the whole scene: a dropped object is not absent
    absent = [t for t in world.object_types() if t not in present and t[1] != objects[i].shape]
    if not absent:
        return None
    color, shape = rng.choice(absent)
    changed = objects[:i] + [replace(objects[i], color=color, shape=shape)] + objects[i + 1 :]
    if drop:
        j = rng.choice([j for j in range(len(objects)) if j != i])
        changed = changed[:j] + changed[j + 1 :]
    return world.caption(changed)


def swapped_dropped(objects: list[world.SceneObject], rng: random.Random) -> str | None:
    return swapped(objects, rng, drop=True)


def wrong_attribute(objects: list[world.SceneObject], rng: random.Random) -> str | None:
    i = rng.randrange(len(objects))
    o = objects[i]
    if rng.random() < 0.5:
        other = {(x.color, x.shape) for x in objects}
        colors = [c for c in world.COLORS if c != o.color and (c, o.shape) not in other]
        if not colors:
            return None
        changed = replace(o, color=rng.choice(colors))
    else:
        changed = replace(o, size="small" if o.size == "large" else "large")
    return world.caption(objects[:i] + [changed] + objects[i + 1 :])


def wrong_reasoning(objects: list[world.SceneObject], rng: random.Random) -> str | None:
    true = world.caption(objects)
    relations = list(_RELATION.finditer(true))
    if relations and rng.random() < 0.5:
        m = rng.choice(relations)
        rel = m.group(1)
        return true[: m.start(1)] + _RELATION_SWAPS[rel] + true[m.end(1) :]
    counts = {s: sum(o.shape == s for o in objects) for s in world.SHAPES}
    shape = rng.choice([s for s, k in counts.items() if k])
    k = counts[shape]
    new_k = k + 1 if k == 1 or rng.random() < 0.5 else k - 1
    old, new = world._plural(shape, k), world._plural(shape, new_k)
    first_sentence, rest = true.split(". ", 1) if ". " in true else (true, "")
    changed = re.sub(rf"\b{old}\b", new, first_sentence, count=1)
    return changed + (". " + rest if rest else "") if changed != first_sentence else None


def omission(objects: list[world.SceneObject], rng: random.Random) -> str | None:
    if len(objects) < 2:
        return None
    i = rng.randrange(len(objects))
    return world.caption(objects[:i] + objects[i + 1 :])


_MAKERS = {
    "attribute": wrong_attribute,
    "reasoning": wrong_reasoning,
    "general": omission,
    "hallucination_added": added,
    "hallucination_swap": swapped,
    "hallucination_swap_drop": swapped_dropped,
}
DIAGNOSTIC = ("hallucination_added", "hallucination_swap", "hallucination_swap_drop")
# `hallucination` cycles through its three forms pair by pair (a scene that does not fit the
# form in turn, e.g. a full scene for `added`, waits for the next one), so each is a third.
_FORMS = {"hallucination": (added, swapped, swapped_dropped)}


def build(
    scenes: Sequence[tuple[int, list[world.SceneObject]]],
    per_category: int,
    seed: int,
    categories: Sequence[str] = CATEGORIES,
) -> list[BenchPair]:
    """Up to per_category pairs per category, each from a different scene where possible."""
    unknown = set(categories) - set(_MAKERS) - set(_FORMS)
    if unknown:
        known = sorted(set(_MAKERS) | set(_FORMS))
        raise ValueError(f"unknown RewardBench categories {sorted(unknown)}; known: {known}")
    out: list[BenchPair] = []
    for cat in categories:
        rng = random.Random(f"{seed}/{cat}")  # each category its own stream: adding one changes no other
        pending = list(scenes)
        rng.shuffle(pending)
        forms = _FORMS.get(cat) or (_MAKERS[cat],)
        n = 0
        while n < per_category and pending:
            make = forms[n % len(forms)]
            for i, (image_id, objects) in enumerate(pending):
                rejected = make(objects, rng)
                if rejected and rejected != world.caption(objects):
                    out.append(
                        BenchPair(
                            image_id, cat, world.caption(objects), rejected, make.__name__ if len(forms) > 1 else ""
                        )
                    )
                    n += 1
                    del pending[i]
                    break
            else:
                break  # no scene left fits this form
    return out


def scene_of(objects: Sequence[ObjectAnn]) -> list[world.SceneObject]:
    """ShapesWorld scene objects back from COCO annotations (`ObjectAnn`: category, xywh
    bbox, colour and size attributes)."""
    out = []
    for o in objects:
        x, y, w, h = o.bbox
        attrs = o.attributes
        out.append(
            world.SceneObject(o.category, attrs["color"], attrs["size"], (int(x), int(y), int(x + w), int(y + h)))
        )
    return out


def claim_truth(objects: Sequence[ObjectAnn], response: str) -> list[bool]:
    """Each claim of a response (the ShapesWorld vocabulary's `claims`) against the annotations
    (COCO objects with a category and size / colour attributes): an object claim holds when
    some object has every attribute it names, a count claim when that many of the shape exist."""
    from groundloop.vocab.shapes import ShapesVocabulary

    out = []
    for c in ShapesVocabulary().claims(response):
        if c.count is not None:
            out.append(sum(o.category == c.phrase for o in objects) == c.count)
            continue
        words = c.phrase.split()
        want = dict(zip(("size", "color", "shape")[-len(words) :], words))
        out.append(
            any(
                all(
                    {"size": o.attributes["size"], "color": o.attributes["color"], "shape": o.category}[k] == v
                    for k, v in want.items()
                )
                for o in objects
            )
        )
    return out
