"""The `Sampler` and `StepSampler` protocols on vLLM (the optional `vllm` extra, GPU nodes).

Batched generation of n samples per prompt, a temperature per row (one `SamplingParams` per
row), an SVP iteration's LoRA adapter applied per request (`LoRARequest`, never merged; each
adapter folder gets its own name, since vLLM caches adapters by name), images passed in the
chat format, prefix caching on so a prompt's K samples share its prefill.

S and Delta need the full-vocabulary distribution at every caption position; vLLM returns at
most `max_logprobs` entries per position (a Python dict each, and prompt log-probs switch
prefix caching off), so scoring stays the batched teacher-forcing scorer
(`groundloop.svp.scoring`) on a transformers copy of the model on the same GPU actor.

What can be checked without a GPU (request construction) is in pure functions below.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from PIL import Image

from groundloop.sampling import first_sentence


def chat_messages(text: str, image: Image.Image, prefix: str = "") -> list[dict[str, Any]]:
    """One user turn with the image and the text (vLLM's `image_pil` content part); with a prefix,
    the assistant's answer so far, which vLLM continues (`continue_final_message`)."""
    msgs: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "image_pil", "image_pil": image}, {"type": "text", "text": text}]}
    ]
    if prefix:
        msgs.append({"role": "assistant", "content": prefix})
    return msgs


def sampling_kwargs(
    n: int, temperature: float, top_p: float, max_tokens: int, seed: int | None, one_sentence: bool = False
) -> dict[str, Any]:
    """`vllm.SamplingParams` arguments: temperature 0 is greedy (one sample, top_p 1)."""
    if n < 1 or max_tokens < 1:
        raise ValueError(f"n and max_tokens must be >= 1, got {n} and {max_tokens}")
    greedy = temperature <= 0
    kw: dict[str, Any] = {
        "n": 1 if greedy else n,
        "temperature": 0.0 if greedy else float(temperature),
        "top_p": 1.0 if greedy else float(top_p),
        "max_tokens": int(max_tokens),
    }
    if seed is not None:
        kw["seed"] = int(seed)
    if one_sentence:  # the sentence end is kept, as the transformers sampler keeps it
        kw |= {"stop": [". ", "! ", "? "], "include_stop_str_in_output": True}
    return kw


def adapter_name(path: str | Path) -> str:
    """A name unique to an adapter folder's contents: SVP writes one adapter per iteration, and
    vLLM serves a cached adapter again for a name it has seen."""
    folder = Path(path)
    h = hashlib.sha1(str(folder.resolve()).encode())
    for f in sorted(folder.glob("adapter_*")):
        h.update(f.name.encode() + str(f.stat().st_mtime_ns).encode())
    return f"{folder.name}-{h.hexdigest()[:12]}"


class VLLMSampler:
    """vLLM's offline engine as a `Sampler` / `StepSampler`."""

    def __init__(
        self,
        model: str,
        adapter: str | None = None,
        max_new_tokens: int = 160,
        seed: int | None = None,
        max_lora_rank: int = 64,
        **engine_args: Any,
    ) -> None:
        from vllm import LLM
        from vllm.lora.request import LoRARequest

        self.llm = LLM(
            model=model,
            enable_lora=adapter is not None,
            max_lora_rank=max_lora_rank,
            enable_prefix_caching=True,
            seed=seed or 0,
            **engine_args,
        )
        self.lora = LoRARequest(adapter_name(adapter), 1, str(adapter)) if adapter else None
        self.max_new_tokens, self.seed = max_new_tokens, seed

    def _chat(self, messages: list[list[dict[str, Any]]], params: Any, continued: bool) -> list[Any]:
        return cast(
            list[Any],
            self.llm.chat(
                messages,
                params,
                lora_request=self.lora,
                use_tqdm=False,
                add_generation_prompt=not continued,
                continue_final_message=continued,
            ),
        )

    def generate(
        self, images: list[Image.Image], texts: list[str], n: int = 1, temperature: float = 0.0, top_p: float = 1.0
    ) -> list[list[str]]:
        from vllm import SamplingParams

        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} prompts")
        params = SamplingParams(**sampling_kwargs(n, temperature, top_p, self.max_new_tokens, self.seed))
        outs = self._chat([chat_messages(t, im) for im, t in zip(images, texts)], params, continued=False)
        texts_out = [[o.text.strip() for o in out.outputs] for out in outs]
        return [t * n if temperature <= 0 else t for t in texts_out]  # greedy: n identical completions

    def sample(
        self,
        images: Sequence[Image.Image],
        texts: Sequence[str],
        prefixes: Sequence[str],
        temperatures: Sequence[float],
        top_p: float = 1.0,
        one_sentence: bool = False,
    ) -> list[str]:
        from vllm import SamplingParams

        if not len(images) == len(texts) == len(prefixes) == len(temperatures):
            raise ValueError("images, texts, prefixes and temperatures must have one entry per row")
        params = [
            SamplingParams(**sampling_kwargs(1, t, top_p, self.max_new_tokens, self.seed, one_sentence))
            for t in temperatures
        ]
        rows = [chat_messages(t, im, p) for im, t, p in zip(images, texts, prefixes)]
        outs: list[Any] = [None] * len(rows)
        for continued in (False, True):  # a vLLM call continues every row's answer or none
            idx = [i for i, p in enumerate(prefixes) if bool(p) == continued]
            if idx:
                for i, out in zip(idx, self._chat([rows[i] for i in idx], [params[i] for i in idx], continued)):
                    outs[i] = out
        texts_out = [out.outputs[0].text.strip() for out in outs]
        return [first_sentence(t) for t in texts_out] if one_sentence else texts_out


ENGINES = ("hf", "vllm")


def load_sampler(
    engine: str, model_spec: str, adapter: str | None = None, max_new_tokens: int = 160, seed: int | None = None
) -> Any:
    """The sampler of `engine`: "hf" (transformers, any device) or "vllm" (GPU, optional extra)."""
    if engine == "hf":
        from groundloop.models import load_vlm
        from groundloop.sampling import HFSampler

        return HFSampler(*load_vlm(model_spec, adapter=adapter), max_new_tokens=max_new_tokens, seed=seed)
    if engine == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            raise RuntimeError(
                "model.engine=vllm needs the vllm extra on a GPU node (pip install 'groundloop[vllm]')"
            ) from e
        from groundloop.models import resolve

        return VLLMSampler(resolve(model_spec), adapter=adapter, max_new_tokens=max_new_tokens, seed=seed)
    raise ValueError(f"unknown sampling engine {engine!r} (known: {', '.join(ENGINES)})")
