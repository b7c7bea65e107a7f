"""ViMaR value-model training on a real local Ray cluster: Ray Data caption and CLIP actor
pools build TD transitions, Ray Train fits V, and the folder loads with load_value."""

import json
import math

import pandas as pd
import pytest

from groundloop.worlds import shapes as world

pytestmark = pytest.mark.ray


def test_train_value_builds_td_transitions_and_a_loadable_calibrated_value_model(ray_cluster, tmp_path):
    from groundloop.models import load_value
    from groundloop.vimar.value import split_sentences
    from pipelines.value import run as train_value

    data = tmp_path / "val"
    world.generate(data, "val", 5, seed=21)
    (data / "images" / "val_000002.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "value"
    report = train_value.main(
        [
            "--config",
            "configs/value_shapes.yaml",
            "--out",
            str(out),
            "run.name=v",
            f"run.dir={tmp_path}",
            f"data.path={data}",
            "data.n_images=5",
            "sampling.temperatures=[0.7]",
            "sampling.k=2",
            "td.epochs=1",
            "td.batch_size=8",
            "td.pool=match",
            "td.match_keys=input",
            "td.counterfactuals=1.0",
            "td.reward_weight=1.0",
            "td.swap_groups=[red green blue yellow purple orange, circle square triangle cross]",
        ]
    )
    run = tmp_path / "v"
    caps = pd.read_parquet(run / "captions.parquet")
    ok = caps[caps["error"] == ""]
    assert ok["image_id"].nunique() == 4 and len(ok) == 4 * 3  # greedy + 2 samples per readable image
    assert [json.loads(x)["image_id"] for x in (run / "errors.jsonl").read_text().splitlines()] == [2]
    td = pd.read_parquet(run / "transitions.parquet")
    gt = td[td["source"] == "ground_truth"]
    own = td[~td["source"].isin(["ground_truth", "counterfactual"])]
    assert len(own) == sum(len(split_sentences(c)) for c in ok["caption"])
    assert own["terminal"].sum() == len(ok) and gt["terminal"].sum() == 4  # one per caption
    cal = report["calibration"]
    assert (gt["reward"] == cal["gt_reward"]).all() and cal["gt_reward"] > cal["tau"]
    below = own[own["reward"] < 0]  # margin branch: only sentences whose delta fell under tau
    assert len(below) >= 1 and (own["reward"] >= -cal["alpha"] * 2).all()
    # counterfactual steps: one word of a generated sentence swapped, followed by that
    # sentence's own successor, with a reward of their own
    cf = td[td["source"] == "counterfactual"]
    assert len(cf) >= 4
    for row in cf.itertuples():
        origs = own[
            (own["path"] == row.path) & (own["next_state"] == row.next_state) & (own["terminal"] == row.terminal)
        ]
        diffs = [
            sum(a != b for a, b in zip(o.split(), row.state.split()))
            for o in origs["state"]
            if len(o.split()) == len(row.state.split())
        ]
        assert 1 in diffs, row.state
    vm = load_value(str(out))
    assert vm.meta["tau"] == cal["tau"] and "value_threshold" in vm.meta and vm.meta["gamma"] == 0.9
    assert vm.meta["pool"] == "match" and vm.meta["match_keys"] == "input"
    assert vm.meta["reward_head"] and vm.reward_head is not None  # V = R + C came back from the folder
    from groundloop.data.coco import load_image

    v = vm.values([load_image(data / "images" / "val_000001.png")] * 2, ["A small red circle is at the top.", "x."])
    assert all(math.isfinite(x) for x in v)
