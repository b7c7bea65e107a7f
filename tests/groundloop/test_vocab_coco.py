"""COCO vocabulary on hand-written captions: mentions (label, noun phrase, count), negation,
detector phrases, claims, and CHAIR computed by hand."""

from pathlib import Path

import pytest

from groundloop.data.coco import ImageRecord, ObjectAnn
from groundloop.vocab import Claim, Vocabulary, get
from groundloop.vocab.coco import CocoVocabulary

VOCAB = CocoVocabulary()

# (caption, expected mentions as (label, phrase, count), in order)
CASES: list[tuple[str, list[tuple[str, str, int | None]]]] = [
    # --- COCO style ---
    ("A man riding a wave on top of a surfboard.", [("person", "man", None), ("surfboard", "surfboard", None)]),
    ("Two giraffes standing next to a tree.", [("giraffe", "two giraffes", 2)]),
    ("A hot dog with mustard on a paper plate.", [("hot dog", "hot dog", None)]),
    (
        "A dog and a hot dog on a picnic table.",
        [("dog", "dog", None), ("hot dog", "hot dog", None), ("dining table", "picnic table", None)],
    ),
    ("A puppy chewing on a red frisbee in the grass.", [("dog", "puppy", None), ("frisbee", "red frisbee", None)]),
    (
        "A man on a motorbike talking on his cellphone.",
        [("person", "man", None), ("motorcycle", "motorbike", None), ("cell phone", "cellphone", None)],
    ),
    (
        "A woman typing on a laptop computer next to a tv.",
        [("person", "woman", None), ("laptop", "laptop computer", None), ("tv", "tv", None)],
    ),
    (
        "A teddy bear sitting next to a fire hydrant.",
        [("teddy bear", "teddy bear", None), ("fire hydrant", "fire hydrant", None)],
    ),
    ("A red stop sign on a street corner.", [("stop sign", "red stop sign", None)]),
    (
        "Two wine glasses and a bottle of wine on a wooden table.",
        [("wine glass", "two wine glasses", 2), ("bottle", "bottle", None), ("dining table", "wooden table", None)],
    ),
    (
        "A baby elephant walking with an adult elephant.",
        [("elephant", "baby elephant", None), ("elephant", "adult elephant", None)],
    ),
    (
        "An adult giraffe and a baby giraffe eating leaves.",
        [("giraffe", "adult giraffe", None), ("giraffe", "baby giraffe", None)],
    ),
    ("A passenger train pulling into a station.", [("train", "passenger train", None)]),
    ("A white toilet with the toilet seat up.", [("toilet", "white toilet", None), ("toilet", "toilet seat", None)]),
    ("Three sheep grazing in a green field.", [("sheep", "three sheep", 3)]),
    # a pair of skis is one COCO object: no count
    ("A man holding a pair of skis on a snowy slope.", [("person", "man", None), ("skis", "skis", None)]),
    (
        "Two men and three women standing around a kitchen table.",
        [("person", "two men", 2), ("person", "three women", 3), ("dining table", "kitchen table", None)],
    ),
    (
        "A group of children playing with a soccer ball.",
        [("person", "children", None), ("sports ball", "soccer ball", None)],
    ),
    ("A cat chasing two mice across the floor.", [("cat", "cat", None), ("mouse", "two mice", 2)]),
    ("A black and white cat sleeping on a couch.", [("cat", "black and white cat", None), ("couch", "couch", None)]),
    # "orange" before an object is its colour; "oranges" alone is the fruit
    (
        "An orange cat next to a bowl of oranges.",
        [("cat", "orange cat", None), ("bowl", "bowl", None), ("orange", "oranges", None)],
    ),
    ("A large brown bear standing in the water.", [("bear", "large brown bear", None)]),
    ("A red double-decker bus driving down a city street.", [("bus", "red double-decker bus", None)]),
    ("A couple of dogs lying on a bed.", [("dog", "couple of dogs", 2), ("bed", "bed", None)]),
    (
        "People walking past a parked motorcycle and a traffic light.",
        [
            ("person", "people", None),
            ("motorcycle", "parked motorcycle", None),
            ("traffic light", "traffic light", None),
        ],
    ),
    ("A plate with 3 donuts and a cup.", [("donut", "3 donuts", 3), ("cup", "cup", None)]),
    (
        "A young girl holding an umbrella stands beside her brown pony.",
        [("person", "young girl", None), ("umbrella", "umbrella", None), ("horse", "brown pony", None)],
    ),
    ("The photo shows a man's dog sitting next to him.", [("person", "man", None), ("dog", "dog", None)]),
    (
        "Hot dogs and hamburgers grilling next to a bowl of salad.",
        [("hot dog", "hot dogs", None), ("sandwich", "hamburgers", None), ("bowl", "bowl", None)],
    ),
    # --- negations: no mention ---
    ("An empty street with no people.", []),
    ("A parking lot without any cars or trucks.", []),
    ("There is not a single cat in this picture, only a dog.", [("dog", "dog", None)]),
    ("A kitchen with a stove but no refrigerator.", [("oven", "stove", None)]),
    ("There isn't a dog on the couch.", [("couch", "couch", None)]),
    ("Neither the dog nor the cat is awake.", []),
    # the scope ends at the verb: only the people are negated
    ("None of the people are holding umbrellas.", [("umbrella", "umbrellas", None)]),
    ("A parking lot with 25 cars and zero dogs.", [("car", "25 cars", 25)]),
    # "no one" negates no object, the bench is there
    ("No one is sitting on the bench.", [("bench", "bench", None)]),
    # --- LLaVA style ---
    (
        "The image shows a busy city street with a red double-decker bus driving past tall "
        "buildings. Several cars are parked along the side of the road, and a traffic light hangs "
        "above the intersection. There are no people visible.",
        [("bus", "red double-decker bus", None), ("car", "cars", None), ("traffic light", "traffic light", None)],
    ),
    (
        "In the image, a woman is sitting on a couch with a laptop computer on her lap. A small "
        "white dog is curled up next to her, and a cup of coffee rests on the wooden coffee table "
        "in front of them.",
        [
            ("person", "woman", None),
            ("couch", "couch", None),
            ("laptop", "laptop computer", None),
            ("dog", "small white dog", None),
            ("cup", "cup", None),
            ("dining table", "wooden coffee table", None),
        ],
    ),
    (
        "The image depicts a kitchen counter with a plate of food, including a sandwich, a banana "
        "and two oranges. A knife and a fork lie beside the plate. There doesn't appear to be any "
        "people in the scene.",
        [
            ("sandwich", "sandwich", None),
            ("banana", "banana", None),
            ("orange", "two oranges", 2),
            ("knife", "knife", None),
            ("fork", "fork", None),
        ],
    ),
    (
        "In this image, a young boy is flying a kite on the beach while his father watches. "
        "Several boats can be seen on the water in the distance, and a dog runs along the shore. "
        "There are no other people or animals visible.",
        [
            ("person", "young boy", None),
            ("kite", "kite", None),
            ("person", "father", None),
            ("boat", "boats", None),
            ("dog", "dog", None),
        ],
    ),
    (
        "The image shows two zebras and a giraffe grazing in a grassy field. Behind them, a tall "
        "tree stands, and a safari truck is parked nearby. No people are present.",
        [("zebra", "two zebras", 2), ("giraffe", "giraffe", None), ("truck", "safari truck", None)],
    ),
    # CHAIR's table reads "computer" as a laptop and "monitor" as a tv
    (
        "A man in a suit and tie is sitting at a desk, talking on a cell phone. On the desk there "
        "is a computer monitor, a keyboard and a mouse, as well as a cup of coffee.",
        [
            ("person", "man", None),
            ("tie", "tie", None),
            ("dining table", "desk", None),
            ("cell phone", "cell phone", None),
            ("dining table", "desk", None),
            ("laptop", "computer", None),
            ("tv", "monitor", None),
            ("keyboard", "keyboard", None),
            ("mouse", "mouse", None),
            ("cup", "cup", None),
        ],
    ),
    (
        "A bedroom with a large bed, a wooden chair and a small potted plant on the windowsill. "
        "A clock hangs on the wall above the bed.",
        [
            ("bed", "large bed", None),
            ("chair", "wooden chair", None),
            ("potted plant", "small potted plant", None),
            ("clock", "clock", None),
            ("bed", "bed", None),
        ],
    ),
]


