"""The same SVP command with the same seed gives the same samples, the same adapter and the same
metrics; another seed gives other samples (so the check can fail)."""

import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from groundloop.worlds import shapes as world

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # three small SVP runs: ~3 min on 2 cores

COLUMNS = ["image_id", "sample", "prior", "guided", "S", "delta", "selected"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("repro_data")
    world.generate(root / "train", "train", 6, seed=21)
    world.generate(root / "test", "test", 4, seed=21)
    return root


def run(data, out, name, seed):
    from pipelines.svp import run as svp

    svp.main(
        [
            "--config",
            "configs/svp_shapes.yaml",
            f"run.name={name}",
            f"run.dir={out}",
            f"run.seed={seed}",
            f"data.path={data / 'train'}",
            f"data.eval_path={data / 'test'}",
            "data.n_images=6",
            "data.eval_n_images=4",
            "sampling.k=2",
            "sampling.max_new_tokens=40",
            "svp.iterations=1",
            "svp.top_fraction=0.5",
            "train.batch_size=2",
            "resources.batch_size=2",
        ]
    )
    it = out / name / "iter_1"
    scored = pd.read_parquet(it / "scored.parquet")[COLUMNS].sort_values(["image_id", "sample"]).reset_index(drop=True)
    return (
        scored,
        load_file(str(it / "adapter" / "adapter_model.safetensors")),
        json.loads((it / "metrics.json").read_text()),
    )


def test_same_seed_twice_gives_the_same_samples_adapter_and_chair(ray_cluster, data, tmp_path):
    scored_a, adapter_a, metrics_a = run(data, tmp_path, "a", seed=3)
    scored_b, adapter_b, metrics_b = run(data, tmp_path, "b", seed=3)
    pd.testing.assert_frame_equal(scored_a, scored_b)
    assert adapter_a.keys() == adapter_b.keys()
    for key in adapter_a:
        torch.testing.assert_close(adapter_a[key], adapter_b[key], rtol=0, atol=0, msg=key)
    assert metrics_a["chair_i"] == metrics_b["chair_i"] and metrics_a["recall"] == metrics_b["recall"]

    scored_c, _, _ = run(data, tmp_path, "c", seed=4)
    assert not scored_c["prior"].equals(scored_a["prior"])  # the seed reaches the samples
