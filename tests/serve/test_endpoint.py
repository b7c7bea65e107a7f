"""The captioning endpoint as a user meets it: a real Serve HTTP endpoint on 127.0.0.1 with
the shipped ShapesWorld models, called through the official `openai` client and raw HTTP."""

import base64
import concurrent.futures as cf
import io
import json
import socket
import threading
import time

import pytest
import ray
import requests
from openai import AuthenticationError, BadRequestError, OpenAI
from PIL import Image
from ray import serve

from benchmarks.reliability import malformed_requests, memory, replica_pid
from groundloop.data.coco import load_image
from groundloop.worlds import shapes as world
from serve.app import build_app

pytestmark = pytest.mark.ray
NOT_AN_IMAGE = "data:image/png;base64," + base64.b64encode(b"x" * 99).decode()
KEY = "test-key-123"
AUTH = {"authorization": f"Bearer {KEY}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data_url(img) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def png_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def chat_body(url: str, text: str = "", model: str = "groundloop-greedy", **extra) -> dict:
    content = ([{"type": "text", "text": text}] if text else []) + [{"type": "image_url", "image_url": {"url": url}}]
    return {"model": model, "messages": [{"role": "user", "content": content}]} | extra


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(
        build_app(
            {
                "value": "shapesworld/value",
                "clip": "shapesworld/clip",
                "torch_threads": 1,
                "decode": {"temperatures": [0.3, 0.7], "k": 2},
                "api_key": KEY,
                "max_batch_size": 8,
                "batch_wait_timeout_s": 0.2,
                "retry_after_s": 3,
                "deployment": {
                    "ray_actor_options": {"num_cpus": 0.5},
                    "max_ongoing_requests": 8,
                    "max_queued_requests": 4,
                },
            }
        ),
        name="captions",
        route_prefix="/",
    )
    data = tmp_path_factory.mktemp("scenes")
    world.generate(data, "test", 3, seed=123)
    yield f"http://127.0.0.1:{port}", sorted((data / "images").glob("*.png"))
    serve.shutdown()
    ray.shutdown()


def post(url: str, body, headers=AUTH, timeout=120) -> requests.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(
        f"{url}/v1/chat/completions", data=raw, timeout=timeout, headers={"content-type": "application/json"} | headers
    )


def test_openai_client_gets_a_caption_of_the_image(endpoint):
    url, images = endpoint
    client = OpenAI(base_url=f"{url}/v1", api_key=KEY)
    for model in ("groundloop-greedy", "groundloop-vimar"):
        r = client.chat.completions.create(
            model=model,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": ""},
                        {"type": "image_url", "image_url": {"url": data_url(load_image(images[0]))}},
                    ],
                }
            ],
        )
        caption = r.choices[0].message.content
        assert caption.startswith("In the image") and r.usage.completion_tokens > 5, (model, caption)
        assert any(s in caption for s in world.SHAPES)
    r = client.chat.completions.create(
        model="groundloop-greedy",
        max_tokens=4,
        messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(load_image(images[0]))}}]}
        ],
    )
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens <= 4
    ids = [m.id for m in client.models.list().data]
    assert "groundloop-vimar" in ids and "groundloop-visvm" in ids


