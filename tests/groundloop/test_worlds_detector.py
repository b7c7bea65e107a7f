"""The shipped ShapesWorld detector looks at pixels and grounds phrase queries."""

import pytest
from PIL import Image

from groundloop.models import load_detector
from groundloop.models.detection import iou
from groundloop.worlds import shapes as world


@pytest.fixture(scope="module")
def detector():
    return load_detector("shapesworld/detector")


def _box(o):
    return tuple(v / world.IMAGE_SIZE for v in o.box)


def test_finds_present_objects_and_nothing_for_absent_ones(detector):
    found = missed = false_alarms = 0
    for objects, image in world.scenes("val", 40, seed=123):
        present = {o.name for o in objects}
        absent = [f"{c} {s}" for c, s in world.object_types() if f"{c} {s}" not in present][:4]
        queries = sorted(present) + [f"{o.size} {o.name}" for o in objects] + absent
        dets = detector.detect([image], [queries])[0]
        for o in objects:
            ok = any(d.phrase == o.name and iou(d.box, _box(o)) >= 0.5 for d in dets)
            found += ok
            missed += not ok
        false_alarms += sum(d.phrase in absent for d in dets)
    assert found / (found + missed) >= 0.95
    assert false_alarms <= 2


def test_size_words_filter_and_boxes_are_normalized(detector):
    objects = [
        world.SceneObject("circle", "red", "large", (10, 10, 38, 38)),
        world.SceneObject("circle", "red", "small", (60, 60, 72, 72)),
    ]
    image = world.render(objects, seed=0)
    big, small, both = detector.detect([image] * 3, [["large red circle"], ["small red circle"], ["red circle"]])
    assert len(big) == 1 and iou(big[0].box, _box(objects[0])) > 0.8
    assert len(small) == 1 and iou(small[0].box, _box(objects[1])) > 0.8
    assert len(both) == 2
    assert all(0 <= v <= 1 for d in both for v in d.box)


def test_other_image_sizes_and_modes(detector):
    objects = [world.SceneObject("triangle", "blue", "large", (20, 30, 50, 60))]
    image = world.render(objects, seed=1).resize((300, 300), Image.Resampling.NEAREST).convert("RGBA")
    (d,) = detector.detect([image], [["blue triangle", "blue square"]])[0]
    assert d.phrase == "blue triangle" and iou(d.box, _box(objects[0])) > 0.7


def test_mismatched_inputs_are_rejected(detector):
    with pytest.raises(ValueError, match="1 images but 2"):
        detector.detect([world.render([], 0)], [["a"], ["b"]])