def test_at_least_thirty_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize(("caption", "expected"), CASES, ids=[c[:40] for c, _ in CASES])
def test_mentions_match_hand_written_list(caption, expected):
    assert [(m.label, m.phrase, m.count) for m in VOCAB.mentions(caption)] == expected


def test_registry_and_labels():
    v: Vocabulary = get("coco")
    assert v.name == "coco"
    assert len(v.labels) == 80
    assert {"hot dog", "dog", "teddy bear", "cell phone", "dining table"} <= set(v.labels)


def test_phrases_drop_counts_and_sizes_singular_and_merged():
    text = "Two brown dogs and a red double-decker bus. The dogs are next to a small bench."
    assert VOCAB.phrases(text) == ["brown dog", "red double-decker bus", "bench"]
    assert VOCAB.phrases(text, sizes=True) == ["brown dog", "red double-decker bus", "small bench"]
    # irregular plurals singular; "hot dog" and "dog" are different objects
    assert VOCAB.phrases("Three people, two mice, hot dogs and dogs.") == ["person", "mouse", "hot dog", "dog"]


def test_claims_objects_then_counts():
    text = "Two brown dogs and a red double-decker bus. The dogs are next to a small bench."
    assert VOCAB.claims(text) == [
        Claim("red double-decker bus"),
        Claim("dog"),
        Claim("small bench"),
        Claim("brown dog", 2, "two brown dogs"),
    ]
    # counts are written as number words; a repeated count is one claim
    assert VOCAB.claims("A pair of giraffes and 3 people. The two giraffes eat.") == [
        Claim("giraffe", 2, "two giraffes"),
        Claim("person", 3, "three people"),
    ]
    assert VOCAB.claims("There are no people.") == []


