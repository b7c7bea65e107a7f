"""VL-GenRM end to end at toy size on a real local Ray cluster: Ray Data sampler and expert
pools build verified pairs, Ray Train runs stage 1 and a stage-2 rejection-sampling round,
each round's adapter loads with load_reward_model and is judged on the RewardBench."""

import json

import pandas as pd
import pytest

from groundloop.genrm import critique, experts
from groundloop.vocab.shapes import ShapesVocabulary
from groundloop.worlds import shapes as world

SHAPES = ShapesVocabulary()

pytestmark = pytest.mark.ray


def test_genrm_pairs_rounds_and_bench(ray_cluster, tmp_path):
    from groundloop.data.coco import load_image
    from groundloop.models import load_reward_model
    from pipelines.genrm import run as genrm

    data, bench = tmp_path / "val", tmp_path / "test"
    world.generate(data, "val", 8, seed=31)
    world.generate(bench, "test", 12, seed=32)
    (data / "images" / "val_000003.png").write_bytes(b"not a png")
    args = [
        "--config",
        "configs/genrm_shapes.yaml",
        "--out",
        str(tmp_path / "shipped"),
        "run.name=g",
        f"run.dir={tmp_path}",
        f"data.path={data}",
        "data.n_images=8",
        f"data.bench_path={bench}",
        "data.bench_per_category=2",
        "sampling.k=4",
        "sampling.judge_max_new_tokens=24",
        "train.epochs=1",
        "stage2.rounds=1",
        "stage2.n_pairs=4",
        "stage2.samples=2",
        "stage2.retention=1.0",
        "stage0.steps=2",
        "stage0.batch_size=4",
        "stage0.attn_weight=1.0",
        "stage0.probes=2",
        "train.attn_weight=1.0",
    ]
    report = genrm.main(args)
    run = tmp_path / "g"
    samples = pd.read_parquet(run / "samples.parquet")
    ok = samples[samples["error"] == ""]
    assert ok["image_id"].nunique() == 7 and len(ok) == 7 * 4
    assert [json.loads(x)["image_id"] for x in (run / "errors.jsonl").read_text().splitlines()] == [3]
    # every pair puts the response the expert's checks prefer in the labelled slot: a verified
    # response over one with a refuted claim, fewer refuted over more (graded pairs), the more
    # complete of two verified ones, or any pair the expert's tally separates (separable pairs)
    pairs = pd.read_parquet(run / "pairs.parquet")
    holds = {(r.image_id, r.response): list(r.holds) for r in ok.itertuples()}
    assert len(pairs) > 0
    for p in pairs.itertuples():
        good, bad = (p.a, p.b) if p.label == "A" else (p.b, p.a)
        assert (
            critique.tally_prefers(
                [c.text for c in SHAPES.claims(good)],
                holds[(p.image_id, good)],
                [c.text for c in SHAPES.claims(bad)],
                holds[(p.image_id, bad)],
            )
            == "A"
        )
        assert holds[(p.image_id, good)].count(False) <= holds[(p.image_id, bad)].count(False)
        assert p.thought == critique.critique(
            *(experts.Checked(x, tuple(SHAPES.claims(x)), tuple(holds[(p.image_id, x)])) for x in (p.a, p.b))
        )
    # stage 0's extra questions: phrases other images' responses made and this image's did not,
    # answered by the expert (boxes where it confirmed one)
    probes = pd.read_parquet(run / "probes.parquet")
    made = ok.groupby("image_id")["claims"].agg(lambda cs: {c for x in cs for c in x})
    assert set(probes["image_id"]) == set(made.index)
    for r in probes.itertuples():
        assert len(r.claims) == 2 and not set(r.claims) & made[r.image_id]
        assert all((len(b) > 0) == h for h, b in zip(r.holds, r.boxes))
    # stage 0 fine-tuned the VLM on the expert's claims; every round's adapter sits on it
    assert (run / "stage0" / "vlm" / "config.json").exists()
    assert json.loads((run / "round0" / "adapter" / "genrm.json").read_text())["base"] == str(run / "stage0" / "vlm")
    # the factored checks' threshold was calibrated on training pairs and travels with every adapter
    cal = json.loads((run / "check_threshold.json").read_text())
    assert cal["threshold"] in cal["grid"] and len(cal["tally_accuracy"]) == len(cal["grid"])
    assert json.loads((run / "round0" / "adapter" / "genrm.json").read_text())["check_threshold"] == cal["threshold"]
    assert len(report["rounds"]) == 2
    for r in report["rounds"]:
        assert set(r["bench"]) >= {"hallucination", "attribute", "reasoning", "general", "overall"}
    # stage 2 trains only on sampled critiques whose verdict favours the right response, margin >= threshold
    crit = pd.read_parquet(run / "round1" / "critiques.parquet")
    kept = crit[crit["kept"]]
    assert (kept["margin"] > 0).all() and (crit[crit["margin"] > 0]["kept"]).all()  # retention 1.0
    assert report["rounds"][1]["stats"]["kept"] == len(kept)
    judge = load_reward_model(str(tmp_path / "shipped"), max_new_tokens=8)  # relocatable: base inside
    assert (judge.critique, judge.check_threshold) == ("factored", cal["threshold"])
    assert len(pairs) > 0
    p = pairs.iloc[0]
    (j,) = judge.judge([load_image(p.path)], [p.question], [p.a], [p.b])
    assert 0.0 <= j.p_a <= 1.0

    # an interrupted run resumes: samples and adapters are reused, not redone
    adapter_file = run / "round1" / "adapter" / "adapter_model.safetensors"
    stamp = (run / "samples.parquet").stat().st_mtime, adapter_file.stat().st_mtime
    again = genrm.main(args)
    assert ((run / "samples.parquet").stat().st_mtime, adapter_file.stat().st_mtime) == stamp
    assert again["n_pairs"] == report["n_pairs"] and again["rounds"][1]["stats"] == report["rounds"][1]["stats"]


