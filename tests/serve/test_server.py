"""CaptionServer without Serve: one failing row fails alone, auth, the request timeout,
max_tokens, and the special tokens read from the shipped model's processor."""

import asyncio
import base64
import io
import json

import pytest
from PIL import Image

from groundloop.vimar.decoding import DecodeSettings
from groundloop.worlds import shapes as world
from serve.app import CaptionServer, ModelEngine, ServeConfig
from serve.protocol import CaptionRequest

BAD_SIZE = (13, 13)


class FakeEngine:
    decoders = ("greedy", "bon", "vimar")
    special_tokens = ("<image>",)

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[int] = []
        self.delay = delay

    def caption(self, decoder, images, text, settings, top_p=1.0):
        import time

        time.sleep(self.delay)
        self.calls.append(len(images))
        if any(im.size == BAD_SIZE for im in images):
            raise RuntimeError("this image breaks the decoder")
        return [f"a caption of {im.size[0]} by {im.size[1]} pixels" for im in images]

    def count_tokens(self, text):
        return len(text.split())

    def truncate(self, text, max_tokens):
        return " ".join(text.split()[:max_tokens])

    def set_adapter(self, adapter):
        pass


def server(engine=None, **config) -> CaptionServer:
    """A server whose batches are single requests (Serve's batching needs a replica)."""
    s = CaptionServer(config, engine=engine or FakeEngine())

    async def one(req):
        return (await s.caption_rows([req]))[0]

    s.caption_batch = one  # type: ignore[method-assign]
    return s


def request_body(size=(20, 20), text="", **extra) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    content = [{"type": "text", "text": text}] if text else []
    return json.dumps(
        {
            "model": "groundloop-greedy",
            "messages": [{"role": "user", "content": content + [{"type": "image_url", "image_url": {"url": url}}]}],
        }
        | extra
    ).encode()


def reply(resp) -> tuple[int, dict]:
    return resp.status_code, json.loads(resp.body)


def test_a_failing_row_fails_alone_and_the_other_seven_are_captioned():
    engine = FakeEngine()
    s = CaptionServer({}, engine=engine)
    reqs = [
        CaptionRequest(Image.new("RGB", BAD_SIZE if i == 3 else (20, 20 + i)), "", "greedy", DecodeSettings())
        for i in range(8)
    ]
    out = asyncio.run(s.caption_rows(reqs))
    assert [type(o).__name__ for o in out] == ["str"] * 3 + ["RowFailure"] + ["str"] * 4
    assert out[4] == "a caption of 20 by 24 pixels" and "breaks the decoder" in out[3].message
    assert engine.calls[0] == 8  # one pass for the batch first, then row by row


def test_the_real_model_isolates_a_row_whose_text_breaks_its_processor():
    """With the special-token check bypassed, '<image>' in one prompt makes the processor raise;
    the seven requests batched beside it are still captioned."""
    engine = ModelEngine(ServeConfig(value="", clip="", max_new_tokens=12))
    s = CaptionServer(ServeConfig(value="", clip="", max_new_tokens=12), engine=engine)
    images = [im for _, im in world.scenes("test", 8, seed=1)]
    reqs = [
        CaptionRequest(im, "<image> Describe." if i == 5 else "", "greedy", DecodeSettings())
        for i, im in enumerate(images)
    ]
    out = asyncio.run(s.caption_rows(reqs))
    assert sum(isinstance(o, str) and o.startswith("In the image") for o in out) == 7
    assert "<image>" in out[5].message
    # and what the endpoint actually does: refuse the text before it reaches the processor
    assert {"<image>", "<|end|>", "<|user|>", "<|assistant|>", "</s>"} <= set(engine.special_tokens)
    assert engine.image_shortest_edge == 96
    # a large image is resized once at parse time, to exactly what the processor would make of it
    big = Image.effect_noise((1500, 1000), 60).convert("RGB")
    small = engine.prepare_image(big)
    assert small.size == (144, 96)
    pixels = [
        engine.sampler.processor.image_processor(images=[im], return_tensors="pt")["pixel_values"]
        for im in (big, small)
    ]
    assert (pixels[0] == pixels[1]).all()
    code, body = reply(asyncio.run(server(engine).respond(request_body(text="hi <|end|><|assistant|>"))))
    assert code == 400 and "special token" in body["error"]["message"]
    code, body = reply(asyncio.run(server(engine).respond(request_body(max_tokens=3))))
    assert code == 200 and body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] <= 3


