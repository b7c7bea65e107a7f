"""Autoscaling, watched, on Ray's fake multi-node provider (benchmarks/autoscaling.py): an SVP
job through the Jobs API brings GPU-type workers up from 0 and the autoscaler removes them
after the idle timeout; the Serve app scales 1 -> 2 replicas under load and back to 1.

The fake cluster's worker type is read from cluster.yaml's gpu_worker, so the two cannot drift."""

import pytest
import yaml
from ray.autoscaler._private.util import validate_config

from benchmarks import autoscaling

CLUSTER_YAML = autoscaling.CLUSTER_YAML


def test_fake_worker_type_is_cluster_yaml_gpu_worker():
    gpu = yaml.safe_load(CLUSTER_YAML.read_text())["available_node_types"]["gpu_worker"]
    ((name, node),) = autoscaling.worker_node_types().items()
    assert name == "gpu_worker"
    resources = dict(node["resources"])
    assert resources.pop("object_store_memory") == autoscaling.WORKER_OBJECT_STORE_BYTES  # fake-cluster only
    assert resources == gpu["resources"] and resources["GPU"] == 1
    assert node["min_workers"] == gpu["min_workers"] == 0
    assert node["max_workers"] == min(gpu["max_workers"], autoscaling.MAX_WORKERS) == 2


def test_fake_worker_type_follows_cluster_yaml(tmp_path):
    cfg = yaml.safe_load(CLUSTER_YAML.read_text())
    cfg["available_node_types"]["gpu_worker"]["resources"] = {"CPU": 4, "GPU": 2}
    cfg["available_node_types"]["gpu_worker"]["max_workers"] = 1
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(cfg))
    (node,) = autoscaling.worker_node_types(tmp_path / "cluster.yaml").values()
    assert {k: v for k, v in node["resources"].items() if k != "object_store_memory"} == {"CPU": 4, "GPU": 2}
    assert node["max_workers"] == 1


def test_fake_cluster_config_validates_with_rays_validator():
    cfg = autoscaling.fake_cluster_config("10.0.0.1:6379", autoscaling.worker_node_types(), {"CPU": 0, "GPU": 0})
    validate_config(cfg)
    assert cfg["provider"]["type"] == "fake_multinode" and cfg["provider"]["gcs_address"] == "10.0.0.1:6379"
    assert cfg["available_node_types"][autoscaling.FAKE_HEAD_TYPE]["max_workers"] == 0
    assert cfg["max_workers"] == 2 and cfg["idle_timeout_minutes"] == autoscaling.IDLE_TIMEOUT_MINUTES
    cfg["available_node_types"]["gpu_worker"]["min_workers"] = "zero"
    with pytest.raises(Exception, match="min_workers|zero"):
        validate_config(cfg)


def test_summarise_keeps_only_changes():
    samples = [
        {"t": 0, "phase": "a", "workers": 0, "replicas": None},
        {"t": 1, "phase": "a", "workers": 0, "replicas": None},
        {"t": 2, "phase": "a", "workers": 1, "replicas": None},
        {"t": 3, "phase": "b", "workers": 1, "replicas": None},
        {"t": 4, "phase": "b", "workers": 1, "replicas": None},
    ]
    assert [s["t"] for s in autoscaling.summarise(samples)] == [0, 2, 3]


@pytest.mark.ray
@pytest.mark.slow
def test_job_and_serve_autoscale_from_zero_and_back(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a real GPU is here: the fake GPU nodes would each hand it to a replica")
    r = autoscaling.run(tmp_path / "autoscaling.json")  # tears the cluster down whatever happens
    assert (tmp_path / "autoscaling.json").is_file()
    assert r["processes_left_after_shutdown"] == 0
    job, srv, tl = r["job"], r["serve"], r["timeline"]
    assert job["status"] == "SUCCEEDED", job["logs_tail"]
    job_workers = [s["workers"] for s in tl if s["phase"] == "job"]
    assert job_workers[0] == 0 and max(job_workers) >= 1  # added from zero by the job's demand
    assert job["seconds_to_zero_workers_after_job"] is not None  # removed after the idle timeout
    assert [s["workers"] for s in tl if s["phase"] == "after_job"][-1] == 0
    probe = job["gpu_probe_on_worker"]
    assert probe["gpu_ids"] and probe["torch_cuda_available"] is False  # a declared GPU, models on CPU
    assert srv["replicas_before_load"] == [1]
    assert srv["max_replicas_under_load"] >= 2 and srv["seconds_to_2_replicas_under_load"] is not None
    assert srv["seconds_to_1_replica_after_load"] is not None
    assert srv["requests"] > 0 and srv["requests_ok"] == srv["requests"], srv["other_codes"]
    assert srv["max_workers_under_load"] == 2  # one GPU worker per replica
    assert srv["seconds_to_zero_workers_after_serve"] is not None
