"""The captioning endpoint: an OpenAI-compatible chat-completions server over the decoders.

`CaptionServer` is undecorated and takes its captioning engine injected (tests hand in a
fake one); `build_app(config)` wraps it in a Serve deployment with the config's replicas,
autoscaling and per-replica resources. Requests are batched dynamically (`serve.batch`).

    serve run serve/config.yaml            # or: serve deploy serve/config.yaml
    curl 127.0.0.1:8000/v1/models
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from PIL import Image
from ray import serve

from groundloop import prompts
from groundloop.decoding import DecodeSettings
from serve.protocol import CaptionRequest, Limits, ProtocolError, chat_response, models_response, parse_chat_request


class CaptionEngine(Protocol):
    def caption(self, decoder: str, images: Sequence[Image.Image], text: str,
                settings: DecodeSettings) -> list[str]:
        """One caption per image with the named decoder."""
        ...

    def count_tokens(self, text: str) -> int:
        ...

    def set_adapter(self, adapter: str | None) -> None:
        """Switch the VLM to this PEFT adapter (None: the base model)."""
        ...


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
    decode: DecodeSettings = field(default_factory=DecodeSettings)
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServeConfig:
        d = dict(d)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown serve config key(s) {unknown}; known: {sorted(known)}")
        if "decode" in d:
            dec = dict(d["decode"])
            for key in ("temperatures", "refine_temperatures"):
                if key in dec:
                    dec[key] = tuple(dec[key])
            d["decode"] = DecodeSettings(**dec)
        if "limits" in d:
            d["limits"] = Limits(**d["limits"])
        return cls(**d)


def error_response(e: ProtocolError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status)


app = FastAPI(title="groundloop captioning")


class CaptionServer:
    """Parses OpenAI chat requests, batches them, captions them with the injected engine."""

    def __init__(self, config: ServeConfig | dict | None = None, engine: CaptionEngine | None = None) -> None:
        self.config = config if isinstance(config, ServeConfig) else ServeConfig.from_dict(config or {})
        self.engine = engine if engine is not None else ModelEngine(self.config)
        self.created = int(time.time())
        self.caption_batch.set_max_batch_size(self.config.max_batch_size)
        self.caption_batch.set_batch_wait_timeout_s(self.config.batch_wait_timeout_s)
        self.batch_sizes: list[int] = []

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def caption_batch(self, requests: list[CaptionRequest]) -> list[str]:
        """One decoder pass per (decoder, settings, prompt) group of the batch."""
        self.batch_sizes.append(len(requests))
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.decoder, r.settings, r.text), []).append(i)
        out: list[str] = [""] * len(requests)
        for (decoder, settings, text), idx in groups.items():
            caps = await asyncio.to_thread(self.engine.caption, decoder, [requests[i].image for i in idx],
                                           text or prompts.BASE_PROMPT, settings)
            for i, c in zip(idx, caps):
                out[i] = c
        return out

    @app.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> JSONResponse:
        try:
            try:
                body = json.loads(await request.body())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ProtocolError(400, f"request body is not valid JSON: {e}") from None
            req = parse_chat_request(body, self.config.decode, self.config.limits)
            served = getattr(self.engine, "decoders", None)
            if served is not None and req.decoder not in served:
                raise ProtocolError(404, f"model {body['model']!r} is not served by this deployment "
                                    f"(serving: {', '.join(served)})", "model")
        except ProtocolError as e:
            return error_response(e)
        caption = await self.caption_batch(req)
        prompt_tokens = self.engine.count_tokens(req.text or prompts.BASE_PROMPT)
        return JSONResponse(chat_response(caption, body["model"], prompt_tokens, self.engine.count_tokens(caption)))

    @app.get("/v1/models")
    async def models(self) -> dict[str, Any]:
        return models_response(self.created)

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
        joins the same dynamic batches as HTTP requests."""
        from groundloop.data.coco import load_image

        reqs = [CaptionRequest(load_image(p).convert("RGB"), "", decoder, self.config.decode) for p in paths]
        return list(await asyncio.gather(*[self.caption_batch(r) for r in reqs]))

    def stats(self) -> dict[str, Any]:
        n = len(self.batch_sizes)
        return {"batches": n, "mean_batch_size": sum(self.batch_sizes) / n if n else 0.0,
                "max_batch_size": self.config.max_batch_size,
                "adapter": getattr(self, "adapter", self.config.adapter)}


class ModelEngine:
    """The real engine: the shipped (or hub) VLM, value model and CLIP behind the decoders."""

    def __init__(self, config: ServeConfig) -> None:
        import torch

        from groundloop.decoding import DECODERS
        from groundloop.models import load_clip, load_reward_model, load_value, load_vlm
        from groundloop.sampling import HFSampler
        from groundloop.similarity import ClipScorer

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

    def caption(self, decoder: str, images: Sequence[Image.Image], text: str,
                settings: DecodeSettings) -> list[str]:
        from groundloop import decoding

        eng = decoding.Engines(self.sampler, value=self.value, clip=self.clip, judge=self.judge, prompt=text)
        return decoding.decode(decoder, eng, images, settings)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def set_adapter(self, adapter: str | None) -> None:
        from groundloop.models import load_vlm
        from groundloop.sampling import HFSampler

        # Load beside the old model, then swap one reference: a decode already running keeps
        # the sampler it started with, the next one gets the new model.
        model, processor = load_vlm(self.config.vlm, adapter=adapter)
        self.sampler = HFSampler(model, processor, max_new_tokens=self.config.max_new_tokens, seed=self.config.seed)


# The HTTP routes bound to the class once, at import: every Serve replica imports this module,
# so the routes it serves are the class-bound ones (binding inside build_app would only change
# the driver's copy of `app`). CaptionServer itself stays a plain class.
CaptionServerHTTP = serve.ingress(app)(CaptionServer)


def build_app(config: dict[str, Any] | None = None, engine: CaptionEngine | None = None) -> Any:
    """The Serve application. `config` holds the ServeConfig fields plus an optional
    `deployment` mapping (num_replicas or autoscaling_config, ray_actor_options, ...)."""
    config = dict(config or {})
    deployment = dict(config.pop("deployment", {}))
    cfg = ServeConfig.from_dict(config)
    # The adapter travels as user_config: changing it reconfigures running replicas in place.
    deployment.setdefault("user_config", {"adapter": cfg.adapter})
    dep = serve.deployment(name="CaptionServer", **deployment)(CaptionServerHTTP)
    return dep.bind(cfg, engine)


def app_builder(args: dict[str, Any]) -> Any:
    """Entry for `serve run serve/config.yaml`: the YAML's `args` are build_app's config."""
    return build_app(args)
