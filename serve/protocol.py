"""The OpenAI chat-completions protocol of the captioning endpoint: the request validated
whole (OpenAI's shape, with pydantic) and every client error a 4xx with a message; replies
in the OpenAI schema. No Ray here, so it tests on its own.

A request names the decoder with `model` ("vimar", "visvm", "bon", "clip_prm", "greedy",
optionally prefixed "groundloop-") and may tune it with extra body fields (`temperatures`,
`k`, `threshold`, `refine`), which the official client sends through `extra_body`. Of
OpenAI's own fields it honours `max_tokens` / `max_completion_tokens` (the caption is cut
there, finish_reason "length"), `temperature` (one sampling temperature for the candidates;
greedy takes only 0), `top_p`, `n` (that many captions, decoded side by side) and `stream`
(server-sent events, the caption a sentence per chunk); any other field is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import unicodedata
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from groundloop.images import ImageError, ImageLimits, ImageTooLarge, check_mime, decode_image
from groundloop.vimar.decoding import DECODERS, DecodeSettings

MODEL_PREFIX = "groundloop-"
DATA_URL = re.compile(r"data:([\w.+/-]*);base64,", re.ASCII)
SAMPLING_SETTINGS = ("temperatures", "k", "temperature")  # what greedy has no use for
VIMAR_SETTINGS = ("threshold", "refine")


class ProtocolError(ValueError):
    """A request the endpoint refuses; `status` is the HTTP status to answer with."""

    def __init__(
        self, status: int, message: str, param: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.headers = status, message, param, headers or {}

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": None}}


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int = ImageLimits.max_bytes
    max_image_pixels: int = ImageLimits.max_pixels
    max_aspect_ratio: float = ImageLimits.max_aspect_ratio
    max_resized_pixels: int = ImageLimits.max_resized_pixels
    allow_remote_images: bool = False  # fetching http(s) image URLs is off by default
    max_body_bytes: int = 12 * 1024 * 1024  # the base64 of the largest image plus the rest of a request
    max_json_depth: int = 12  # a chat request is 6 deep
    # commas, "[" and "{" in a body (an upper bound on its JSON values, counted before parsing:
    # 12 MB of "[[],[],..." would build 4 million lists); a request has a few dozen plus its text's
    max_json_items: int = 20000
    max_text_chars: int = 4000
    max_parts: int = 16  # content parts of the user message
    max_tokens: int = 4096  # the most a request may ask for; the server's max_new_tokens still caps it
    max_temperatures: int = 8
    max_candidates: int = 64  # len(temperatures) * k: candidates per decoding step
    max_n: int = 8  # captions per request

    def images(self, resize_shortest_edge: int = 0) -> ImageLimits:
        return ImageLimits(
            max_bytes=self.max_image_bytes,
            max_pixels=self.max_image_pixels,
            max_aspect_ratio=self.max_aspect_ratio,
            resize_shortest_edge=resize_shortest_edge,
            max_resized_pixels=self.max_resized_pixels,
        )


@dataclass(frozen=True)
class CaptionRequest:
    image: Image.Image
    text: str
    decoder: str
    settings: DecodeSettings
    top_p: float = 1.0
    max_tokens: int | None = None  # cut the caption at this many tokens (None: as the decoder ends it)
    n: int = 1  # captions asked for
    stream: bool = False  # answer as server-sent events


# The request schema. Strict: no "1" for 1, no true for 1, no 1.5 for an integer.
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ImageURL(_Strict):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: ImageURL


Part = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[Part] | None = None
    name: str | None = Field(None, max_length=256)


Temperature = Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)]


class ChatBody(_Strict):
    model: str = Field(min_length=1, max_length=128)
    messages: list[Message] = Field(min_length=1, max_length=8)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: Temperature | None = None
    top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    n: int | None = None
    stream: bool | None = None
    user: str | None = Field(None, max_length=256)
    # decoder settings, sent by the official client through extra_body
    temperatures: list[Temperature] | None = Field(None, min_length=1)
    k: int | None = Field(None, ge=1, le=16)
    threshold: float | None = Field(None, allow_inf_nan=False)
    refine: Literal["in_place", "append"] | None = None


_UNION_BRANCH = re.compile(r"^(str|int|float|bool|list|dict|none)$|\[")  # pydantic's names of union branches


def _validation_message(e: ValidationError) -> tuple[str, str | None]:
    parts: list[str] = []
    param = None
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"] if isinstance(x, int) or not _UNION_BRANCH.search(str(x)))
        param = param or (str(err["loc"][0]) if err["loc"] else None)
        if err["type"] == "extra_forbidden":
            known = f" (accepted: {', '.join(ChatBody.model_fields)})" if len(err["loc"]) == 1 else ""
            part = f"unknown field {loc!r}{known}"
        else:
            part = f"{loc}: {err['msg']}"
        if part not in parts:
            parts.append(part)
    return "; ".join(parts[:3]), param


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any, limit: int) -> int:
    """How deeply `value` nests lists and objects, counting no further than limit + 1."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v) if isinstance(c, (dict, list)))
    return deepest


