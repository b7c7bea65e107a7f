"""benchmarks/svp_scoring.py on 1 val image, K=2, 1 repeat, 16-token captions: shared-prefix and
full scoring give the same S / Delta, and the speed-up cluster.md quotes is positive and finite."""

import math

from benchmarks import svp_scoring


def test_svp_scoring_tiny(shapes_split, run_main, tmp_path):
    data = shapes_split("val", 1)
    r = run_main(
        svp_scoring,
        "--data",
        data,
        "--n",
        1,
        "--k",
        2,
        "--repeats",
        1,
        "--max-new-tokens",
        16,
        out=tmp_path / "svp_scoring.json",
    )
    assert r["n_images"] == 1 and r["k"] == 2 and r["captions"] == 2 and r["repeats"] == 1
    assert len(r["speedup"]) == len(r["full_captions_per_s"]) == len(r["shared_captions_per_s"]) == 1
    assert all(math.isfinite(x) and x > 0 for x in r["speedup"] + r["full_captions_per_s"])
    assert r["speedup_median"] == r["speedup"][0]
    assert r["max_abs_score_difference"] < 1e-3
    assert r["command"].startswith("python benchmarks/svp_scoring.py ") and "--k 2" in r["command"]
