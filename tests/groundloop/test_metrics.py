import random
from pathlib import Path

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from groundloop import vocab
from groundloop.data.coco import ImageRecord, ObjectAnn
from groundloop.eval.metrics import caption_scores, chair, chair_per_caption
from groundloop.eval.pope import (
    cooccurrence_counts,
    parse_yes_no,
    pope_question_text,
    pope_questions,
    pope_scores,
)
from groundloop.vocab.lexicon import plural, tokenize
from groundloop.worlds import shapes


def shapesworld_vocabulary():
    return vocab.get("shapes")


def coco_vocabulary():
    return vocab.get("coco")


def labels(v, caption):
    return [m.label for m in v.mentions(caption)]


COCO_CATEGORIES = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
]


# --- tokenize ---------------------------------------------------------------------------------


def test_tokenize_lowercases_drops_punctuation_splits_clitics():
    assert tokenize("A man's hot-dog, isn't it?") == ["a", "man", "'s", "hot-dog", "is", "n't", "it"]
    assert tokenize("In the image: TWO circles (small).") == ["in", "the", "image", "two", "circles", "small"]
    assert tokenize("  ...  ") == []


def test_plural():
    assert [
        plural(w) for w in ("dog", "bus", "wine glass", "puppy", "knife", "man", "policeman", "sheep", "turkey")
    ] == ["dogs", "buses", "wine glasses", "puppies", "knives", "men", "policemen", "sheep", "turkeys"]


# --- CHAIR on ShapesWorld -----------------------------------------------------------------------

SHAPES_CAPTIONS = [
    # mentions: red circle, blue square, red circle -> 3 mentions, 0 hallucinated.
    "In the image, there are two objects: one circle and one square. A small red circle is at "
    "the left. A large blue square is at the right, to the right of the red circle.",
    # mentions: green triangle, yellow cross, green triangle -> 3 mentions, 1 hallucinated.
    "In the image, there are two objects: one triangle and one cross. A large green triangle "
    "is at the top. A small yellow cross is at the bottom, below the green triangle.",
    # mentions: purple square ("box"), blue square, purple square -> 3 mentions, 1 hallucinated.
    "In the image, there are two objects: two squares. A small purple box is at the top left. "
    "A large blue square is at the center, under the purple square.",
    # mentions: green square, yellow circle ("ball"), green square -> 3 mentions, 2 hallucinated
    # (the same absent object twice counts twice).
    "A picture of a green square, a yellow ball and another green square.",
]
SHAPES_TRUTHS = [
    {"red circle", "blue square"},
    {"green triangle"},
    {"purple square", "orange circle", "red triangle"},
    {"yellow circle"},
]


def test_shapesworld_mentions_skip_count_sentence_and_count_relations():
    v = shapesworld_vocabulary()
    assert labels(v, SHAPES_CAPTIONS[0]) == ["red circle", "blue square", "red circle"]
    assert labels(v, "In the image, there are three objects: two circles and one triangle.") == []
    assert labels(v, "Two orange discs and one red plus.") == ["orange circle", "red cross"]
    assert len(v.labels) == len(shapes.COLORS) * len(shapes.SHAPES)


def test_chair_shapesworld_hand_computed():
    v = shapesworld_vocabulary()
    assert chair_per_caption(SHAPES_CAPTIONS, SHAPES_TRUTHS, v) == [
        [],
        ["yellow cross"],
        ["blue square"],
        ["green square", "green square"],
    ]
    m = chair(SHAPES_CAPTIONS, SHAPES_TRUTHS, v)
    # mentions 3+3+3+3 = 12, hallucinated 0+1+1+2 = 4 -> chair_i = 4/12.
    assert m["n_mentions"] == 12
    assert m["n_hallucinated"] == 4
    assert m["chair_i"] == pytest.approx(4 / 12)
    # captions 2, 3, 4 hallucinate -> chair_s = 3/4.
    assert m["chair_s"] == pytest.approx(3 / 4)
    # true objects 2+1+3+1 = 7; mentioned 2+1+1+1 = 5 -> recall = 5/7.
    assert m["recall"] == pytest.approx(5 / 7)


def test_chair_length_mismatch_raises():
    with pytest.raises(ValueError):
        chair(SHAPES_CAPTIONS, SHAPES_TRUTHS[:2], shapesworld_vocabulary())


def test_generated_shapes_captions_are_hallucination_free_with_full_recall():
    v = shapesworld_vocabulary()
    rng = random.Random(3)
    scenes = [shapes.sample_scene(rng, "test") for _ in range(40)]
    truths = [{o.name for o in objs} for objs in scenes]
    for make in (shapes.caption, shapes.short_caption):
        m = chair([make(objs) for objs in scenes], truths, v)
        assert m["chair_i"] == 0.0 and m["chair_s"] == 0.0
        assert m["recall"] == 1.0
    # A caption naming a wrong colour is caught.
    bad = chair(["A small red circle is at the top."], [{"blue circle"}], v)
    assert bad["chair_i"] == 1.0 and bad["recall"] == 0.0


