"""The captioning endpoint as a user meets it: a real Serve HTTP endpoint on 127.0.0.1 with
the shipped ShapesWorld models, called through the official `openai` client and raw HTTP."""

import base64
import io
import socket

import pytest
import ray
import requests
from openai import BadRequestError, OpenAI
from PIL import Image
from ray import serve

from groundloop.data.coco import load_image
from groundloop.worlds import shapes as world
from serve.app import build_app

pytestmark = pytest.mark.ray
NOT_AN_IMAGE = "data:image/png;base64," + base64.b64encode(b"x" * 99).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data_url(img) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app({"value": "shapesworld/value", "clip": "shapesworld/clip", "torch_threads": 1,
                         "decode": {"temperatures": [0.3, 0.7], "k": 2},
                         "deployment": {"ray_actor_options": {"num_cpus": 0.5}}}),
              name="captions", route_prefix="/")
    data = tmp_path_factory.mktemp("scenes")
    world.generate(data, "test", 3, seed=123)
    yield f"http://127.0.0.1:{port}", sorted((data / "images").glob("*.png"))
    serve.shutdown()
    ray.shutdown()


def test_openai_client_gets_a_caption_of_the_image(endpoint):
    url, images = endpoint
    client = OpenAI(base_url=f"{url}/v1", api_key="unused")
    for model in ("groundloop-greedy", "groundloop-vimar"):
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": [
            {"type": "text", "text": ""},
            {"type": "image_url", "image_url": {"url": data_url(load_image(images[0]))}}]}])
        caption = r.choices[0].message.content
        assert caption.startswith("In the image") and r.usage.completion_tokens > 5, (model, caption)
        assert any(s in caption for s in world.SHAPES)
    ids = [m.id for m in client.models.list().data]
    assert "groundloop-vimar" in ids and "groundloop-visvm" in ids


def test_malformed_requests_get_4xx_and_the_replica_keeps_serving(endpoint):
    url, images = endpoint
    chat = f"{url}/v1/chat/completions"
    r = requests.post(chat, data=b"{not json", headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    bad = [
        {"model": "groundloop-greedy", "messages": [{"role": "user", "content": "no image here"}]},
        {"model": "groundloop-greedy", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,!!!"}}]}]},
        {"model": "groundloop-greedy", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": NOT_AN_IMAGE}}]}]},
    ]
    for body in bad:
        r = requests.post(chat, json=body, timeout=60)
        assert 400 <= r.status_code < 500 and r.json()["error"]["message"], body
    huge = data_url(Image.new("RGB", (5000, 5000)))
    r = requests.post(chat, json={"model": "groundloop-greedy", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": huge}}]}]}, timeout=120)
    assert r.status_code == 413
    # a decoder this deployment has no model for (no reward model configured): 404, not a 500
    r = requests.post(chat, json={"model": "groundloop-genrm_bon", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_url(load_image(images[0]))}}]}]}, timeout=60)
    assert r.status_code == 404 and "not served" in r.json()["error"]["message"]
    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(BadRequestError):
        client.chat.completions.create(model="groundloop-greedy", messages=[{"role": "user", "content": "hi"}])
    assert requests.get(f"{url}/health", timeout=30).json()["status"] == "ok"
    r = requests.post(chat, json={"model": "groundloop-greedy", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_url(load_image(images[1]))}}]}]}, timeout=120)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