def parse_json(raw: bytes, limits: Limits = Limits()) -> Any:
    """The JSON value of a request body, or a ProtocolError: too large, not UTF-8 JSON, NaN or
    Infinity, nested deeper than limits.max_json_depth."""
    if len(raw) > limits.max_body_bytes:
        raise ProtocolError(413, f"request body is {len(raw)} bytes; at most {limits.max_body_bytes}")
    items = raw.count(b",") + raw.count(b"[") + raw.count(b"{")
    if items > limits.max_json_items:
        raise ProtocolError(400, f"request body holds up to {items} JSON values; at most {limits.max_json_items}")
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise ProtocolError(400, f"request body nests deeper than {limits.max_json_depth} levels") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, NaN, an integer past Python's digit limit
        raise ProtocolError(400, f"request body is not valid JSON: {e}") from None
    if _depth(body, limits.max_json_depth) > limits.max_json_depth:
        raise ProtocolError(400, f"request body nests deeper than {limits.max_json_depth} levels")
    return body


def decoder_name(model: Any) -> str:
    if not isinstance(model, str) or not model:
        raise ProtocolError(400, "`model` must name a decoder, e.g. 'vimar'", "model")
    name = model[len(MODEL_PREFIX) :] if model.startswith(MODEL_PREFIX) else model
    if name not in DECODERS:
        raise ProtocolError(
            404, f"unknown model {model[:128]!r}; available: {', '.join(MODEL_PREFIX + d for d in DECODERS)}", "model"
        )
    return name


def decode_image_url(url: str, limits: Limits, image_limits: ImageLimits | None = None) -> Image.Image:
    """The image of a data:image/...;base64 URL: 413 over a size limit, 400 for the rest."""
    if url.startswith(("http://", "https://")):
        if not limits.allow_remote_images:
            raise ProtocolError(
                400,
                "fetching http(s) image URLs is disabled on this endpoint; "
                "send the image as a data:image/...;base64,... URL",
                "messages",
            )
        raise ProtocolError(501, "remote image fetching is not implemented", "messages")
    m = DATA_URL.match(url)
    if not m:
        raise ProtocolError(400, "image_url.url must be a data:image/<type>;base64,<data> URL", "messages")
    image_limits = image_limits or limits.images()
    try:
        check_mime(m.group(1), image_limits.formats)
    except ImageError as e:
        raise ProtocolError(400, str(e), "messages") from None
    data = url[m.end() :]
    if len(data) * 3 // 4 > limits.max_image_bytes + 2:
        raise ProtocolError(413, f"image is larger than {limits.max_image_bytes} bytes", "messages")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ProtocolError(400, f"image data is not valid base64: {e}", "messages") from None
    try:
        return decode_image(raw, image_limits, mime=m.group(1))
    except ImageTooLarge as e:
        raise ProtocolError(413, str(e), "messages") from None
    except ImageError as e:
        raise ProtocolError(400, str(e), "messages") from None


def check_text(text: str, limits: Limits, reserved: Collection[str] = ()) -> None:
    """400 for text the model must not see: too long, not valid Unicode, or holding one of the
    model's special tokens (image placeholder, chat markers), which would forge the prompt."""
    if len(text) > limits.max_text_chars:
        raise ProtocolError(400, f"text is {len(text)} characters; at most {limits.max_text_chars}", "messages")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ProtocolError(400, f"text is not valid Unicode: {e.reason} at character {e.start}", "messages") from None
    if reserved:
        folded = unicodedata.normalize("NFKC", text)
        hit = next((t for t in reserved if t in text or t in folded), None)
        if hit is not None:
            raise ProtocolError(400, f"text contains {hit!r}, a special token of the model; remove it", "messages")


def _settings(b: ChatBody, decoder: str, base: DecodeSettings, limits: Limits) -> DecodeSettings:
    given = {k for k in b.model_fields_set if getattr(b, k) is not None}
    if decoder == "greedy":
        extra = [k for k in ("temperatures", "k") if k in given]
        if extra or (b.temperature or 0) > 0:
            raise ProtocolError(
                400,
                f"groundloop-greedy decodes greedily: {', '.join(extra) or 'temperature > 0'} "
                "does not apply (use temperature 0, or a sampling decoder such as "
                "groundloop-bon)",
                (extra or ["temperature"])[0],
            )
    unused = [k for k in VIMAR_SETTINGS if k in given and decoder != "vimar"]
    if unused:
        raise ProtocolError(400, f"`{unused[0]}` applies to groundloop-vimar only", unused[0])
    if "temperature" in given and "temperatures" in given:
        raise ProtocolError(400, "give `temperature` or `temperatures`, not both", "temperature")
    s = base
    if b.temperatures is not None:
        s = replace(s, temperatures=tuple(b.temperatures))
    elif b.temperature is not None and decoder != "greedy":
        s = replace(s, temperatures=(b.temperature,))
    if len(s.temperatures) > limits.max_temperatures:
        raise ProtocolError(
            400, f"{len(s.temperatures)} temperatures; at most {limits.max_temperatures}", "temperatures"
        )
    if b.k is not None:
        s = replace(s, k=b.k)
    if decoder != "greedy" and len(s.temperatures) * s.k > limits.max_candidates:
        raise ProtocolError(
            400,
            f"{len(s.temperatures)} temperatures x k {s.k} = {len(s.temperatures) * s.k} "
            f"candidates per step; at most {limits.max_candidates}",
            "k",
        )
    if b.threshold is not None:
        s = replace(s, threshold=b.threshold)
    if b.refine is not None:
        s = replace(s, refine=b.refine)
    return s