def test_openai_client_streams_a_caption_and_asks_for_several(endpoint):
    url, images = endpoint
    client = OpenAI(base_url=f"{url}/v1", api_key=KEY)
    image = {"type": "image_url", "image_url": {"url": data_url(load_image(images[0]))}}
    messages = [{"role": "user", "content": [image]}]
    whole = client.chat.completions.create(model="groundloop-greedy", messages=messages).choices[0].message.content
    chunks = list(client.chat.completions.create(model="groundloop-greedy", messages=messages, stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert "".join(pieces) == whole and len(pieces) == whole.count(". ") + 1  # a sentence per chunk
    assert chunks[-1].choices[0].finish_reason == "stop"
    several = client.chat.completions.create(model="groundloop-bon", messages=messages, n=3, temperature=1.0)
    assert [c.index for c in several.choices] == [0, 1, 2]
    assert all(c.message.content.startswith("In the image") for c in several.choices)


def test_without_the_api_key_every_v1_route_is_401(endpoint):
    url, images = endpoint
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
    r = post(url, chat_body(data_url(load_image(images[0]))), headers={})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert requests.get(f"{url}/health", timeout=30).json()["status"] == "ok"


def test_malformed_requests_get_4xx_and_the_replica_keeps_serving(endpoint):
    url, images = endpoint
    r = post(url, b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    bad = [
        {"model": "groundloop-greedy", "messages": [{"role": "user", "content": "no image here"}]},
        chat_body("data:image/png;base64,!!!"),
        chat_body(NOT_AN_IMAGE),
    ]
    for body in bad:
        r = post(url, body)
        assert 400 <= r.status_code < 500 and r.json()["error"]["message"], body
    r = post(url, chat_body(data_url(Image.new("RGB", (5000, 5000)))))
    assert r.status_code == 413
    # a decoder this deployment has no model for (no reward model configured): 404, not a 500
    r = post(url, chat_body(data_url(load_image(images[0])), model="groundloop-genrm_bon"))
    assert r.status_code == 404 and "not served" in r.json()["error"]["message"]
    client = OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(BadRequestError):
        client.chat.completions.create(model="groundloop-greedy", messages=[{"role": "user", "content": "hi"}])
    r = post(url, chat_body(data_url(load_image(images[1]))))
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]


def test_a_poisoned_request_does_not_take_its_batch_down(endpoint):
    url, images = endpoint
    good = chat_body(data_url(load_image(images[2])), "Describe the image.", max_tokens=12)
    poisoned = chat_body(data_url(load_image(images[2])), "<image> Describe the image.", max_tokens=12)
    before = requests.get(f"{url}/health", timeout=30).json()["batches"]

    def polite(body):  # a client that honours 503 + Retry-After (the fixture's queue holds 4)
        for _ in range(5):
            r = post(url, body)
            if r.status_code != 503:
                return r
            time.sleep(float(r.headers.get("retry-after", 1)))
        return r

    with cf.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(polite, [good] * 3 + [poisoned] + [good] * 4))
    codes = [r.status_code for r in replies]
    assert codes == [200] * 3 + [400] + [200] * 4, codes
    assert "special token" in replies[3].json()["error"]["message"]
    after = requests.get(f"{url}/health", timeout=30).json()["batches"]
    assert after - before < 7  # the seven good requests went through shared batches


def test_a_malformed_request_fuzz_gets_only_4xx_from_the_same_replica(endpoint):
    url, images = endpoint
    pid = replica_pid()
    rss = memory(pid)["VmRSS"]
    cases = malformed_requests(png_bytes(load_image(images[0])), 220, seed=7)
    with cf.ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda c: post(url, c[1], timeout=60).status_code, cases))
    by_code = {c: [label for (label, _), k in zip(cases, codes) if k == c] for c in set(codes)}
    assert not [c for c in codes if c >= 500], {c: v[:5] for c, v in by_code.items() if c >= 500}
    assert sum(400 <= c < 500 for c in codes) > 180
    assert replica_pid() == pid and memory(pid)["VmRSS"] - rss < 200 * 2**20


def test_a_burst_past_the_queue_gets_503_with_retry_after(endpoint):
    url, images = endpoint
    # vimar (seconds per caption) so the first requests are still running when the last arrive
    body = chat_body(data_url(load_image(images[1])), "Describe every object.", model="groundloop-vimar")
    start = threading.Barrier(40)

    def fire(_):
        start.wait()  # the whole burst at once
        return post(url, body, timeout=600)

    with cf.ThreadPoolExecutor(40) as pool:  # 8 ongoing and 4 queued are let in
        replies = list(pool.map(fire, range(40)))
    codes = [r.status_code for r in replies]
    assert set(codes) <= {200, 503} and codes.count(503) >= 10, codes
    rejected = next(r for r in replies if r.status_code == 503)
    assert rejected.headers.get("retry-after") == "3"
    assert post(url, chat_body(data_url(load_image(images[1])), max_tokens=5)).status_code == 200
