"""VLM sampler actor: K prior captions per image, or one guided caption per grounded row."""

from __future__ import annotations

import pandas as pd

from actors import isolated, require
from actors.images import read_rows
from groundloop import prompts
from groundloop.vllm_sampler import load_sampler


class SamplerActor:
    def __init__(
        self,
        model_spec: str,
        adapter: str | None = None,
        mode: str = "prior",
        k: int = 1,
        temperature: float = 1.0,
        top_p: float = 0.95,
        max_new_tokens: int = 120,
        seed: int = 0,
        engine: str = "hf",
    ) -> None:
        if mode not in ("prior", "guided"):
            raise ValueError(f"mode must be 'prior' or 'guided', got {mode!r}")
        self.mode, self.k, self.temperature, self.top_p = mode, k, temperature, top_p
        self.sampler = load_sampler(engine, model_spec, adapter, max_new_tokens, seed)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        require(batch, ["image_id", "path"] + (["grounding"] if self.mode == "guided" else []), "SamplerActor")
        images, errors = read_rows(batch)
        ok = [i for i, e in enumerate(errors) if not e]
        if self.mode == "prior":
            texts = [prompts.BASE_PROMPT] * len(ok)
        else:
            texts = [prompts.grounded_prompt(batch["grounding"].iloc[i]) for i in ok]
        n = self.k if self.mode == "prior" else 1
        text_of = dict(zip(ok, texts))
        by_row = isolated(
            lambda rows: self.sampler.generate(
                [images[i] for i in rows],
                [text_of[i] for i in rows],
                n=n,
                temperature=self.temperature,
                top_p=self.top_p,
            ),
            ok,
            errors,
            "sampling",
        )
        out = []
        for i, row in enumerate(batch.to_dict("records")):
            row["error"] = errors[i]
            if self.mode == "prior":
                siblings = by_row.get(i, [""])
                for j, s in enumerate(siblings):
                    # image_priors: all K priors of the image, for grounding from their union
                    out.append(row | {"sample": j, "prior": s, "image_priors": list(siblings)})
            else:
                out.append(row | {"guided": by_row.get(i, [""])[0]})
        return pd.DataFrame(out)


class CaptionSetActor:
    """Per image: the greedy caption and k captions at each temperature, in one batched pass;
    `sample` numbers an image's rows (0: the greedy caption; an unreadable image has one row)."""

    def __init__(
        self,
        model_spec: str,
        temperatures: tuple[float, ...],
        k: int,
        top_p: float = 0.9,
        max_new_tokens: int = 160,
        seed: int = 0,
        adapter: str | None = None,
        engine: str = "hf",
    ) -> None:
        self.temps = [0.0] + [t for t in temperatures for _ in range(k)]
        self.top_p = top_p
        self.sampler = load_sampler(engine, model_spec, adapter, max_new_tokens, seed)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        require(batch, ["image_id", "path"], "CaptionSetActor")
        images, errors = read_rows(batch)
        ok = [i for i, e in enumerate(errors) if not e]

        def captions(rows: list[int]) -> list[list[str]]:
            ims = [images[i] for i in rows for _ in self.temps]
            temps = [t for _ in rows for t in self.temps]
            caps = self.sampler.sample(ims, [prompts.BASE_PROMPT] * len(ims), [""] * len(ims), temps, self.top_p)
            return [caps[j * len(self.temps) : (j + 1) * len(self.temps)] for j in range(len(rows))]

        by_row = isolated(captions, ok, errors, "sampling")
        out = [
            batch.iloc[i].to_dict() | {"sample": j, "source": f"t{t}" if t else "greedy", "caption": c}
            for i, caps in by_row.items()
            for j, (t, c) in enumerate(zip(self.temps, caps))
        ]
        out += [
            batch.iloc[i].to_dict() | {"sample": 0, "source": "error", "caption": "", "error": errors[i]}
            for i, e in enumerate(errors)
            if e
        ]
        return pd.DataFrame(out)
