"""Self-training through the endpoint on a real local Ray cluster: captions come from the
running Serve deployment, Ray Train writes an adapter, and the deployment switches to it in
place while a client keeps sending requests (none may fail)."""

import base64
import io
import socket
import threading

import pytest
import requests
from peft import PeftModel

from groundloop.worlds import shapes as world

pytestmark = pytest.mark.ray


def test_self_training_round_switches_the_live_endpoint_without_failed_requests(tmp_path):
    ray = pytest.importorskip("ray")
    from ray import serve

    from groundloop.models import load_vlm
    from pipelines.self_train import run as self_train

    world.generate(tmp_path / "val", "val", 4, seed=31)
    world.generate(tmp_path / "test", "test", 3, seed=31)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    buf = io.BytesIO()
    from groundloop.data.coco import load_image

    load_image(next((tmp_path / "test" / "images").glob("*.png"))).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    body = {
        "model": "groundloop-greedy",
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
    }
    statuses, adapters, stop = [], [], threading.Event()

    def client():
        url = f"http://127.0.0.1:{port}"
        while not stop.is_set():
            try:
                adapters.append(requests.get(f"{url}/health", timeout=30).json()["adapter"])
            except (requests.ConnectionError, ValueError):
                continue  # the endpoint is not up yet
            statuses.append(requests.post(f"{url}/v1/chat/completions", json=body, timeout=120).status_code)

    t = threading.Thread(target=client)
    t.start()
    try:
        report = self_train.main(
            [
                "--config",
                "configs/self_train_shapes.yaml",
                "run.name=st",
                f"run.dir={tmp_path}",
                f"data.path={tmp_path / 'val'}",
                "data.n_images=4",
                f"data.eval_path={tmp_path / 'test'}",
                "data.eval_n_images=3",
                f"serving.port={port}",
                "serving.temperatures=[0.5]",
                "serving.k=1",
                "serving.replica_cpus=0.25",
                "serving.keep_running=true",
                "train.epochs=1",
                "train.batch_size=2",
                "self_train.max_new_tokens=80",
            ]
        )
        for _ in range(50):  # a few more requests against the switched deployment
            if adapters and adapters[-1]:
                break
            stop.wait(0.2)
        n = len(statuses)
        while len(statuses) < n + 2:
            stop.wait(0.2)
    finally:
        stop.set()
        t.join()
        serve.shutdown()
        ray.shutdown()
    adapter = report["rounds"][0]["adapter"]
    assert report["rounds"][0]["n_captions"] == 4 and "chair_i" in report["rounds"][0]["metrics"]
    assert statuses and all(s == 200 for s in statuses), statuses
    assert None in adapters and adapter in adapters  # requests were answered before and after the switch
    model, _ = load_vlm("shapesworld/vlm")
    assert isinstance(PeftModel.from_pretrained(model, adapter), PeftModel)


def test_a_rerun_of_a_killed_self_training_command_skips_its_finished_stages(tmp_path, monkeypatch, capsys):
    ray = pytest.importorskip("ray")
    from ray import serve

    from pipelines.self_train import run as self_train

    world.generate(tmp_path / "val", "val", 2, seed=32)
    world.generate(tmp_path / "test", "test", 1, seed=32)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        "--config",
        "configs/self_train_shapes.yaml",
        "run.name=resumed",
        f"run.dir={tmp_path}",
        f"data.path={tmp_path / 'val'}",
        "data.n_images=2",
        f"data.eval_path={tmp_path / 'test'}",
        "data.eval_n_images=1",
        f"serving.port={port}",
        "serving.decoder=greedy",
        "serving.value=",
        "serving.clip=",
        "serving.replica_cpus=0.25",
        "train.epochs=1",
        "train.batch_size=2",
        "self_train.max_new_tokens=40",
    ]

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while training")

    def no_endpoint(*args, **kwargs):
        raise AssertionError("a resumed run started the endpoint for captions it already has")

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with monkeypatch.context() as m:
            m.setattr(self_train, "train_round", killed)
            with pytest.raises(KeyboardInterrupt):
                self_train.main(command)
        serve.shutdown()  # the killed driver's endpoint goes with it
        captions = tmp_path / "resumed" / "round_1" / "captions.parquet"
        written = captions.stat().st_mtime_ns
        capsys.readouterr()
        monkeypatch.setattr(self_train, "deploy", no_endpoint)
        report = self_train.main(command)
        out = capsys.readouterr().out
        again = self_train.main(command)
        out_again = capsys.readouterr().out
    finally:
        serve.shutdown()
        ray.shutdown()
    assert "[skip] eval_base" in out and "[skip] round_1/caption" in out, out
    assert "[stage] round_1/train" in out and "[stage] round_1/eval" in out, out
    assert captions.stat().st_mtime_ns == written  # the captions of the killed run were kept
    assert report["rounds"][0]["n_captions"] == 2 and (tmp_path / "resumed" / "round_1" / "adapter").is_dir()
    assert "[stage]" not in out_again, out_again  # a finished run is all skips
    assert again["rounds"] == report["rounds"] and again["base"] == report["base"]
