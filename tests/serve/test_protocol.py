"""Parsing OpenAI chat-completions requests: what is accepted, and the 4xx for the rest."""

import base64
import io

import pytest
from PIL import Image

from groundloop.decoding import DecodeSettings
from serve.protocol import Limits, ProtocolError, chat_response, parse_chat_request


def data_url(img: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def body(url: str, model: str = "vimar", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Describe it."}, {"type": "image_url", "image_url": {"url": url}}]}]} | extra


def parse(b, limits=None):
    return parse_chat_request(b, DecodeSettings(), limits or Limits())


def test_a_well_formed_request_gives_image_text_decoder_and_settings():
    req = parse(body(data_url(Image.new("P", (20, 10))), model="groundloop-visvm", k=2, temperatures=[0.5]))
    assert req.image.mode == "RGB" and req.image.size == (20, 10)
    assert (req.decoder, req.text, req.settings.k, req.settings.temperatures) == ("visvm", "Describe it.", 2, (0.5,))


@pytest.mark.parametrize("b, status, words", [
    ([1, 2], 400, "JSON object"),
    ({"messages": []}, 400, "model"),
    (body("data:image/png;base64,AAAA", model="gpt-4"), 404, "unknown model"),
    ({"model": "vimar", "messages": [{"role": "user", "content": "just text"}]}, 400, "no image_url"),
    (body("data:image/png;base64,@@@notbase64@@@"), 400, "base64"),
    (body("data:image/png;base64," + base64.b64encode(b"hello, not an image").decode()), 400, "not a readable image"),
    (body("https://example.com/cat.png"), 400, "disabled"),
    (body("file:///etc/passwd"), 400, "data:image"),
    (body(data_url(Image.new("RGB", (4, 4))), k=0), 400, "`k`"),
    (body(data_url(Image.new("RGB", (4, 4))), refine="sideways"), 400, "refine"),
])
def test_malformed_requests_get_a_4xx_naming_the_problem(b, status, words):
    with pytest.raises(ProtocolError) as e:
        parse(b)
    assert e.value.status == status and words in e.value.message


def test_huge_images_are_refused_with_413():
    big = data_url(Image.new("RGB", (300, 300)))
    with pytest.raises(ProtocolError) as e:
        parse(body(big), Limits(max_image_pixels=200 * 200))
    assert e.value.status == 413 and "300x300" in e.value.message
    with pytest.raises(ProtocolError) as e:
        parse(body(big), Limits(max_image_bytes=100))
    assert e.value.status == 413


def test_truncated_png_is_a_4xx_not_a_crash():
    url = data_url(Image.new("RGB", (64, 64), (200, 10, 10)))
    raw = base64.b64decode(url.split(",", 1)[1])
    cut = "data:image/png;base64," + base64.b64encode(raw[: len(raw) // 2]).decode()
    with pytest.raises(ProtocolError) as e:
        parse(body(cut))
    assert e.value.status == 400


def test_reply_follows_the_openai_schema():
    r = chat_response("A red circle.", "groundloop-vimar", prompt_tokens=10, completion_tokens=4)
    assert r["object"] == "chat.completion"
    assert r["choices"][0]["message"] == {"role": "assistant", "content": "A red circle."}
    assert r["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