def test_look_phrase_check_question_is_count():
    assert VOCAB.look_phrase(Claim("small bench")) == "bench"
    assert VOCAB.look_phrase(Claim("brown dog", 2, "two brown dogs")) == "brown dog"
    assert VOCAB.check_question("red double-decker bus") == "Is there a red double-decker bus in the image?"
    assert VOCAB.check_question("adult giraffe") == "Is there an adult giraffe in the image?"
    assert VOCAB.check_question("two brown dogs") == "Are there exactly two brown dogs in the image?"
    assert VOCAB.check_question("one dog") == "Is there exactly one dog in the image?"
    assert VOCAB.is_count("two brown dogs") and VOCAB.is_count("3 donuts")
    assert not VOCAB.is_count("brown dog") and not VOCAB.is_count("")


def test_truth_labels_from_captions_skip_negated_mentions():
    rec = ImageRecord(
        1,
        Path("x.jpg"),
        640,
        480,
        (ObjectAnn("dog", (0, 0, 10, 10)),),
        ("A man walking a puppy past a bench.", "A dog on a street with no cars."),
    )
    assert VOCAB.truth_labels(rec) == {"dog"}
    assert VOCAB.truth_labels(rec, from_captions=True) == {"dog", "person", "bench"}


def _chair(captions: list[str], truths: list[set[str]]) -> tuple[float, float, float]:
    """(CHAIR_i, CHAIR_s, recall) over `VOCAB.mentions`, every mention counted (repeats too)."""
    n_m = n_h = n_bad = n_t = n_r = 0
    for c, t in zip(captions, truths, strict=True):
        labels = [m.label for m in VOCAB.mentions(c)]
        h = sum(lab not in t for lab in labels)
        n_m, n_h, n_bad = n_m + len(labels), n_h + h, n_bad + (h > 0)
        n_t, n_r = n_t + len(t), n_r + len(t & set(labels))
    return n_h / n_m, n_bad / len(captions), n_r / n_t


def test_chair_by_hand():
    captions = [
        "A man riding a horse next to a dog.",
        "Two giraffes and a zebra standing near a tree.",
        "A hot dog and a cup of coffee on a table.",
        "A baby elephant walking behind an adult elephant, and a person watching.",
        "A cat sitting on a toilet seat next to a sink and a toilet.",
    ]
    truths = [
        {"person", "horse"},
        {"giraffe", "zebra"},
        {"hot dog", "dining table"},
        {"elephant", "person"},
        {"cat", "toilet", "sink", "toothbrush"},
    ]
    # mentions: 1 person horse dog (3, dog hallucinated)   2 giraffe zebra (2, none)
    #   3 hot dog cup dining table (3, cup; "hot dog" is no dog)
    #   4 elephant elephant person (3, none; "baby elephant" is no person)
    #   5 cat toilet sink toilet (4, none; "toilet seat" is the toilet, not a chair)
    # CHAIR_i = (1 + 0 + 1 + 0 + 0) / (3 + 2 + 3 + 3 + 4) = 2 / 15
    # CHAIR_s = 2 captions of 5 = 2 / 5
    # recall = (2 + 2 + 2 + 2 + 3) / (2 + 2 + 2 + 2 + 4) = 11 / 12 (toothbrush never mentioned)
    assert _chair(captions, truths) == pytest.approx((2 / 15, 2 / 5, 11 / 12))


def test_chair_negation_rule():
    # Deliberate deviation from the reference CHAIR (which counts every object word and would
    # read "no people" as a hallucinated person: CHAIR_i 1/2, CHAIR_s 1): negated mentions are
    # not mentions. Mentions: bus | dog, dog ("two dogs" once, "the dogs" once).
    captions = ["A bus on a street with no people.", "Two dogs but no cats. The dogs sleep."]
    truths = [{"bus"}, {"dog", "bed"}]
    # CHAIR_i = 0 / 3, CHAIR_s = 0 / 2, recall = (1 + 1) / (1 + 2) = 2 / 3
    assert _chair(captions, truths) == pytest.approx((0.0, 0.0, 2 / 3))
