"""benchmarks/value_discrimination.py on 2 test images with the shipped value model: every
object sentence is labelled, and the AUCs vimar.md quotes (CLIP delta and V, pooled and within
an image) are probabilities, or None where one image has no pair to compare."""

import numpy as np

from benchmarks import value_discrimination


def test_value_discrimination_tiny(shapes_split, run_main, tmp_path):
    data = shapes_split("test", 3)
    r = run_main(
        value_discrimination,
        "--data",
        data,
        "--images",
        "0:2",
        "--values",
        "shapesworld/value",
        out=tmp_path / "v.json",
    )
    assert r["object_sentences"] > 0 and 0 <= r["hallucinated"] <= r["object_sentences"]
    for table in ("auc", "within_image_auc"):
        assert set(r[table]) == {"clip_delta", "shapesworld/value"}
        for v in r[table].values():
            assert v is None or 0.0 <= v <= 1.0
    if 0 < r["hallucinated"] < r["object_sentences"]:
        assert r["auc"]["clip_delta"] is not None and r["auc"]["shapesworld/value"] is not None


def test_auc_without_a_pair_is_none():
    ok = np.array([True, True])
    x = np.array([0.1, 0.2])
    assert value_discrimination.auc(x, ok) is None
    assert value_discrimination.within_image_auc(x, ok, np.array([0, 1])) is None
    ok = np.array([True, False, True, False])
    x = np.array([0.9, 0.1, 0.2, 0.3])
    assert value_discrimination.auc(x, ok) == 0.75
    assert value_discrimination.within_image_auc(x, ok, np.array([0, 0, 1, 1])) == 0.5
