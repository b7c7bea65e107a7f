"""benchmarks/genrm_best_of_n.py with the shipped judge on 2 test images x 2 captions: the
knockout judges N - 1 pairs per image, the four picks' CHAIR fields genrm.md quotes are there,
and the random-draw baseline is a distribution around its mean."""

import math

from benchmarks import genrm_best_of_n


def test_best_of_n_tiny(shapes_split, run_main, tmp_path):
    data = shapes_split("test", 2)
    r = run_main(
        genrm_best_of_n,
        "--reward-model",
        "shapesworld/genrm",
        "--data",
        data,
        "--n-images",
        2,
        "--n",
        2,
        "--random-draws",
        50,
        out=tmp_path / "best_of_2.json",
    )
    assert r["n_images"] == 2
    assert r["judged_pairs"] == 2 * (2 - 1)
    assert set(r["results"]) == {"genrm", "random", "all_n", "oracle"}
    for pick in r["results"].values():
        assert 0.0 <= pick["chair_i"] <= 1.0 and 0.0 <= pick["recall"] <= 1.0
    # the oracle picks the fewest hallucinated mentions per image: never more than the judge's pick
    assert r["results"]["oracle"]["n_hallucinated"] <= r["results"]["genrm"]["n_hallucinated"]
    d = r["random_draws"]
    assert d["n"] == 50 and d["chair_i_p05"] <= d["chair_i_mean"] <= d["chair_i_p95"]
    assert 0.0 <= d["share_of_draws_beaten_by_30pct"] <= 1.0
    assert math.isfinite(r["chair_i_change_vs_all_n"])
    assert r["sample_s"] > 0 and r["judge_s"] > 0
