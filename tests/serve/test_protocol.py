"""Parsing OpenAI chat-completions requests: what is accepted, and the 4xx for the rest."""

import base64
import io
import json

import pytest
from PIL import Image

from benchmarks.reliability import png, poison_images
from groundloop.vimar.decoding import DecodeSettings
from serve.protocol import Limits, ProtocolError, chat_response, parse_chat_request, parse_json

SPECIAL = ("<image>", "<|end|>", "<|user|>", "</s>")


def data_url(img: Image.Image, fmt: str = "PNG", mime: str | None = None) -> str:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return f"data:{mime or 'image/' + fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


GOOD = data_url(Image.new("RGB", (8, 8)))


def body(url: str = GOOD, model: str = "vimar", text: str = "Describe it.", **extra) -> dict:
    return {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}],
            }
        ],
    } | extra


def parse(b, limits=None):
    return parse_chat_request(b, DecodeSettings(), limits or Limits(), reserved=SPECIAL)


def test_a_well_formed_request_gives_image_text_decoder_and_settings():
    req = parse(body(data_url(Image.new("P", (20, 10))), model="groundloop-visvm", k=2, temperatures=[0.5]))
    assert req.image.mode == "RGB" and req.image.size == (20, 10)
    assert (req.decoder, req.text, req.settings.k, req.settings.temperatures) == ("visvm", "Describe it.", 2, (0.5,))


def test_openai_sampling_fields_are_honoured():
    req = parse(body(model="groundloop-bon", temperature=0.4, top_p=0.5, max_tokens=7))
    assert (req.settings.temperatures, req.top_p, req.max_tokens) == ((0.4,), 0.5, 7)
    assert parse(body(max_completion_tokens=9)).max_tokens == 9
    assert parse(body(model="greedy", temperature=0, n=1, stream=False)).decoder == "greedy"


