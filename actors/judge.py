"""Reward-model actor: judge pairs of responses (critique, then verdict log-probabilities).

Rows: path, question, a, b. With samples > 1 every pair gets that many sampled critiques
(one output row each, column `sample`), for stage 2's rejection sampling."""

from __future__ import annotations

import pandas as pd
import torch

from actors import isolated, require
from actors.images import read_rows
from groundloop import vocab
from groundloop.data.coco import load_image
from groundloop.genrm.judge import GenRM
from groundloop.models import load_vlm


class JudgeActor:
    def __init__(
        self,
        model_spec: str,
        adapter: str | None,
        samples: int = 1,
        temperature: float = 0.0,
        max_new_tokens: int = 200,
        seed: int = 0,
        torch_threads: int = 0,
        critique: str = "free",
        check_threshold: float = 0.0,
        vocabulary: str = "shapes",
    ) -> None:
        if torch_threads:  # Ray pins a fractional-CPU actor to one thread; judging may run alone
            torch.set_num_threads(torch_threads)
        self.rm = GenRM(
            *load_vlm(model_spec, adapter=adapter),
            max_new_tokens=max_new_tokens,
            seed=seed,
            critique=critique,
            check_threshold=check_threshold,
            vocab=vocab.get(vocabulary),
        )
        self.samples, self.temperature = samples, temperature

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        require(batch, ["path", "question", "a", "b"], "JudgeActor")
        images, errors = read_rows(batch)
        ok = [i for i, e in enumerate(errors) if not e]

        def judge(rows: list[int]) -> list[list]:
            reps = [i for i in rows for _ in range(self.samples)]
            js = self.rm.judge(
                [images[i] for i in reps],
                [batch["question"].iloc[i] for i in reps],
                [batch["a"].iloc[i] for i in reps],
                [batch["b"].iloc[i] for i in reps],
                temperature=self.temperature,
            )
            return [js[j * self.samples : (j + 1) * self.samples] for j in range(len(rows))]

        rows = [
            batch.iloc[i].to_dict()
            | {
                "sample": k,
                "judgement": j.text,
                "thought": j.thought,
                "verdict": j.verdict or "",
                "logp_a": j.logp_a,
                "logp_b": j.logp_b,
                "error": "",
            }
            for i, js in isolated(judge, ok, errors, "judging").items()
            for k, j in enumerate(js)
        ]
        rows += [
            batch.iloc[i].to_dict()
            | {
                "sample": 0,
                "judgement": "",
                "thought": "",
                "verdict": "",
                "logp_a": float("nan"),
                "logp_b": float("nan"),
                "error": e,
            }
            for i, e in enumerate(errors)
            if e
        ]
        return pd.DataFrame(rows)


def claim_margins(
    model_spec: str, paths: list[str], claims: list[str], vocabulary: str, torch_threads: int = 0
) -> list[float]:
    """The base VLM's Yes-minus-No logit for each (image path, claim) question: what the factored
    checks' threshold is calibrated on. Run as a Ray task."""
    if torch_threads:
        torch.set_num_threads(torch_threads)
    judge = GenRM(*load_vlm(model_spec), critique="factored", vocab=vocab.get(vocabulary))
    images = {p: load_image(p) for p in dict.fromkeys(paths)}
    return judge.check_margins([images[p] for p in paths], claims)
