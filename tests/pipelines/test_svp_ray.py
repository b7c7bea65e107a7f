"""SVP end to end on a real local Ray cluster: Ray Data actor pools, Ray Train LoRA, resume."""

import json

import pandas as pd
import pytest

from groundloop.worlds import shapes as world

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("svp_data")
    world.generate(root / "train", "train", 8, seed=11)
    world.generate(root / "test", "test", 3, seed=11)
    (root / "train" / "images" / "train_000003.png").write_bytes(b"broken")
    return root


def test_svp_runs_selects_per_image_trains_a_peft_adapter_and_resumes(ray_cluster, data, tmp_path):
    from peft import PeftModel

    from groundloop.models import load_vlm
    from pipelines.svp import run as svp

    args = [
        "run.name=t",
        f"run.dir={tmp_path}",
        f"data.path={data / 'train'}",
        f"data.eval_path={data / 'test'}",
        "data.n_images=8",
        "data.eval_n_images=3",
        "sampling.k=4",
        "sampling.max_new_tokens=60",
        "svp.iterations=1",
        "svp.top_fraction=0.25",
        "train.batch_size=2",
        "resources.batch_size=2",
    ]
    report = svp.main(["--config", "configs/svp_shapes.yaml", *args])
    it = tmp_path / "t" / "iter_1"
    scored = pd.read_parquet(it / "scored.parquet")
    good = scored[scored["error"] == ""]
    assert len(scored) == 7 * 4 + 1 and good["image_id"].nunique() == 7  # the broken image: one error row
    assert {"image_id", "prior", "grounding", "guided", "S", "delta", "selected"} <= set(scored.columns)
    assert (good.groupby("image_id")["selected"].sum() == 1).all()  # 0.25 * 4 per image
    best = good.loc[good.groupby("image_id")["delta"].idxmax()]  # svp.score: delta in the recipe
    assert best["selected"].all()
    errors = [json.loads(x) for x in (tmp_path / "t" / "errors.jsonl").read_text().splitlines()]
    assert [e["image_id"] for e in errors] == [3] and "train_000003.png" in errors[0]["error"]
    model, _ = load_vlm("shapesworld/vlm")
    assert isinstance(PeftModel.from_pretrained(model, str(it / "adapter")), PeftModel)
    assert report["iterations"][0]["metrics"]["n_captions"] == 3
    assert (tmp_path / "t" / "report.md").exists() and (tmp_path / "t" / "chair_recall.png").exists()

    # a re-run with the same name resumes: nothing is sampled or trained again
    before = (it / "scored.parquet").stat().st_mtime_ns
    svp.main(["--config", "configs/svp_shapes.yaml", *args])
    assert (it / "scored.parquet").stat().st_mtime_ns == before
    assert len(pd.read_parquet(it / "scored.parquet")) == 29

    # the adapter evaluates with pipelines/evaluate.py --adapter
    from pipelines.evaluate import run as evaluate

    out = tmp_path / "eval.json"
    rep = evaluate.main(
        [
            "--model",
            "shapesworld/vlm",
            "--adapter",
            str(it / "adapter"),
            "--data",
            str(data / "test"),
            "--no-pope",
            "--out",
            str(out),
        ]
    )
    assert rep["n_images"] == 3 and rep["adapter"] == str(it / "adapter")
    assert json.loads(out.read_text())["chair_i"] == rep["chair_i"]
    samples = report["iterations"][0]["samples"]
    assert samples["selected"]["n"] == 7 and samples["prior"]["n"] == 28


def test_svp_score_genrm_ranks_each_images_guided_captions_with_the_reward_model(ray_cluster, data):
    from groundloop import config as config_lib
    from pipelines.svp import run as svp
    from pipelines.svp.config import SVPConfig

    cfg = config_lib.load(
        SVPConfig,
        "configs/svp_shapes.yaml",
        [
            f"data.path={data / 'train'}",
            "sampling.k=3",
            "sampling.max_new_tokens=40",
            "svp.score=genrm",
            "svp.top_fraction=0.3",
            "model.reward_model=shapesworld/genrm",
        ],
    )
    rows = [{"image_id": i, "path": str(data / "train" / "images" / f"train_{i:06d}.png"), "error": ""} for i in (1, 2)]
    df = svp.finish(cfg, svp.sample_and_score(cfg, rows, None, "shapes").to_pandas(), 1)
    assert len(df) == 2 * 3 and df["genrm"].notna().all()
    # round robin over an image's 3 guided captions: their win probabilities add up to 3 pairs
    assert df.groupby("image_id")["genrm"].sum().round(4).tolist() == [3.0, 3.0]
    best = df.loc[df.groupby("image_id")["genrm"].idxmax()]
    assert best["selected"].all() and df.groupby("image_id")["selected"].sum().tolist() == [1, 1]


def test_sample_stage_streams_parts_and_a_rerun_samples_only_the_images_not_written(ray_cluster, data, tmp_path):
    from groundloop import config as config_lib
    from pipelines.svp import run as svp
    from pipelines.svp.config import SVPConfig

    cfg = config_lib.load(
        SVPConfig,
        "configs/svp_shapes.yaml",
        [f"data.path={data / 'train'}", "sampling.k=2", "sampling.max_new_tokens=8", "resources.batch_size=1"],
    )
    rows = [
        {"image_id": i, "path": str(data / "train" / "images" / f"train_{i:06d}.png"), "error": ""}
        for i in (1, 2, 4, 5)
    ]
    stats = svp.sample_to(cfg, rows, None, "shapes", tmp_path, 1, tmp_path / "errors.jsonl")
    parts = sorted((tmp_path / "scored.parts").glob("part-*.parquet"))
    assert stats["images_written"] == 4 and len(parts) >= 2  # one block per image: several parts
    lost = pd.read_parquet(parts[-1])["image_id"].unique().tolist()
    parts[-1].unlink()  # as if the driver had been killed before that block arrived
    stats = svp.sample_to(cfg, rows, None, "shapes", tmp_path, 1, tmp_path / "errors.jsonl")
    assert stats["images_before"] == 4 - len(lost) and stats["images_written"] == len(lost)
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    assert len(scored) == 4 * 2 and not scored.duplicated(["image_id", "sample"]).any()
    assert len(pd.read_parquet(tmp_path / "selected.parquet")) == 4  # top_fraction 0.2 of 2: one per image
    assert json.loads((tmp_path / "sample_quality.json").read_text())["prior"]["n"] == 8
