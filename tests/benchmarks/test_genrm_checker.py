"""benchmarks/genrm_checker.py with the shipped judge on 2 test images, 1 caption each: the
random set is one true and one false claim per image, and the AUC and refutation shares the
results pages quote are probabilities."""

from benchmarks import genrm_checker


def test_checker_tiny(shapes_split, run_main, tmp_path):
    data = shapes_split("test", 2)
    r = run_main(
        genrm_checker,
        "--reward-models",
        "shapesworld/genrm",
        "--data",
        data,
        "--n-images",
        2,
        "--k",
        1,
        out=tmp_path / "checker.json",
    )
    assert r["claims"]["random"] == {"n": 4, "false": 2}
    assert r["claims"]["own"]["n"] >= r["claims"]["own"]["false"] >= 0
    m = r["models"]["shapesworld/genrm"]
    for kind in ("own", "random"):
        assert m[kind]["auc"] is None or 0.0 <= m[kind]["auc"] <= 1.0
        assert 0.0 <= m[kind]["false_refuted"] <= 1.0 and 0.0 <= m[kind]["true_refuted"] <= 1.0
    assert m["random"]["auc"] is not None


def test_auc_counts_ties_as_half():
    assert genrm_checker.auc([0.0], [1.0, 0.0]) == 0.75
    assert genrm_checker.auc([], [1.0]) is None
