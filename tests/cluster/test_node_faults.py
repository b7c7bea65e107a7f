"""Faults on a multi-node Ray cluster on this machine (a head and two worker nodes): a worker
node removed in the middle of SVP's sampling stage, the driver killed mid-stage and run again,
a Ray Train worker killed during LoRA. Each run completes with every row once and a loadable
adapter."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from groundloop.worlds import shapes as world

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ROOT = Path(__file__).resolve().parents[2]
N, K = 12, 2
SAMPLING = [
    "sampling.k=2",
    "sampling.max_new_tokens=24",
    "resources.batch_size=1",
    "resources.sampler_cpus=0.25",
    "resources.grounder_cpus=0.25",
    "resources.scorer_cpus=0.25",
]


@pytest.fixture(scope="module")
def cluster():
    """A head (1 CPU, the driver's node) and two worker nodes (1 CPU each) with fast node-death
    detection; every stage's actors take fractional CPUs, so the cluster runs on after losing a
    worker node."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": False,
            "_system_config": {
                "health_check_initial_delay_ms": 0,
                "health_check_period_ms": 500,
                "health_check_timeout_ms": 500,
                "health_check_failure_threshold": 4,
            },
        },
    )
    for _ in range(2):
        c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults") / "val"
    world.generate(root, "val", N, seed=0)
    return root


def svp_cfg(data, *more):
    from groundloop import config as config_lib
    from pipelines.svp.config import SVPConfig

    return config_lib.load(SVPConfig, str(ROOT / "configs/svp_shapes.yaml"), [f"data.path={data}", *SAMPLING, *more])


def input_rows(data):
    from groundloop.data.coco import load_dataset

    return [{"image_id": r.image_id, "path": str(r.path), "error": ""} for r in load_dataset(data)]


def wait_for(cond, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def parts(it_dir):
    return list((it_dir / "scored.parts").glob("part-*.parquet"))


def alive_actors(class_prefix):
    from ray._private import state

    return [
        a for a in state.actors().values() if a["ActorClassName"].startswith(class_prefix) and a["State"] == "ALIVE"
    ]


def assert_every_row_once(it_dir):
    scored = pd.read_parquet(it_dir / "scored.parquet")
    assert len(scored) == N * K, f"{len(scored)} rows, expected {N * K}"
    assert not scored.duplicated(["image_id", "sample"]).any()
    assert (scored.groupby("image_id").size() == K).all() and scored["image_id"].nunique() == N
    assert (scored["error"] == "").all() and (scored["guided"].str.len() > 0).all()
    return scored


def test_a_worker_node_removed_mid_sampling_loses_and_duplicates_no_row(cluster, data, tmp_path):
    from pipelines.svp import run as svp

    cfg, it_dir = svp_cfg(data), tmp_path / "iter_1"
    removed: dict = {}

    def remove_a_worker_node():
        wait_for(lambda: parts(it_dir), 600, "the first part")
        # the worker node running most of the stage's actors ("MapWorker(MapBatches(SamplerActor))", ...)
        on = [a["Address"]["NodeID"] for a in alive_actors("MapWorker(")]
        node = max(cluster.worker_nodes, key=lambda n: on.count(n.node_id))
        removed.update(actors=on.count(node.node_id), parts_before=len(parts(it_dir)))
        cluster.remove_node(node, allow_graceful=False)

    killer = threading.Thread(target=remove_a_worker_node, daemon=True)
    killer.start()
    stats = svp.sample_to(cfg, input_rows(data), None, "shapes", it_dir, 1, tmp_path / "errors.jsonl")
    killer.join(timeout=60)
    cluster.add_node(num_cpus=1)  # back to three nodes for the next test
    assert removed["actors"] >= 1, "the removed node ran none of the stage's actors"
    assert removed["parts_before"] < stats["parts_written"], "the node went after the stage had finished"
    assert_every_row_once(it_dir)
    assert stats["images_written"] == N and stats["duplicates_dropped"] == 0
    print(
        f"node removal: {removed['actors']} actor(s) on the removed node, {removed['parts_before']} of "
        f"{stats['parts_written']} parts written before it; {N * K} rows, 0 duplicates"
    )


DRIVER = """
import sys
import ray
from groundloop import config as config_lib
from groundloop.data.coco import load_dataset
from pipelines.svp import run as svp
from pipelines.svp.config import SVPConfig
from pathlib import Path
ray.init(address={address!r}, log_to_driver=False)
cfg = config_lib.load(SVPConfig, {recipe!r}, {overrides!r})
rows = [{{"image_id": r.image_id, "path": str(r.path), "error": ""}} for r in load_dataset({data!r})]
svp.sample_to(cfg, rows, None, "shapes", Path({it_dir!r}), 1, Path({it_dir!r}) / "errors.jsonl")
"""


def test_a_driver_killed_mid_sampling_and_run_again_samples_only_the_rest(cluster, data, tmp_path):
    """SIGKILL of the driver (its job's actors go with it), then the same command again."""
    it_dir = tmp_path / "iter_1"
    script = DRIVER.format(
        root=str(ROOT),
        address=cluster.address,
        recipe=str(ROOT / "configs/svp_shapes.yaml"),
        overrides=[f"data.path={data}", *SAMPLING],
        data=str(data),
        it_dir=str(it_dir),
    )
    first = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.DEVNULL)
    wait_for(lambda: parts(it_dir) or first.poll() is not None, 600, "the first part")
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = {int(i) for p in parts(it_dir) for i in pd.read_parquet(p, columns=["image_id"])["image_id"]}
    assert 0 < len(before) < N
    again = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_every_row_once(it_dir)
    attempts = [json.loads(x) for x in (it_dir / "scored.parts" / "_attempts.jsonl").read_text().splitlines()]
    # the killed run never finished; the second wrote exactly the images the first had not
    assert attempts == [attempts[-1]] and attempts[-1]["images_before"] == len(before)
    assert attempts[-1]["images_written"] == N - len(before) and attempts[-1]["duplicates_dropped"] == 0
    print(f"driver kill: {len(before)} of {N} images written before the kill, {N - len(before)} sampled after it")