def test_truth_labels():
    rec = ImageRecord(
        image_id=7,
        path=Path("x.png"),
        width=96,
        height=96,
        objects=(
            ObjectAnn("circle", (0, 0, 5, 5), {"color": "red", "size": "small"}),
            ObjectAnn("square", (9, 9, 5, 5), {"color": "blue", "size": "large"}),
            ObjectAnn("circle", (20, 20, 5, 5), {"color": "red", "size": "large"}),
        ),
        captions=("A picture of a small red circle.",),
    )
    assert shapesworld_vocabulary().truth_labels(rec) == {"red circle", "blue square"}
    assert coco_vocabulary().truth_labels(rec) == {"circle", "square"}
    no_color = ImageRecord(7, Path("x.png"), 96, 96, (ObjectAnn("circle", (0, 0, 5, 5)),), ())
    with pytest.raises(ValueError, match="color"):
        shapesworld_vocabulary().truth_labels(no_color)
    coco_rec = ImageRecord(
        8, Path("y.jpg"), 640, 480, (ObjectAnn("dog", (0, 0, 5, 5)),), ("A man walks his dog past a bench.",)
    )
    v = coco_vocabulary()
    assert v.truth_labels(coco_rec) == {"dog"}
    assert v.truth_labels(coco_rec, from_captions=True) == {"dog", "person", "bench"}


# --- CHAIR on COCO ------------------------------------------------------------------------------


def test_coco_labels_are_the_80_categories():
    assert coco_vocabulary().labels == sorted(COCO_CATEGORIES)


def test_coco_longest_match_and_synonyms():
    v = coco_vocabulary()
    assert labels(v, "A man eating a hot dog.") == ["person", "hot dog"]
    assert labels(v, "A dog and two dogs.") == ["dog", "dog"]
    assert labels(v, "A teddy bear next to a bear.") == ["teddy bear", "bear"]
    assert labels(v, "Plates on the dining table and a desk.") == ["dining table", "dining table"]
    assert labels(v, "Three women and a puppy on a sofa.") == ["person", "dog", "couch"]
    assert labels(v, "A baby elephant beside a passenger train.") == ["elephant", "train"]
    assert labels(v, "The toilet seat is up.") == ["toilet"]
    assert labels(v, "A batter at home plate near the train tracks.") == []
    assert labels(v, "Two cell phones and wine glasses.") == ["cell phone", "wine glass"]


def test_coco_chair_hand_computed():
    v = coco_vocabulary()
    caps = ["A man eating a hot dog next to a dog.", "A cat on a couch."]
    truths = [{"person", "hot dog"}, {"cat", "couch", "remote"}]
    # caption 1: person, hot dog, dog (hallucinated); caption 2: cat, couch.
    m = chair(caps, truths, v)
    assert (m["n_mentions"], m["n_hallucinated"]) == (5, 1)
    assert m["chair_i"] == pytest.approx(1 / 5)
    assert m["chair_s"] == pytest.approx(1 / 2)
    assert m["recall"] == pytest.approx(4 / 5)


# --- POPE ---------------------------------------------------------------------------------------

POPE_LABELS = ["person", "car", "bus", "dog", "cat", "kite"]
# Image frequency: person 3, car 3, bus 2, dog 1, cat 1, kite 1.
POPE_TRUTHS = [
    {"person", "dog"},
    {"person", "cat"},
    {"person", "kite"},
    {"car", "bus"},
    {"car", "bus"},
    {"car"},
    set(),
]


def _by_image(qs):
    out = {}
    for q in qs:
        out.setdefault(q["image_index"], {"yes": [], "no": []})[q["answer"]].append(q["label"])
    return out


@pytest.mark.parametrize("kind", ["random", "popular", "adversarial"])
def test_pope_questions_yes_present_no_absent_balanced(kind):
    qs = pope_questions(POPE_TRUTHS, POPE_LABELS, kind=kind, n_per_image=6, seed=1)
    per = _by_image(qs)
    assert 6 not in per  # nothing present: no questions
    for i, d in per.items():
        assert set(d["yes"]) <= POPE_TRUTHS[i]
        assert not set(d["no"]) & POPE_TRUTHS[i]
        assert set(d["no"]) <= set(POPE_LABELS)
        # min(6 // 2, #present, #absent) of each, no repeats.
        n = min(3, len(POPE_TRUTHS[i]), len(POPE_LABELS) - len(POPE_TRUTHS[i]))
        assert len(set(d["yes"])) == len(d["yes"]) == n
        assert len(set(d["no"])) == len(d["no"]) == n
    assert qs == pope_questions(POPE_TRUTHS, POPE_LABELS, kind=kind, n_per_image=6, seed=1)


