"""The entry points a user runs, on a tiny model of each VLM family (slow: `pytest -m slow`):
pipelines/evaluate.py and a small pipelines/svp.py run on real photographs with the COCO
vocabulary and a tiny GroundingDINO (the adapter reloads and wraps only the language model), and
the Serve app answering one chat-completions request over HTTP."""

import base64
import io
import json
import socket
from pathlib import Path

import pandas as pd
import pytest
import requests

from tests.families import tiny

pytestmark = [pytest.mark.slow, pytest.mark.ray]
PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"


@pytest.fixture(scope="module")
def cluster():
    import ray
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()
    ray.shutdown()


@pytest.mark.parametrize("family", tiny.FAMILIES)
def test_evaluate_svp_and_serve_run_on_the_family(family, cluster, family_folders, grounding_dino, tmp_path):
    from peft import PeftModel
    from PIL import Image
    from ray import serve

    from groundloop.models import families, load_vlm
    from pipelines.evaluate import run as evaluate
    from pipelines.svp import run as svp
    from serve.app import build_app

    vlm = family_folders(family)
    report = evaluate.main(
        [
            "--data",
            str(PHOTOS),
            "--model",
            vlm,
            "--vocabulary",
            "coco",
            "--grounded",
            "--detector",
            grounding_dino,
            "--max-new-tokens",
            "8",
            "--out",
            str(tmp_path / "e.json"),
        ]
    )
    assert report["vocabulary"] == "coco" and report["n_images"] == 5 and report["n_errors"] == 1

    run = svp.main(
        [
            "--config",
            "configs/svp_shapes.yaml",
            "run.name=f",
            f"run.dir={tmp_path}",
            f"data.path={PHOTOS}",
            f"data.eval_path={PHOTOS}",
            "data.vocabulary=coco",
            "data.n_images=3",
            "data.eval_n_images=3",
            f"model.vlm={vlm}",
            f"model.detector={grounding_dino}",
            "sampling.k=2",
            "sampling.max_new_tokens=8",
            "train.epochs=1",
            "train.batch_size=2",
            "resources.batch_size=2",
        ]
    )
    assert run["iterations"][0]["metrics"]["vocabulary"] == "coco"
    assert len(pd.read_parquet(tmp_path / "f" / "iter_1" / "scored.parquet")) == 6
    peft = PeftModel.from_pretrained(load_vlm(vlm)[0], str(tmp_path / "f" / "iter_1" / "adapter"))
    wrapped = [n for n, m in peft.named_modules() if type(m).__name__ == "Linear" and hasattr(m, "lora_A")]
    assert wrapped and all(f".{families.FAMILIES[family].language_model}." in n for n in wrapped)

    serve.run(
        build_app(
            {
                "vlm": vlm,
                "value": "shapesworld/value",
                "clip": "shapesworld/clip",
                "max_new_tokens": 8,
                "deployment": {"ray_actor_options": {"num_cpus": 0.5}},
            }
        ),
        name=family,
        route_prefix="/",
    )
    buf = io.BytesIO()
    Image.open(PHOTOS / "images" / "chelsea.jpg").save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    body = {
        "model": "groundloop-greedy",
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
    }
    r = requests.post(
        f"{cluster}/v1/chat/completions",
        data=json.dumps(body),
        timeout=120,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["choices"][0]["message"]["content"], str)
    serve.delete(family)