def _max_tokens(b: ChatBody, limits: Limits) -> int | None:
    if b.max_tokens is not None and b.max_completion_tokens is not None and b.max_tokens != b.max_completion_tokens:
        raise ProtocolError(400, "max_tokens and max_completion_tokens differ; give one", "max_tokens")
    n = b.max_completion_tokens if b.max_completion_tokens is not None else b.max_tokens
    if n is not None and n > limits.max_tokens:
        raise ProtocolError(400, f"max_tokens is {n}; at most {limits.max_tokens}", "max_tokens")
    return n


def _user_content(b: ChatBody, limits: Limits) -> tuple[list[str], list[str]]:
    """The texts and image URLs of the request's one user message."""
    roles = [m.role for m in b.messages]
    if roles != ["user"]:
        raise ProtocolError(
            400,
            f"send exactly one user message (an image and optional text); got roles {roles}. "
            "This endpoint captions one image per request",
            "messages",
        )
    content = b.messages[0].content
    if content is None:
        raise ProtocolError(400, "the user message has no content", "messages")
    parts: list[Any] = [TextPart(type="text", text=content)] if isinstance(content, str) else content
    if len(parts) > limits.max_parts:
        raise ProtocolError(
            400, f"the user message has {len(parts)} content parts; at most {limits.max_parts}", "messages"
        )
    texts = [p.text for p in parts if isinstance(p, TextPart)]
    urls = [p.image_url.url for p in parts if isinstance(p, ImagePart)]
    return texts, urls


def parse_chat_request(
    body: Any,
    base: DecodeSettings,
    limits: Limits,
    reserved: Collection[str] = (),
    image_limits: ImageLimits | None = None,
) -> CaptionRequest:
    """The image, text, decoder and settings of a chat-completions body, or a ProtocolError.
    `reserved`: strings the text may not contain (the model's special tokens)."""
    if not isinstance(body, dict):
        raise ProtocolError(400, "the request body must be a JSON object")
    decoder = decoder_name(body.get("model"))
    try:
        b = ChatBody.model_validate(body)
    except ValidationError as e:
        message, param = _validation_message(e)
        raise ProtocolError(400, message, param) from None
    n = 1 if b.n is None else b.n
    if not 1 <= n <= limits.max_n:
        raise ProtocolError(400, f"n must be between 1 and {limits.max_n}, got {n}", "n")
    texts, urls = _user_content(b, limits)
    if not urls:
        raise ProtocolError(400, "the user message has no image_url part; this endpoint captions images", "messages")
    if len(urls) > 1:
        raise ProtocolError(400, "send exactly one image per request", "messages")
    text = " ".join(texts).strip()
    check_text(text, limits, reserved)
    settings = _settings(b, decoder, base, limits)
    max_tokens = _max_tokens(b, limits)
    image = decode_image_url(urls[0], limits, image_limits)
    return CaptionRequest(
        image,
        text,
        decoder,
        settings,
        top_p=b.top_p if b.top_p is not None else 1.0,
        max_tokens=max_tokens,
        n=n,
        stream=bool(b.stream),
    )


def chat_response(
    captions: Sequence[str], model: str, prompt_tokens: int, completion_tokens: int, finish_reasons: Sequence[str]
) -> dict[str, Any]:
    """The chat.completion object: one choice per caption."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": c}, "finish_reason": f, "logprobs": None}
            for i, (c, f) in enumerate(zip(captions, finish_reasons))
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def sentence_chunks(caption: str) -> list[str]:
    """A caption as the pieces a stream sends: its sentences, each with the space before it, so
    the pieces join back into the caption exactly."""
    pieces = [m.group(0) for m in re.finditer(r"\s*\S.*?(?:[.!?](?=\s|$)|$)", caption, re.S)]
    return pieces if "".join(pieces) == caption else [caption]


def stream_events(captions: Sequence[str], model: str, finish_reasons: Sequence[str]) -> list[str]:
    """The server-sent events of a streamed chat completion (chat.completion.chunk objects):
    per choice the role, then its sentences, then its finish reason; then [DONE]."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def event(index: int, delta: dict[str, Any], finish: str | None = None) -> str:
        chunk = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        return f"data: {json.dumps(chunk)}\n\n"

    out = []
    for i, (caption, finish) in enumerate(zip(captions, finish_reasons)):
        out.append(event(i, {"role": "assistant", "content": ""}))
        out += [event(i, {"content": piece}) for piece in sentence_chunks(caption)]
        out.append(event(i, {}, finish))
    return out + ["data: [DONE]\n\n"]


def models_response(created: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": MODEL_PREFIX + d, "object": "model", "created": created, "owned_by": "groundloop"} for d in DECODERS
        ],
    }