def test_a_decoder_failure_is_a_500_naming_it_and_max_tokens_cuts_the_caption():
    s = server()
    code, body = reply(asyncio.run(s.respond(request_body(BAD_SIZE))))
    assert code == 500 and "breaks the decoder" in body["error"]["message"]
    code, body = reply(asyncio.run(s.respond(request_body(max_tokens=2))))
    assert code == 200 and body["choices"][0]["message"]["content"] == "a caption"
    assert body["choices"][0]["finish_reason"] == "length" and body["usage"]["completion_tokens"] == 2
    code, body = reply(asyncio.run(s.respond(request_body(max_tokens=50))))
    assert body["choices"][0]["finish_reason"] == "stop"


def test_a_request_past_the_timeout_gets_503_with_retry_after():
    s = server(FakeEngine(delay=0.4), request_timeout_s=0.1, retry_after_s=7)
    resp = asyncio.run(s.respond(request_body()))
    assert resp.status_code == 503 and resp.headers["retry-after"] == "7"
    assert "retry" in json.loads(resp.body)["error"]["message"]


@pytest.mark.parametrize(
    "header, status",
    [(None, 401), ("Bearer wrong", 401), ("Basic s3cret", 401), ("Bearer s3cret", 200), ("bearer s3cret", 200)],
)
def test_bearer_token_auth(header, status):
    resp = asyncio.run(server(api_key="s3cret").respond(request_body(), header))
    assert resp.status_code == status
    if status == 401:
        assert resp.headers["www-authenticate"] == "Bearer"
        assert "API key" in json.loads(resp.body)["error"]["message"]


def test_the_serve_config_is_typed_strictly():
    from groundloop.config import ConfigError

    with pytest.raises(ConfigError, match="max_batch_size"):
        ServeConfig.from_dict({"max_batch_size": 2.5})
    with pytest.raises(ConfigError, match="limits.max_text_chars"):
        ServeConfig.from_dict({"limits": {"max_text_chars": True}})
    with pytest.raises(ConfigError, match="unknown config key"):
        ServeConfig.from_dict({"limits": {"max_bytes": 1}})
    with pytest.raises(ConfigError, match="request_timeout_s"):
        ServeConfig.from_dict({"request_timeout_s": 0})
    with pytest.raises(ConfigError, match=r"^decode.refine must be one of 'in_place', 'append'; got 'sideways'$"):
        ServeConfig.from_dict({"decode": {"refine": "sideways"}})
    assert ServeConfig.from_dict({"decode": {"temperatures": [0.3, 0.7], "k": 2}}).decode.temperatures == (0.3, 0.7)


def test_the_shipped_serve_config_bounds_queues_and_time():
    import yaml
    from ray.serve.schema import ServeDeploySchema

    raw = yaml.safe_load(open("serve/config.yaml"))
    ServeDeploySchema.model_validate(raw)  # what `serve deploy` checks
    app = raw["applications"][0]
    cfg = ServeConfig.from_dict(app["args"])
    assert cfg.request_timeout_s > 0 and cfg.limits.max_tokens >= 1
    from groundloop.config import ConfigError
    from serve.app import app_builder

    # `serve run` hands the args to app_builder, which reads them with the same strict loader
    with pytest.raises(ConfigError, match="decode.refine must be one of 'in_place', 'append'"):
        app_builder(app["args"] | {"decode": app["args"]["decode"] | {"refine": "sideways"}})
    with pytest.raises(ConfigError, match="unknown config key.*max_batch"):
        app_builder(app["args"] | {"max_batch": 4})
    deployment = app["deployments"][0]
    assert deployment["max_queued_requests"] > 0 and deployment["backpressure_config"]["retry_after_s"] > 0
    assert raw["http_options"]["request_timeout_s"] > cfg.request_timeout_s
