"""benchmarks/clip_ranking.py on 2 val images: one ranking per object, and the losses by changed
attribute add up to the objects whose true sentence did not rank first."""

import json
import math

from benchmarks import clip_ranking


def test_clip_ranking_counts_add_up(shapes_split, run_main, tmp_path):
    data = shapes_split("val", 2)
    r = run_main(clip_ranking, "--data", data, out=tmp_path / "clip_ranking.json")
    n = len(json.loads((data / "instances.json").read_text())["annotations"])
    assert r["n_objects"] == n > 0
    assert 0.0 <= r["top1_accuracy"] <= 1.0
    losses = r["losses_by_changed_attribute"]
    assert set(losses) <= {"colour", "shape", "size", "position"}
    assert sum(losses.values()) == round(n * (1 - r["top1_accuracy"]))
    assert math.isfinite(r["seconds"]) and r["seconds"] > 0
