from groundloop.models.detection import Detection, iou, nms
from groundloop.prompts import grounded_prompt
from groundloop.svp.grounding import grounding_text
from groundloop.vocab.shapes import ShapesVocabulary

SHAPES = ShapesVocabulary()


def test_extract_phrases_from_a_caption():
    cap = (
        "In the image, there are three objects, two circles and one triangle. A small red circle "
        "is at the left. A large orange circle is at the center, under the red circle. A small "
        "red triangle is at the bottom left, below the orange circle."
    )
    assert SHAPES.phrases(cap) == ["red circle", "orange circle", "red triangle"]
    assert SHAPES.phrases(cap, sizes=True) == ["small red circle", "large orange circle", "small red triangle"]


def test_extract_phrases_synonyms_and_sizeless_mentions():
    assert SHAPES.phrases("There is a blue box and two Green Discs.") == ["blue square", "green circle"]
    # a size-less first mention is upgraded when the sized one comes later
    assert SHAPES.phrases("a red cross, then a large red cross", sizes=True) == ["large red cross"]
    assert SHAPES.phrases("a red cross, then a large red cross") == ["red cross"]
    assert SHAPES.phrases("nothing here but shapes and colours") == []


def test_grounding_text_is_in_reading_order_with_two_decimals():
    dets = [
        Detection("blue square", (0.7, 0.1, 0.9, 0.3), 0.9),
        Detection("red circle", (0.1, 0.7, 0.3, 0.9), 0.8),
        Detection("green cross", (0.1, 0.05, 0.2, 0.15), 0.7),
    ]
    assert grounding_text(dets) == (
        "green cross [0.10, 0.05, 0.20, 0.15]; "
        "blue square [0.70, 0.10, 0.90, 0.30]; "
        "red circle [0.10, 0.70, 0.30, 0.90]"
    )
    assert grounding_text([]) == ""
    assert grounded_prompt("x [0.00, 0.00, 1.00, 1.00]").startswith("<context> x [0.00")


def test_nms_keeps_the_best_box_per_phrase():
    a = Detection("red circle", (0.0, 0.0, 0.5, 0.5), 0.9)
    b = Detection("red circle", (0.05, 0.0, 0.5, 0.5), 0.8)  # IoU 0.9 with a
    c = Detection("blue square", (0.05, 0.0, 0.5, 0.5), 0.7)  # other phrase: kept
    d = Detection("red circle", (0.6, 0.6, 0.9, 0.9), 0.5)  # far away: kept
    assert iou(a.box, b.box) > 0.5
    assert nms([b, c, a, d]) == [a, c, d]
