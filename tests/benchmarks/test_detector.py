"""benchmarks/detector.py on 3 val images: the fields foundation.md quotes, and the shipped pixel
detector's 1.000 / 1.000 at IoU >= 0.5 with no detection on an absent query."""

import json

from benchmarks import detector


def test_detector_precision_recall_on_three_images(shapes_split, run_main, tmp_path):
    data = shapes_split("val", 3)
    r = run_main(detector, "--data", data, out=tmp_path / "detector.json")
    inst = json.loads((data / "instances.json").read_text())
    assert r["n_images"] == len(inst["images"]) == 3
    # every present type is queried twice (with and without its size): at least as many true
    # objects queried as the split has
    assert r["n_true_objects_queried"] >= len(inst["annotations"])
    assert r["precision"] == r["recall"] == 1.0
    assert r["n_detections"] == r["n_true_objects_queried"]
    assert r["absent_queries"] > 0 and r["detections_on_absent_queries"] == 0
    assert 0 < r["seconds_per_image"] < 60
