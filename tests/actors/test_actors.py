"""Actors called directly (no Ray): row contracts, errors carried per row, outputs per row."""

from pathlib import Path

import pandas as pd
import pytest

from actors.grounder import GroundingActor
from actors.sampler import SamplerActor
from actors.scorer import ScorerActor
from groundloop.worlds import shapes as world


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    paths = []
    for i, (_objects, image) in enumerate(world.scenes("val", 2, seed=4)):
        image.save(d / f"{i}.png")
        paths.append(str(d / f"{i}.png"))
    (d / "bad.png").write_bytes(b"nope")
    return pd.DataFrame({"image_id": [1, 2, 3], "path": paths + [str(d / "bad.png")], "error": ["", "", ""]})


def test_missing_column_is_named():
    actor = GroundingActor("shapesworld/detector", "shapes")
    with pytest.raises(KeyError, match="prior"):
        actor(pd.DataFrame({"path": ["x.png"]}))


def test_prior_grounding_guided_and_scores_row_by_row(rows):
    prior = SamplerActor("shapesworld/vlm", mode="prior", k=2, max_new_tokens=40)(rows)
    assert len(prior) == 2 * 2 + 1  # K samples per readable image, one error row for the bad one
    bad = prior[prior["image_id"] == 3]
    assert len(bad) == 1 and "bad.png" in bad["error"].iloc[0]
    grounded = GroundingActor("shapesworld/detector", "shapes")(prior)
    ok = grounded[grounded["error"] == ""]
    assert ok["grounding"].str.contains(r"\[0\.\d\d", regex=True).any()
    guided = SamplerActor("shapesworld/vlm", mode="guided", max_new_tokens=40)(grounded)
    scored = ScorerActor("shapesworld/vlm")(guided)
    good = scored[scored["error"] == ""]
    assert good["S"].notna().all() and (good["S"] >= -1e-4).all()  # a sum of KL terms
    assert scored[scored["error"] != ""]["S"].isna().all()


def test_grounding_from_the_union_of_an_images_priors():
    from groundloop.worlds import shapes as world

    objects = [
        world.SceneObject("circle", "red", "large", (8, 8, 36, 36)),
        world.SceneObject("square", "blue", "small", (60, 60, 80, 80)),
    ]
    path = world.render(objects, seed=0)
    d = pytest.importorskip("tempfile").mkdtemp()
    path.save(f"{d}/x.png")
    priors = [
        "In the image, there is one object, one circle. A large red circle is at the top left.",
        "In the image, there is one object, one square. A small blue square is at the bottom right.",
    ]
    batch = pd.DataFrame(
        {
            "image_id": [1, 1],
            "path": [f"{d}/x.png"] * 2,
            "error": ["", ""],
            "prior": priors,
            "image_priors": [priors, priors],
        }
    )
    own = GroundingActor("shapesworld/detector", "shapes")(batch)["grounding"].tolist()
    image_mode = GroundingActor("shapesworld/detector", "shapes", phrases_from="image")
    calls = []
    detect = image_mode.detector.detect
    image_mode.detector.detect = lambda images, queries: calls.append(len(images)) or detect(images, queries)
    union = image_mode(batch)["grounding"].tolist()
    assert sum(calls) == 1  # the image's two rows ask the same question: one detection
    assert "red circle" in own[0] and "blue square" not in own[0]  # each sample: its own phrases
    assert all("red circle" in g and "blue square" in g for g in union)  # both: the image's phrases
    with pytest.raises(ValueError, match="phrases_from"):
        GroundingActor("shapesworld/detector", "shapes", phrases_from="both")


def test_expert_checks_claims_and_keeps_unreadable_rows(rows):
    from actors.expert import ExpertActor

    batch = rows.assign(
        response=[
            "In the image, there is one object, one circle. A small red circle is at the top.",
            "Nothing to see.",
            "A large blue square.",
        ]
    )
    out = ExpertActor("shapesworld/detector", "shapes")(batch)
    assert list(out["claims"].iloc[0]) == ["small red circle", "one circle"]
    assert len(out["holds"].iloc[0]) == 2 and list(out["claims"].iloc[1]) == []
    # where the expert found each claim: boxes for a confirmed one, none for a refuted one
    for held, boxes in zip(out["holds"].iloc[0], out["boxes"].iloc[0]):
        assert (len(boxes) > 0) == held and all(0 <= v <= 1 for b in boxes for v in b)
    assert "bad.png" in out["error"].iloc[2] and list(out["holds"].iloc[2]) == []


def test_judge_and_rank_actors(rows, reward_model_folder):
    from actors.judge import JudgeActor
    from actors.ranker import RewardRankActor
    from groundloop import prompts

    caps = ["A small red circle is at the top.", "A large blue square is at the left.", "A green cross."]
    pairs = rows.assign(question=prompts.BASE_PROMPT, a=caps, b=caps[::-1])
    judged = JudgeActor("shapesworld/vlm", reward_model_folder, samples=2, temperature=1.0, max_new_tokens=6)(pairs)
    assert len(judged) == 2 * 2 + 1 and (judged[judged["error"] == ""]["logp_a"] < 0).all()
    group = pd.DataFrame({"path": [rows["path"].iloc[0]] * 3, "guided": caps})
    ranked = RewardRankActor(reward_model_folder, max_new_tokens=6)(group)
    # round robin over 3 captions: each pair's two win probabilities add up to 1
    assert ranked["genrm"].sum() == pytest.approx(3.0)


def test_expert_checks_probe_phrases_without_a_response(rows):
    from actors.expert import ExpertActor

    objects, _ = next(iter(world.scenes("val", 1, seed=4)))
    present = f"{objects[0].size} {objects[0].color} {objects[0].shape}"
    types = {(o.color, o.shape) for o in objects}
    color, shape = next(t for t in world.object_types() if t not in types)
    absent = f"large {color} {shape}"
    expert = ExpertActor("shapesworld/detector", "shapes")
    out = expert(rows.assign(phrases=[[present, absent], [absent], ["red circle"]]))
    assert list(out["claims"].iloc[0]) == [present, absent]
    assert list(out["holds"].iloc[0]) == [True, False]
    assert len(out["boxes"].iloc[0][0]) > 0 and out["boxes"].iloc[0][1] == []
    assert "bad.png" in out["error"].iloc[2]


def test_grounding_dino_as_grounder_and_as_the_expert_on_coco_captions(grounding_dino):
    """A tiny random GroundingDINO behind both actors, reading COCO captions: the grounder's
    context names only phrases of the caption, the expert checks each COCO claim (count claims
    by the number of boxes)."""
    import pandas as pd

    from actors.expert import ExpertActor
    from actors.grounder import GroundingActor

    photos = Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "images"
    batch = pd.DataFrame(
        {
            "image_id": [1, 2],
            "path": [str(photos / "chelsea.jpg"), str(photos / "coffee.jpg")],
            "prior": ["A brown cat next to two dogs.", "A cup on a red table."],
            "error": ["", ""],
        }
    )
    grounded = GroundingActor(grounding_dino, "coco")(batch)
    assert grounded["grounding"].iloc[0]  # random weights still score some boxes above the threshold
    for text in grounded["grounding"]:
        assert all(
            part.rsplit(" [", 1)[0] in {"brown cat", "dog", "cup", "red dining table", "red table"}
            for part in text.split("; ")
            if part
        ), text
    out = ExpertActor(grounding_dino, "coco")(batch.rename(columns={"prior": "response"}))
    assert list(out["claims"].iloc[0]) == ["brown cat", "two dogs"]
    assert len(out["holds"].iloc[0]) == 2 and list(out["error"]) == ["", ""]
