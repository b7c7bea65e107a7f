"""The OpenAI chat-completions protocol of the captioning endpoint: request parsing with
clear 4xx errors, and replies in the OpenAI schema. No Ray here, so it tests on its own.

A request names the decoder with `model` ("vimar", "visvm", "bon", "clip_prm", "greedy",
optionally prefixed "groundloop-") and may tune it with extra body fields (`temperatures`,
`k`, `threshold`, `refine`), which the official client sends through `extra_body`.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from PIL import Image, UnidentifiedImageError

from groundloop.decoding import DECODERS, DecodeSettings

MODEL_PREFIX = "groundloop-"
DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,(.*)$", re.DOTALL)


class ProtocolError(ValueError):
    """A request the endpoint refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": "invalid_request_error", "param": self.param,
                          "code": None}}


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int = 8 * 1024 * 1024
    max_image_pixels: int = 4096 * 4096
    allow_remote_images: bool = False  # fetching http(s) image URLs is off by default


@dataclass(frozen=True)
class CaptionRequest:
    image: Image.Image
    text: str
    decoder: str
    settings: DecodeSettings


def decoder_name(model: Any) -> str:
    if not isinstance(model, str) or not model:
        raise ProtocolError(400, "`model` must name a decoder, e.g. 'vimar'", "model")
    name = model[len(MODEL_PREFIX):] if model.startswith(MODEL_PREFIX) else model
    if name not in DECODERS:
        raise ProtocolError(404, f"unknown model {model!r}; available: "
                            f"{', '.join(MODEL_PREFIX + d for d in DECODERS)}", "model")
    return name


def decode_image(url: Any, limits: Limits) -> Image.Image:
    if not isinstance(url, str):
        raise ProtocolError(400, "image_url.url must be a string", "messages")
    if url.startswith(("http://", "https://")):
        if not limits.allow_remote_images:
            raise ProtocolError(400, "fetching http(s) image URLs is disabled on this endpoint; "
                                "send the image as a data:image/...;base64,... URL", "messages")
        raise ProtocolError(501, "remote image fetching is not implemented", "messages")
    m = DATA_URL.match(url)
    if not m:
        raise ProtocolError(400, "image_url.url must be a data:image/<type>;base64,<data> URL", "messages")
    if len(m.group(1)) * 3 // 4 > limits.max_image_bytes:
        raise ProtocolError(413, f"image is larger than {limits.max_image_bytes} bytes", "messages")
    try:
        raw = base64.b64decode(m.group(1), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ProtocolError(400, f"image data is not valid base64: {e}", "messages") from None
    try:
        with Image.open(io.BytesIO(raw)) as probe:
            w, h = probe.size
            if w * h > limits.max_image_pixels:
                raise ProtocolError(413, f"image is {w}x{h}; at most {limits.max_image_pixels} pixels", "messages")
            probe.verify()
        image = Image.open(io.BytesIO(raw))
        image.load()
    except ProtocolError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ProtocolError(400, f"image data is not a readable image: {e}", "messages") from None
    return image.convert("RGB")


def _settings(body: dict[str, Any], base: DecodeSettings) -> DecodeSettings:
    s = base
    if "temperatures" in body:
        t = body["temperatures"]
        if not isinstance(t, list) or not t or not all(isinstance(x, (int, float)) and 0 <= x <= 2 for x in t):
            raise ProtocolError(400, "`temperatures` must be a non-empty list of numbers in [0, 2]", "temperatures")
        s = replace(s, temperatures=tuple(float(x) for x in t))
    if "k" in body:
        k = body["k"]
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 16:
            raise ProtocolError(400, "`k` must be an integer from 1 to 16", "k")
        s = replace(s, k=k)
    if "threshold" in body:
        if not isinstance(body["threshold"], (int, float)) or isinstance(body["threshold"], bool):
            raise ProtocolError(400, "`threshold` must be a number", "threshold")
        s = replace(s, threshold=float(body["threshold"]))
    if "refine" in body:
        if body["refine"] not in ("in_place", "append"):
            raise ProtocolError(400, "`refine` must be 'in_place' or 'append'", "refine")
        s = replace(s, refine=body["refine"])
    return s


def parse_chat_request(body: Any, base: DecodeSettings, limits: Limits) -> CaptionRequest:
    """The image, text, decoder and settings of a chat-completions body, or a ProtocolError."""
    if not isinstance(body, dict):
        raise ProtocolError(400, "the request body must be a JSON object")
    decoder = decoder_name(body.get("model"))
    if body.get("stream"):
        raise ProtocolError(400, "streaming is not supported; send stream=false", "stream")
    if body.get("n", 1) != 1:
        raise ProtocolError(400, "only n=1 is supported", "n")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ProtocolError(400, "`messages` must be a non-empty list", "messages")
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise ProtocolError(400, "`messages` needs a user message with an image", "messages")
    content = users[-1].get("content")
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(parts, list):
        raise ProtocolError(400, "user message content must be a string or a list of parts", "messages")
    texts, urls = [], []
    for part in parts:
        if not isinstance(part, dict) or "type" not in part:
            raise ProtocolError(400, "every content part must be an object with a `type`", "messages")
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise ProtocolError(400, "a text part needs a string `text`", "messages")
            texts.append(part["text"])
        elif part["type"] == "image_url":
            iu = part.get("image_url")
            urls.append(iu.get("url") if isinstance(iu, dict) else iu)
        else:
            raise ProtocolError(400, f"unsupported content part type {part['type']!r}", "messages")
    if not urls:
        raise ProtocolError(400, "the user message has no image_url part; this endpoint captions images",
                            "messages")
    if len(urls) > 1:
        raise ProtocolError(400, "send exactly one image per request", "messages")
    return CaptionRequest(decode_image(urls[0], limits), " ".join(texts).strip(), decoder, _settings(body, base))


def chat_response(caption: str, model: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": caption},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def models_response(created: int) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL_PREFIX + d, "object": "model", "created": created,
                                        "owned_by": "groundloop"} for d in DECODERS]}
