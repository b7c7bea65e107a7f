"""The captioning endpoint: an OpenAI-compatible chat-completions server over the decoders.

`CaptionServer` is undecorated and takes its captioning engine injected (tests hand in a
fake one); `build_app(config)` wraps it in a Serve deployment with the config's replicas,
autoscaling and per-replica resources. Requests are batched dynamically (`serve.batch`).

    serve run serve/config.yaml            # or: serve deploy serve/config.yaml
    curl 127.0.0.1:8000/v1/models
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from PIL import Image
from ray import serve

from groundloop import config as config_lib
from groundloop import prompts
from groundloop.images import resized_size
from groundloop.vimar.decoding import DecodeSettings
from serve.protocol import (
    CaptionRequest,
    Limits,
    ProtocolError,
    chat_response,
    models_response,
    parse_chat_request,
    parse_json,
    stream_events,
)


class CaptionEngine(Protocol):
    def caption(
        self, decoder: str, images: Sequence[Image.Image], text: str, settings: DecodeSettings, top_p: float = 1.0
    ) -> list[str]:
        """One caption per image with the named decoder."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def truncate(self, text: str, max_tokens: int) -> str:
        """`text` cut after its first max_tokens tokens."""
        ...

    def set_adapter(self, adapter: str | None) -> None:
        """Switch the VLM to this PEFT adapter (None: the base model)."""
        ...

    # Optional, read with getattr: `decoders` (the decoders this engine serves), `special_tokens`
    # (strings a request's text may not contain), `image_shortest_edge` (the processor's resize
    # target, which bounds an image's size after resizing) and `prepare_image(image)` (the image
    # as the engine's processors will see it, made once when the request is parsed).