def test_a_train_worker_killed_mid_lora_resumes_from_its_checkpoint(cluster, data, tmp_path):
    import psutil
    from peft import PeftModel

    from groundloop.models import load_vlm
    from pipelines.svp import train as svp_train

    records = world_records(data)
    pd.DataFrame(
        {
            "image_id": [r.image_id for r in records],
            "path": [str(r.path) for r in records],
            "guided": [r.captions[0] for r in records],
        }
    ).to_parquet(tmp_path / "selected.parquet")
    epochs, every = 3, 3
    cfg = svp_cfg(
        data,
        f"train.epochs={epochs}",
        "train.batch_size=1",
        "train.cpus_per_worker=0.5",
        "train.torch_threads=1",
        "train.lora.r=4",
        "train.lora.alpha=8",
        f"resources.train_checkpoint_every={every}",
        "resources.train_max_failures=2",
    )
    killed: dict = {}

    def latest_step():
        for snap in (tmp_path / "ray_train").glob("*/checkpoint_manager_snapshot.json"):
            latest = json.loads(snap.read_text()).get("latest_checkpoint_result")
            if latest:
                return latest["metrics"]["step"]
        return None

    def kill_the_train_worker():
        wait_for(lambda: latest_step() is not None, 600, "a registered checkpoint")
        mine = {p.pid for p in psutil.Process().children(recursive=True)}  # this cluster's processes only
        workers = [a["Pid"] for a in alive_actors("RayTrainWorker") if a["Pid"] in mine]
        killed.update(step=latest_step(), pids=workers)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_train_worker, daemon=True)
    killer.start()
    svp_train.train(cfg, tmp_path, None, "shapes")
    killer.join(timeout=60)
    adapter = tmp_path / "adapter"
    log = json.loads((adapter / "train_log.json").read_text())
    losses = json.loads((adapter / "losses.json").read_text())
    assert killed["pids"], "no Ray Train worker was found to kill"
    assert log["resumed_at"] and log["resumed_at"][0] >= every  # from a checkpoint, not from step 0
    assert len(losses) == log["step"] == N * epochs  # every step once: none lost, none repeated
    assert not (adapter / "train_state.pt").exists()
    model, _ = load_vlm("shapesworld/vlm")
    assert isinstance(PeftModel.from_pretrained(model, str(adapter)), PeftModel)
    print(
        f"train worker kill: {len(killed['pids'])} worker(s) killed after the checkpoint at step {killed['step']}; "
        f"resumed at step(s) {log['resumed_at']}, {len(losses)} of {N * epochs} steps, adapter loads"
    )


def world_records(data):
    from groundloop.data.coco import load_dataset

    return load_dataset(data)
