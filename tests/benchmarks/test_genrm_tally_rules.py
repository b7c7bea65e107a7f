"""benchmarks/genrm_tally_rules.py with the shipped judge on a 3-image val split, a 3-point grid
and --judge: one result per rule x claim set x threshold, bench accuracies that are
probabilities, and the real judge's agreement counts adding up to the pairs it judged."""

import math

from benchmarks import genrm_tally_rules


def test_tally_rules_tiny(shapes_split, run_main, tmp_path):
    data = shapes_split("val", 3)
    r = run_main(
        genrm_tally_rules,
        "--reward-model",
        "shapesworld/genrm",
        "--data",
        data,
        "--n-images",
        2,
        "--n",
        2,
        "--per-category",
        2,
        "--grid",
        -1,
        1,
        1,
        "--judge",
        out=tmp_path / "tally.json",
    )
    grid = [-1.0, 0.0, 1.0]
    assert len(r["results"]) == len(genrm_tally_rules.RULES) * 2 * len(grid)
    assert {(x["rule"], x["claims"], x["threshold"]) for x in r["results"]} == {
        (rule, claims, t) for rule in genrm_tally_rules.RULES for claims in ("all", "objects") for t in grid
    }
    assert r["bench_pairs"] > 0 and r["bon_images"] == 2
    assert r["random_chair_i"] > 0 and math.isfinite(r["random_chair_i"])
    for x in r["results"]:
        assert all(0.0 <= v <= 1.0 for v in x["bench"].values())
        assert math.isfinite(x["bon_change_vs_random"])
    real = r["real_judge"]
    assert real["judged_pairs"] == 2 * (2 - 1) == real["tally_decides"] + real["tally_ties"]
    assert 0.0 <= real["verdict_follows_tally"] <= 1.0