def test_pope_popular_and_adversarial_negatives():
    pop = _by_image(pope_questions(POPE_TRUTHS, POPE_LABELS, kind="popular", n_per_image=2))
    adv = _by_image(pope_questions(POPE_TRUTHS, POPE_LABELS, kind="adversarial", n_per_image=2))
    # Image 5 holds only a car: the most frequent absent label is person (3 images), the one
    # co-occurring with car is bus (2 images).
    assert pop[5]["no"] == ["person"]
    assert adv[5]["no"] == ["bus"]
    # Image 0 (person, dog), two negatives: popular car (3), bus (2); adversarial: cat and kite
    # each co-occur once with person, car and bus never do.
    pop4 = _by_image(pope_questions(POPE_TRUTHS, POPE_LABELS, kind="popular", n_per_image=4))
    adv4 = _by_image(pope_questions(POPE_TRUTHS, POPE_LABELS, kind="adversarial", n_per_image=4))
    assert pop4[0]["no"] == ["car", "bus"]
    assert adv4[0]["no"] == ["cat", "kite"]
    # Co-occurrence from elsewhere (e.g. the training split) overrides the evaluated set's.
    ext = _by_image(
        pope_questions(POPE_TRUTHS, POPE_LABELS, kind="adversarial", n_per_image=2, cooccurrence={"car": {"kite": 5}})
    )
    assert ext[5]["no"] == ["kite"]
    assert cooccurrence_counts(POPE_TRUTHS)["car"] == {"bus": 2}


def test_pope_bad_kind():
    with pytest.raises(ValueError):
        pope_questions(POPE_TRUTHS, POPE_LABELS, kind="hard")


def test_pope_question_text():
    assert pope_question_text("red circle") == "Is there a red circle in the image?"


def test_parse_yes_no():
    assert parse_yes_no("Yes.") == "yes"
    assert parse_yes_no("no, there is not") == "no"
    assert parse_yes_no("maybe") is None
    assert parse_yes_no("") is None
    assert parse_yes_no("There is no cat in the image.") == "no"
    assert parse_yes_no("NO") == "no"


def test_pope_scores_hand_computed():
    qs = [{"image_index": 0, "label": "x", "answer": a} for a in ("yes", "yes", "yes", "no", "no", "no", "no")]
    answers = ["Yes.", "no", "maybe", "yes", "No, there is not.", "No", "I cannot tell"]
    # predictions: yes, no, None, yes, no, no, None
    # TP = 1 (q0); FN = 2 (q1, q2 unparsed); FP = 1 (q3); TN = 2 (q4, q5); q6 unparsed: wrong.
    s = pope_scores(qs, answers)
    assert s["accuracy"] == pytest.approx(3 / 7)
    assert s["precision"] == pytest.approx(1 / 2)
    assert s["recall"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))  # = 0.4
    assert s["f1"] == pytest.approx(0.4)
    assert s["yes_ratio"] == pytest.approx(2 / 7)
    assert s["n_unparsed"] == 2


# --- BLEU / CIDEr -------------------------------------------------------------------------------

REFS = {
    1: ["A small red circle is at the left.", "There is a red circle on the left side."],
    2: ["A large blue square is at the center.", "A big blue square sits in the middle."],
    3: ["Two green triangles are at the top.", "At the top there are two green triangles."],
    4: ["A yellow cross is at the bottom right.", "There is a yellow cross in the corner."],
}
PREDS = {
    1: "A red circle is at the left.",
    2: "A large blue square is in the middle!",
    3: "Two green crosses are at the top.",
    4: "A yellow cross is at the bottom.",
}


def test_caption_scores_identical_gives_bleu_one():
    preds = {k: v[0] for k, v in REFS.items()}
    s = caption_scores(preds, REFS)
    assert s["bleu4"] == pytest.approx(1.0, abs=1e-6)


def test_caption_scores_cider_matches_pycocoevalcap_on_same_tokens():
    # `tokenize`'s output, written out by hand.
    gts = {
        1: ["a small red circle is at the left", "there is a red circle on the left side"],
        2: ["a large blue square is at the center", "a big blue square sits in the middle"],
        3: ["two green triangles are at the top", "at the top there are two green triangles"],
        4: ["a yellow cross is at the bottom right", "there is a yellow cross in the corner"],
    }
    res = {
        1: ["a red circle is at the left"],
        2: ["a large blue square is in the middle"],
        3: ["two green crosses are at the top"],
        4: ["a yellow cross is at the bottom"],
    }
    cider, _ = Cider().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    s = caption_scores(PREDS, REFS)
    assert s["cider"] == pytest.approx(cider)
    assert s["bleu4"] == pytest.approx(bleu[3])
    assert 0 < s["cider"] and 0 < s["bleu4"] < 1

    shuffled = {}
    for k, p in PREDS.items():
        words = tokenize(p)
        random.Random(k).shuffle(words)
        shuffled[k] = " ".join(reversed(words))
    s2 = caption_scores(shuffled, REFS)
    assert s2["cider"] < s["cider"]
    assert s2["bleu4"] < s["bleu4"]


def test_caption_scores_key_mismatch_raises():
    with pytest.raises(ValueError):
        caption_scores({1: "a red circle"}, {1: ["a red circle"], 2: ["a blue square"]})