def test_stage0_questions_are_balanced_per_kind_and_carry_the_experts_boxes():
    from pipelines.genrm.rows import verify_rows

    box = [0.1, 0.1, 0.3, 0.3]
    samples = pd.DataFrame(
        {
            "path": ["i0.png", "i1.png"],
            "claims": [
                ["small red circle", "large blue square", "green cross", "two circles"],
                ["small red circle", "one circle", "three squares", "one cross"],
            ],
            "holds": [[True, False, True, True], [False, True, False, False]],
            # a wrong-size claim still has the object's boxes (what the expert found for "red circle")
            "boxes": [[[box], [], [box], [box, box]], [[box], [box], [], [box]]],
        }
    )
    rows = verify_rows(samples, seed=0, words=SHAPES)
    counts = rows[rows["question"].str.startswith("Are there exactly")]
    objects = rows[rows["question"].str.startswith("Is there a")]
    assert len(rows) == len(counts) + len(objects) == 4 + 4
    for part in (counts, objects):
        assert (part["answer"] == "Yes.").sum() == (part["answer"] == "No.").sum() == 2
    wrong_size = rows[(rows["path"] == "i1.png") & (rows["phrase"] == "small red circle")]
    assert list(wrong_size["answer"]) == ["No."] and wrong_size["boxes"].iloc[0] == [box]


def test_stage0_questions_balanced_per_phrase_leave_no_phrase_that_predicts_its_answer():
    from pipelines.genrm.rows import verify_rows

    # the policy's "small" claims are mostly wrong: balanced per kind, "small" would mean "No."
    claims = ["small red circle", "large blue square"]
    samples = pd.DataFrame(
        {"path": [f"i{i}.png" for i in range(8)], "claims": [claims] * 8, "holds": [[i < 2, i < 6] for i in range(8)]}
    )
    rows = verify_rows(samples, seed=0, words=SHAPES, balance="phrase")
    for phrase, n_yes in (("small red circle", 2), ("large blue square", 2)):
        answers = rows.loc[rows["phrase"] == phrase, "answer"]
        assert (answers == "Yes.").sum() == (answers == "No.").sum() == n_yes
    per_kind = verify_rows(samples, seed=0, words=SHAPES)
    small = per_kind.loc[per_kind["phrase"] == "small red circle", "answer"]
    assert (small == "No.").sum() > (small == "Yes.").sum()  # what phrase balancing removes
    with pytest.raises(ValueError, match="balance"):
        verify_rows(samples, seed=0, words=SHAPES, balance="size")


def test_baseline_without_the_expert_labels_stage0_by_the_models_own_majority():
    from pipelines.genrm.rows import self_labelled, verify_rows

    said = [
        "In the image, there is one object, one circle. A small red circle is at the top.",
        "In the image, there is one object, one circle. A small red circle is at the left.",
        "In the image, there is one object, one square. A large blue square is at the top.",
    ]
    samples = pd.DataFrame(
        {
            "image_id": [0, 0, 0],
            "path": ["i.png"] * 3,
            "response": said,
            "claims": [[c.text for c in SHAPES.claims(r)] for r in said],
            # the expert says the opposite; the baseline must not see it
            "holds": [[False, False], [False, False], [True, True]],
            "boxes": [[[], []], [[], []], [[[0, 0, 1, 1]], [[0, 0, 1, 1]]]],
        }
    )
    labelled = self_labelled(samples, SHAPES)
    assert [list(h) for h in labelled["holds"]] == [[True, True], [True, True], [False, False]]
    assert "boxes" not in labelled
    rows = verify_rows(labelled, seed=0, words=SHAPES)
    truth = {
        "Is there a small red circle in the image?": "Yes.",
        "Is there a large blue square in the image?": "No.",
        "Are there exactly one circle in the image?": "Yes.",
        "Are there exactly one square in the image?": "No.",
    }
    assert set(zip(rows["question"], rows["answer"])) <= set(truth.items()) and len(rows) == 4