@dataclass(frozen=True)
class ServeConfig:
    vlm: str = "shapesworld/vlm"
    adapter: str | None = None
    value: str = "shapesworld/value"
    clip: str = "shapesworld/clip"
    reward_model: str = ""  # a VL-GenRM folder: serves the genrm_bon decoder ("" = not served)
    max_new_tokens: int = 160
    seed: int = 0
    torch_threads: int = 0
    max_batch_size: int = 8  # dynamic batching: up to this many requests per decoder pass
    batch_wait_timeout_s: float = 0.05
    # A request still unanswered after this long gets 503 with Retry-After (its decode runs on;
    # the client is free to retry). Serve's own http_options.request_timeout_s answers 408.
    request_timeout_s: float = 120.0
    retry_after_s: int = 5  # Retry-After of a 503
    # Bearer token every /v1 request must carry ("" = no authentication); compared in constant time
    api_key: str = ""
    decode: DecodeSettings = field(default_factory=DecodeSettings)
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        config_lib.check_ranges(
            self,
            {
                "max_new_tokens": ">=1",
                "max_batch_size": ">=1",
                "batch_wait_timeout_s": ">=0",
                "request_timeout_s": ">0",
                "retry_after_s": ">=0",
                "torch_threads": ">=0",
                "seed": ">=0",
            },
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServeConfig:
        """Strictly typed, unknown keys refused (groundloop.config.from_dict)."""
        return config_lib.from_dict(cls, dict(d))


def error_response(e: ProtocolError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers)


@dataclass(frozen=True)
class RowFailure:
    """What caption_batch answers for a request whose decode failed: the other rows still
    get their captions."""

    message: str


app = FastAPI(title="groundloop captioning")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ProtocolError(413, f"request body is {declared} bytes; at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProtocolError(413, f"request body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class CaptionServer:
    """Parses OpenAI chat requests, batches them, captions them with the injected engine."""

    def __init__(self, config: ServeConfig | dict | None = None, engine: CaptionEngine | None = None) -> None:
        self.config = config if isinstance(config, ServeConfig) else ServeConfig.from_dict(config or {})
        self.engine = engine if engine is not None else ModelEngine(self.config)
        self.created = int(time.time())
        self.caption_batch.set_max_batch_size(self.config.max_batch_size)
        self.caption_batch.set_batch_wait_timeout_s(self.config.batch_wait_timeout_s)
        self.batch_sizes: list[int] = []
        self.reserved: Collection[str] = tuple(getattr(self.engine, "special_tokens", ()))
        self.image_limits = self.config.limits.images(int(getattr(self.engine, "image_shortest_edge", 0) or 0))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def caption_batch(self, requests: list[CaptionRequest]) -> list[str | RowFailure]:
        """The requests Serve gathered into one batch, captioned by caption_rows."""
        self.batch_sizes.append(len(requests))
        return await self.caption_rows(requests)

    async def caption_rows(self, requests: Sequence[CaptionRequest]) -> list[str | RowFailure]:
        """One decoder pass per (decoder, settings, prompt, top_p) group of a batch. A group
        that fails is decoded again row by row, so a failing request fails alone."""
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.decoder, r.settings, r.text, r.top_p), []).append(i)
        out: list[str | RowFailure] = [RowFailure("not captioned")] * len(requests)
        for (decoder, settings, text, top_p), idx in groups.items():
            rows = [idx] if len(idx) == 1 else [idx, *[[i] for i in idx]]
            for attempt in rows:
                try:
                    caps = await asyncio.to_thread(
                        self.engine.caption,
                        decoder,
                        [requests[i].image for i in attempt],
                        text or prompts.BASE_PROMPT,
                        settings,
                        top_p,
                    )
                except Exception as e:  # noqa: BLE001 - answered per row
                    if len(attempt) == 1:
                        out[attempt[0]] = RowFailure(f"{type(e).__name__}: {e}")
                    continue
                for i, c in zip(attempt, caps):
                    out[i] = c
                if len(attempt) > 1:
                    break  # the whole group went through: no need to go row by row
        return out

    def authorize(self, header: str | None) -> None:
        key = self.config.api_key
        if not key:
            return
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ProtocolError(
                401, "missing API key: send 'Authorization: Bearer <key>'", headers={"WWW-Authenticate": "Bearer"}
            )
        if not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise ProtocolError(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})

    async def respond(self, raw: bytes, authorization: str | None = None) -> Response:
        """The reply to one chat-completions body: 200 (JSON, or server-sent events with
        stream=true), a 4xx naming the client's error, 503 with Retry-After past the request
        timeout, or 500 when decoding this request failed. The n captions of a request go into
        the batch as n rows, decoded side by side."""
        try:
            self.authorize(authorization)
            body = parse_json(raw, self.config.limits)
            req = parse_chat_request(body, self.config.decode, self.config.limits, self.reserved, self.image_limits)
            prepare = getattr(self.engine, "prepare_image", None)
            if prepare is not None:  # decoded on the event loop, one at a time: bounded peak memory
                req = replace(req, image=prepare(req.image))
            served = getattr(self.engine, "decoders", None)
            if served is not None and req.decoder not in served:
                raise ProtocolError(
                    404,
                    f"model {body['model']!r} is not served by this deployment (serving: {', '.join(served)})",
                    "model",
                )
            try:
                got = await asyncio.wait_for(
                    asyncio.gather(*[self.caption_batch(req) for _ in range(req.n)]), self.config.request_timeout_s
                )
            except asyncio.TimeoutError:
                raise ProtocolError(
                    503,
                    f"no caption within {self.config.request_timeout_s:g} s; the endpoint is overloaded, retry later",
                    headers={"Retry-After": str(self.config.retry_after_s)},
                ) from None
            failed = next((c for c in got if isinstance(c, RowFailure)), None)
            if failed is not None:
                raise ProtocolError(500, f"captioning this request failed: {failed.message}")
        except ProtocolError as e:
            return error_response(e)
        captions, finishes = [], []
        for caption in got:
            finish = "stop"
            if req.max_tokens is not None and self.engine.count_tokens(caption) > req.max_tokens:
                caption, finish = self.engine.truncate(caption, req.max_tokens), "length"
            captions.append(caption)
            finishes.append(finish)
        if req.stream:  # the caption is complete before the first event: a sentence per chunk
            return StreamingResponse(
                iter(stream_events(captions, body["model"], finishes)), media_type="text/event-stream"
            )
        prompt_tokens = self.engine.count_tokens(req.text or prompts.BASE_PROMPT)
        return JSONResponse(
            chat_response(
                captions, body["model"], prompt_tokens, sum(self.engine.count_tokens(c) for c in captions), finishes
            )
        )

    @app.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Response:
        try:
            raw = await read_body(request, self.config.limits.max_body_bytes)
        except ProtocolError as e:
            return error_response(e)
        return await self.respond(raw, request.headers.get("authorization"))

    @app.get("/v1/models")
    async def models(self, request: Request) -> JSONResponse:
        try:
            self.authorize(request.headers.get("authorization"))
        except ProtocolError as e:
            return error_response(e)
        return JSONResponse(models_response(self.created))

    @app.get("/health")
    async def health(self) -> dict[str, Any]:
        return {"status": "ok"} | self.stats()

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Serve calls this when the deployment's user_config changes (self-training swaps the
        adapter this way): the replica stays up and in-flight requests finish on the old model."""
        adapter = (user_config or {}).get("adapter")
        if adapter != getattr(self, "adapter", self.config.adapter):
            await asyncio.to_thread(self.engine.set_adapter, adapter)
            self.adapter = adapter

    async def caption_paths(self, paths: list[str], decoder: str = "vimar") -> list[str]:
        """For pipelines calling through a deployment handle: caption image files. Each image
        joins the same dynamic batches as HTTP requests; an unreadable one raises ImageError."""
        from groundloop.images import load_image

        prepare = getattr(self.engine, "prepare_image", lambda im: im)
        reqs = [
            CaptionRequest(prepare(load_image(p, self.image_limits)), "", decoder, self.config.decode) for p in paths
        ]
        out = list(await asyncio.gather(*[self.caption_batch(r) for r in reqs]))
        failed = [f"{p}: {c.message}" for p, c in zip(paths, out) if isinstance(c, RowFailure)]
        if failed:
            raise ValueError(f"captioning failed for {'; '.join(failed)}")
        return out

    def stats(self) -> dict[str, Any]:
        n = len(self.batch_sizes)
        return {
            "batches": n,
            "mean_batch_size": sum(self.batch_sizes) / n if n else 0.0,
            "max_batch_size": self.config.max_batch_size,
            "adapter": getattr(self, "adapter", self.config.adapter),
        }


class ModelEngine:
    """The real engine: the shipped (or hub) VLM, value model and CLIP behind the decoders."""

    def __init__(self, config: ServeConfig) -> None:
        import torch

        from groundloop.models import load_clip, load_reward_model, load_value, load_vlm
        from groundloop.sampling import HFSampler
        from groundloop.vimar.decoding import DECODERS
        from groundloop.vimar.similarity import ClipScorer

        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        self.config = config
        model, processor = load_vlm(config.vlm, adapter=config.adapter)
        self.tokenizer = processor.tokenizer
        self.sampler = HFSampler(model, processor, max_new_tokens=config.max_new_tokens, seed=config.seed)
        self.value = load_value(config.value) if config.value else None
        self.clip = ClipScorer(*load_clip(config.clip)) if config.clip else None
        self.judge = load_reward_model(config.reward_model) if config.reward_model else None
        self.decoders = tuple(d for d in DECODERS if d != "genrm_bon" or self.judge is not None)
        self.special_tokens = special_tokens(processor)
        self.image_shortest_edge = shortest_edge(processor)
        models = [m for m in (self.value, self.clip, self.judge) if m is not None]
        policies = {resize_policy(processor)} | {resize_policy(getattr(m, "processor", None)) for m in models}
        self.pre_resize = policies.pop() if len(policies) == 1 else None

    def prepare_image(self, image: Image.Image) -> Image.Image:
        """The image every processor of this engine will see, made now: a 4096 x 4096 request
        then costs its 64 MiB once, not the processor's full-size copies on every decoder step.
        Exact: the same PIL resize the processors run, after which theirs is the identity. Only
        when all of them resize the short side alike with the PIL backend (else unchanged)."""
        if self.pre_resize is None or min(image.size) <= self.pre_resize[0]:
            return image
        edge, resample = self.pre_resize
        return image.resize(resized_size(*image.size, edge), resample=resample)

    def caption(
        self, decoder: str, images: Sequence[Image.Image], text: str, settings: DecodeSettings, top_p: float = 1.0
    ) -> list[str]:
        from groundloop.vimar import decoding

        eng = decoding.Engines(
            self.sampler, value=self.value, clip=self.clip, judge=self.judge, prompt=text, top_p=top_p
        )
        return decoding.decode(decoder, eng, images, settings)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def truncate(self, text: str, max_tokens: int) -> str:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return str(self.tokenizer.decode(ids[:max_tokens], skip_special_tokens=True)).strip()

    def set_adapter(self, adapter: str | None) -> None:
        from groundloop.models import load_vlm
        from groundloop.sampling import HFSampler

        # Load beside the old model, then swap one reference: a decode already running keeps
        # the sampler it started with, the next one gets the new model.
        model, processor = load_vlm(self.config.vlm, adapter=adapter)
        self.sampler = HFSampler(model, processor, max_new_tokens=self.config.max_new_tokens, seed=self.config.seed)


def shortest_edge(processor: Any) -> int:
    """The short side the image processor resizes to (CLIP-style processors), else 0."""
    size = getattr(getattr(processor, "image_processor", None), "size", None)
    value = size.get("shortest_edge") if isinstance(size, dict) else getattr(size, "shortest_edge", None)
    return int(value) if isinstance(value, (int, float)) and value > 0 else 0


def resize_policy(processor: Any) -> tuple[int, int] | None:
    """(short side, PIL resample filter) of an image processor that resizes the short side with
    PIL (transformers' *ImageProcessorPil), else None."""
    ip = getattr(processor, "image_processor", processor)
    size = getattr(ip, "size", None)
    edge, resample = shortest_edge(processor), getattr(ip, "resample", None)
    if (
        ip is None
        or "Pil" not in type(ip).__name__
        or not getattr(ip, "do_resize", False)
        or not edge
        or resample is None
        or any(getattr(size, k, None) for k in ("longest_edge", "height", "width"))
    ):
        return None
    return edge, int(resample)


def special_tokens(processor: Any) -> tuple[str, ...]:
    """The strings that the tokenizer maps to a token of their own instead of reading them as
    text: its special tokens (BOS, EOS, pad, the image placeholder), added tokens such as the
    chat markers, and the processor's own placeholders (image_token, video_token, ...).
    Whitespace-only and plain-word tokens are left out: text may contain those."""
    tok = getattr(processor, "tokenizer", processor)
    found = set(getattr(tok, "all_special_tokens", ())) | set(getattr(tok, "get_added_vocab", dict)())
    for name in dir(processor):
        if name.endswith("_token") and not name.startswith("_"):
            try:
                value = getattr(processor, name)
            except Exception:  # noqa: BLE001 - a property that needs state: not a placeholder
                continue
            if isinstance(value, str):
                found.add(value)
    return tuple(sorted(t for t in found if t.strip() and not t.strip().isalnum()))


# The HTTP routes bound to the class once, at import: every Serve replica imports this module,
# so the routes it serves are the class-bound ones (binding inside build_app would only change
# the driver's copy of `app`). CaptionServer itself stays a plain class.
CaptionServerHTTP = serve.ingress(app)(CaptionServer)


DEPLOYMENT_DEFAULTS = {"max_ongoing_requests": 32, "max_queued_requests": 64}


def build_app(config: dict[str, Any] | None = None, engine: CaptionEngine | None = None) -> Any:
    """The Serve application. `config` holds the ServeConfig fields plus an optional
    `deployment` mapping (num_replicas or autoscaling_config, ray_actor_options, ...)."""
    config = dict(config or {})
    deployment = dict(config.pop("deployment", {}))
    cfg = ServeConfig.from_dict(config)
    # The adapter travels as user_config: changing it reconfigures running replicas in place.
    deployment.setdefault("user_config", {"adapter": cfg.adapter})
    # Bounded queues: past max_ongoing_requests per replica and max_queued_requests per caller,
    # Serve answers 503 with Retry-After instead of queueing without end.
    for key, value in DEPLOYMENT_DEFAULTS.items():
        deployment.setdefault(key, value)
    deployment["backpressure_config"] = {"retry_after_s": cfg.retry_after_s} | dict(
        deployment.get("backpressure_config") or {}
    )
    dep = serve.deployment(name="CaptionServer", **deployment)(CaptionServerHTTP)
    return dep.bind(cfg, engine)


def app_builder(args: dict[str, Any]) -> Any:
    """Entry for `serve run serve/config.yaml`: the YAML's `args` are build_app's config."""
    return build_app(args)
