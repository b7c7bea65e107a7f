"""cluster.yaml is a valid Ray autoscaler config (validated offline against Ray's schema)."""

from pathlib import Path

import yaml


def test_cluster_yaml_validates():
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = yaml.safe_load((Path(__file__).resolve().parents[2] / "cluster.yaml").read_text())
    validate_config(prepare_config(cfg))
    gpu = cfg["available_node_types"]["gpu_worker"]
    assert gpu["resources"]["GPU"] >= 1 and gpu["min_workers"] == 0  # scales from zero
