"""The value-model and VL-GenRM sampling graphs stream their rows into parquet parts
(pipelines.common.sink) and resume per image: a run pre-seeded with some images' parts
samples only the others, keeps what was written, and ends with every image's rows once."""

import json

import pandas as pd
import pytest

from groundloop import config as config_lib
from groundloop.data.coco import load_dataset
from groundloop.worlds import shapes as world

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """4 images, the last unreadable (one error row, keyed like the others)."""
    root = tmp_path_factory.mktemp("parts_data")
    world.generate(root / "val", "val", 4, seed=41)
    out = [{"image_id": r.image_id, "path": str(r.path), "error": ""} for r in load_dataset(root / "val")]
    with open(out[-1]["path"], "wb") as f:
        f.write(b"not a png")
    return out


def part_ids(folder):
    """{part name: (mtime, image ids)} of the parts written in `folder`."""
    return {
        p.name: (p.stat().st_mtime_ns, set(pd.read_parquet(p, columns=["image_id"])["image_id"]))
        for p in folder.glob("part-*.parquet")
    }


def check_resumed(folder, before, df, rows, per_image, sub="sample"):
    """The second run kept the first run's parts, wrote only the other images, and the union is
    every image x its rows (one for the unreadable one), each once, in input order."""
    after = part_ids(folder)
    assert all(after[name] == seen for name, seen in before.items())  # not rewritten, not removed
    first = set().union(*(ids for _, ids in before.values()))
    redone = set().union(*(ids for name, (_, ids) in after.items() if name not in before))
    ids = [r["image_id"] for r in rows]
    assert first == set(ids[:2]) and redone == set(ids[2:])
    attempts = [json.loads(x) for x in (folder / "_attempts.jsonl").read_text().splitlines()]
    assert [(a["images_before"], a["images_written"], a["duplicates_dropped"]) for a in attempts] == [
        (0, 2, 0),
        (2, 2, 0),
    ]
    want = [(i, j) for i in ids[:-1] for j in range(per_image)] + [(ids[-1], 0)]
    assert list(zip(df["image_id"], df[sub])) == want  # union complete, 0 duplicates, input order
    assert (df["error"] != "").tolist() == [False] * (len(want) - 1) + [True]


def test_value_caption_sets_stream_into_parts_and_resume_per_image(ray_cluster, rows, tmp_path):
    from pipelines.value import run as value
    from pipelines.value.config import ValueConfig

    overrides = ["sampling.temperatures=[0.7]", "sampling.k=1", "sampling.max_new_tokens=8", "resources.batch_size=1"]
    cfg = config_lib.load(ValueConfig, "configs/value_shapes.yaml", overrides)
    folder = tmp_path / "captions.parts"
    first = value.captions_to(cfg, rows[:2], folder)  # a run cut short after two images
    before = part_ids(folder)
    caps = value.captions_to(cfg, rows, folder)
    check_resumed(folder, before, caps, rows, per_image=2)
    assert list(caps["source"][:4]) == ["greedy", "t0.7"] * 2
    assert all(len(s) == len(d) > 0 for s, d in zip(caps["sentences"][:-1], caps["deltas"][:-1]))
    kept = caps[caps["image_id"].isin(first["image_id"])].reset_index(drop=True)
    assert kept[["caption", "deltas"]].equals(first[["caption", "deltas"]])  # what was written stays
    # the stage's counterfactual CLIP pass streams the same way, keyed by caption row
    ok = caps[caps["error"] == ""].reset_index(drop=True)
    swap = ["td.counterfactuals=1.0", "td.swap_groups=[red green blue yellow purple orange]"]
    cf = config_lib.load(ValueConfig, "configs/value_shapes.yaml", [*overrides, *swap])
    swaps = value.counterfactual_set(cf, ok, tmp_path / "counterfactuals.parts")
    assert swaps["row"].tolist() == list(range(len(ok))) and (swaps["image_id"] == ok["image_id"]).all()
    assert value.captions_to(cfg, rows, folder)[["image_id", "sample", "caption"]].equals(
        caps[["image_id", "sample", "caption"]]
    )  # every image written: nothing runs, the same rows come back


def test_genrm_samples_stream_into_parts_and_resume_per_image(ray_cluster, rows, tmp_path):
    from pipelines.genrm import run as genrm
    from pipelines.genrm.config import GenRMConfig

    overrides = ["sampling.k=2", "sampling.max_new_tokens=8", "resources.batch_size=1", "data.vocabulary=shapes"]
    cfg = config_lib.load(GenRMConfig, "configs/genrm_shapes.yaml", overrides)
    folder = tmp_path / "samples.parts"
    first = genrm.samples_to(cfg, rows[:2], folder)
    before = part_ids(folder)
    samples = genrm.samples_to(cfg, rows, folder)
    check_resumed(folder, before, samples, rows, per_image=2)
    assert "image_samples" not in samples and all(len(c) == len(h) for c, h in zip(samples["claims"], samples["holds"]))
    kept = samples[samples["image_id"].isin(first["image_id"])].reset_index(drop=True)
    assert kept[["response", "claims"]].equals(first[["response", "claims"]])
    # data.responses_from: only the expert runs, over the very same responses, resumable the same way
    cfg = config_lib.load(GenRMConfig, "configs/genrm_shapes.yaml", [*overrides, "data.responses_from=x.parquet"])
    again = tmp_path / "rechecked.parts"
    ids = [r["image_id"] for r in rows]
    genrm.samples_to(cfg, rows, again, samples[samples["image_id"].isin(ids[:2])])
    before = part_ids(again)
    rechecked = genrm.samples_to(cfg, rows, again, samples)
    check_resumed(again, before, rechecked, rows, per_image=2)
    cols = ["image_id", "sample", "response", "claims"]
    assert rechecked[cols].equals(samples[cols])
