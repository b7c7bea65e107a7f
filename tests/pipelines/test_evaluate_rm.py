"""evaluate_rm.py end to end on both benchmark formats, with a real (untrained) reward model."""

import json

import pytest

from groundloop.worlds import shapes as world


def test_shapes_rewardbench_report(reward_model_folder, tmp_path):
    from pipelines.evaluate import rm as evaluate_rm

    world.generate(tmp_path / "test", "test", 10, seed=41)
    rep = evaluate_rm.main(
        [
            "--reward-model",
            reward_model_folder,
            "--data",
            str(tmp_path / "test"),
            "--per-category",
            "2",
            "--max-new-tokens",
            "4",
            "--out",
            str(tmp_path / "r.json"),
        ]
    )
    assert rep["n_pairs"] == 8 and set(rep["accuracy"]) == {
        "hallucination",
        "attribute",
        "reasoning",
        "general",
        "overall",
    }
    assert json.loads((tmp_path / "r.json").read_text())["judgements"][0]["label"] in ("A", "B")
    both = evaluate_rm.main(
        [
            "--reward-model",
            reward_model_folder,
            "--data",
            str(tmp_path / "test"),
            "--both-orders",
            "--per-category",
            "2",
            "--max-new-tokens",
            "4",
            "--out",
            str(tmp_path / "b.json"),
        ]
    )
    assert both["both_orders"]
    # the debiased P(A) is the mean of the (A, B) judgement and the flipped (B, A) one, so what
    # it implies for the flipped order is itself a probability
    for one, two in zip(rep["judgements"], both["judgements"]):
        flipped = one["p_a"] + 1 - 2 * two["p_a"]
        assert -1e-6 <= flipped <= 1 + 1e-6


def test_vl_rewardbench_file_and_a_clear_error_for_a_bad_one(capsys, reward_model_folder, tmp_path):
    from pipelines.evaluate import rm as evaluate_rm

    rep = evaluate_rm.main(
        [
            "--reward-model",
            reward_model_folder,
            "--bench",
            "vlrewardbench",
            "--data",
            "tests/fixtures/vlrewardbench/bench.jsonl",
            "--max-new-tokens",
            "4",
            "--out",
            str(tmp_path / "v.json"),
        ]
    )
    assert rep["n_pairs"] == 6 and set(rep["accuracy"]) == {"general", "hallucination", "reasoning", "overall"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "RLAIF-V-9", "query": "q", "response": ["a"], "human_ranking": [0, 1]}) + "\n")
    with pytest.raises(SystemExit) as exit_:
        evaluate_rm.main(
            [
                "--reward-model",
                reward_model_folder,
                "--bench",
                "vlrewardbench",
                "--data",
                str(bad),
                "--out",
                str(tmp_path / "x.json"),
            ]
        )
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert exit_.value.code == 2 and last.startswith("error: ") and "response" in last