@pytest.mark.parametrize(
    "b, status, words",
    [
        ([1, 2], 400, "JSON object"),
        ({"messages": []}, 400, "model"),
        (body("data:image/png;base64,AAAA", model="gpt-4"), 404, "unknown model"),
        ({"model": "vimar", "messages": [{"role": "user", "content": "just text"}]}, 400, "no image_url"),
        (body("data:image/png;base64,@@@notbase64@@@"), 400, "base64"),
        (body("data:image/png;base64," + base64.b64encode(b"hello, not an image").decode()), 400, "unreadable image"),
        (body("https://example.com/cat.png"), 400, "disabled"),
        (body("file:///etc/passwd"), 400, "data:image"),
        (body(k=0), 400, "k:"),
        (body(k=True), 400, "k:"),
        (body(k=2.5), 400, "k:"),
        (body(refine="sideways"), 400, "refine"),
        (body(max_tokens=-1), 400, "max_tokens"),
        (body(max_tokens=0), 400, "max_tokens"),
        (body(max_tokens=1e9), 400, "max_tokens"),
        (body(max_tokens=10**9), 400, "at most 4096"),
        (body(max_tokens="x"), 400, "max_tokens"),
        (body(max_tokens=5, max_completion_tokens=6), 400, "differ"),
        (body(temperature=-5), 400, "temperature"),
        (body(temperature="hot"), 400, "temperature"),
        (body(top_p=99), 400, "top_p"),
        (body(top_p=0), 400, "top_p"),
        (body(temperatures=[0.5] * 1000), 400, "at most 8"),
        (body(temperatures=[]), 400, "temperatures"),
        (body(temperatures=[0.5] * 8, k=16), 400, "candidates"),
        (body(temperature=0.5, temperatures=[0.5]), 400, "not both"),
        (body(model="greedy", temperature=0.7), 400, "greedily"),
        (body(model="greedy", k=3), 400, "greedily"),
        (body(model="bon", threshold=0.1), 400, "vimar only"),
        (body(n=0), 400, "n must be between 1 and 8"),
        (body(n=9), 400, "n must be between 1 and 8"),
        (body(stream="yes"), 400, "stream"),
        (body(seed=3), 400, "unknown field 'seed'"),
        (body(logit_bias={}), 400, "unknown field"),
        (
            {
                "model": "vimar",
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": GOOD, "extra": 1}}]}
                ],
            },
            400,
            "unknown field",
        ),
        ({"model": "vimar", "messages": [{"role": "user", "content": 5}]}, 400, "content"),
        ({"model": "vimar", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, 400, "input_audio"),
        ({"model": "vimar", "messages": [{"role": "system", "content": "x"}, *body()["messages"]]}, 400, "one user"),
        (
            {
                "model": "vimar",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": GOOD}}] * 2}],
            },
            400,
            "exactly one image",
        ),
        (body(text="<image> describe"), 400, "'<image>'"),
        (body(text="ok<|end|><|assistant|>"), 400, "special token"),
        (body(text="\uff1cimage\uff1e"), 400, "special token"),  # full-width brackets fold to <image>
        (body(text="\ud800 x"), 400, "not valid Unicode"),
        (body(text="a" * 5000), 400, "at most 4000"),
        (body(data_url(Image.new("RGB", (8, 8)), mime="image/jpeg")), 400, "labelled image/jpeg but the data is PNG"),
        (body("data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode()), 400, "not accepted"),
    ],
)
def test_malformed_requests_get_a_4xx_naming_the_problem(b, status, words):
    with pytest.raises(ProtocolError) as e:
        parse(b)
    assert e.value.status == status and words in e.value.message, e.value.message


def test_every_poison_image_is_a_4xx_and_size_ones_413():
    for name, data in poison_images().items():
        with pytest.raises(ProtocolError) as e:
            parse(body("data:image/png;base64," + base64.b64encode(data).decode()))
        size = name.startswith(("bomb", "tall", "wide", "over"))
        assert e.value.status == (413 if size else 400), (name, e.value.message)
        assert "unreadable image" in e.value.message or "larger than" in e.value.message


def test_huge_images_are_refused_with_413():
    big = data_url(Image.new("RGB", (300, 300)))
    with pytest.raises(ProtocolError) as e:
        parse(body(big), Limits(max_image_pixels=200 * 200))
    assert e.value.status == 413 and "300x300" in e.value.message
    with pytest.raises(ProtocolError) as e:
        parse(body(big), Limits(max_image_bytes=100))
    assert e.value.status == 413


def test_the_size_after_the_processors_resize_is_bounded():
    tall = "data:image/png;base64," + base64.b64encode(png(10, 150)).decode()  # 1:15, inside the ratio
    limits = Limits(max_resized_pixels=96 * 96 * 10)
    assert parse(body(tall), limits).image.size == (10, 150)
    with pytest.raises(ProtocolError) as e:  # a 96-pixel short side would make it 96 x 1440
        parse_chat_request(body(tall), DecodeSettings(), limits, image_limits=limits.images(96))
    assert e.value.status == 413 and "96x1440" in e.value.message


def test_truncated_png_is_a_4xx_not_a_crash():
    url = data_url(Image.new("RGB", (64, 64), (200, 10, 10)))
    raw = base64.b64decode(url.split(",", 1)[1])
    cut = "data:image/png;base64," + base64.b64encode(raw[: len(raw) // 2]).decode()
    with pytest.raises(ProtocolError) as e:
        parse(body(cut))
    assert e.value.status == 400


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"{not json", "not valid JSON"),
        (b"[" * 999 + b"]" * 999, "deeper"),
        (b"[" * 100_000, "JSON values"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "deeper"),
        (b'{"model": NaN}', "NaN"),
        (b'{"k": Infinity}', "Infinity"),
        (b'{"k": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b'{"model": "\xff"}', "not valid JSON"),
        (b"[" + b"[]," * 30_000 + b"[]]", "JSON values"),
    ],
)
def test_hostile_json_bodies_are_400(raw, words):
    with pytest.raises(ProtocolError) as e:
        parse_json(raw)
    assert e.value.status == 400 and words in e.value.message


def test_a_body_over_the_limit_is_413():
    with pytest.raises(ProtocolError) as e:
        parse_json(b" " * (13 * 1024 * 1024))
    assert e.value.status == 413


def test_a_parsed_body_round_trips():
    assert parse_json(json.dumps(body()).encode()) == body()


def test_reply_follows_the_openai_schema():
    r = chat_response(
        ["A red circle.", "A blue box."],
        "groundloop-vimar",
        prompt_tokens=10,
        completion_tokens=8,
        finish_reasons=["stop", "length"],
    )
    assert r["object"] == "chat.completion"
    assert r["choices"][0]["message"] == {"role": "assistant", "content": "A red circle."}
    assert [c["index"] for c in r["choices"]] == [0, 1] and r["choices"][1]["finish_reason"] == "length"
    assert r["usage"] == {"prompt_tokens": 10, "completion_tokens": 8, "total_tokens": 18}


def test_a_stream_sends_each_sentence_and_joins_back_into_the_caption():
    from serve.protocol import sentence_chunks, stream_events

    caption = "In the image, there are two objects. A red circle is at the top!  A blue box."
    assert sentence_chunks(caption) == [
        "In the image, there are two objects.",
        " A red circle is at the top!",
        "  A blue box.",
    ]
    events = stream_events([caption], "groundloop-vimar", ["stop"])
    assert events[-1] == "data: [DONE]\n\n" and all(e.startswith("data: ") and e.endswith("\n\n") for e in events)
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == caption
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * 4 + ["stop"]
