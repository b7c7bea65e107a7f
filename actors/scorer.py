"""Scorer actor: teacher-force every guided caption under the grounded prompt (q) and the
plain prompt (p) and write S(q,p) and Delta(q,p); the rows of one image share each prompt's
prefill (`groundloop.svp.scoring.caption_logprobs`)."""

from __future__ import annotations

import pandas as pd

from actors import isolated, require
from actors.images import read_rows
from groundloop.models import load_vlm
from groundloop.svp.scoring import score_guided


class ScorerActor:
    def __init__(self, model_spec: str, adapter: str | None = None) -> None:
        self.model, self.processor = load_vlm(model_spec, adapter=adapter)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        require(batch, ["image_id", "path", "grounding", "guided"], "ScorerActor")
        images, errors = read_rows(batch)
        ok = [i for i, e in enumerate(errors) if not e]
        s, d = [float("nan")] * len(batch), [float("nan")] * len(batch)

        def score(rows: list[int]) -> list[tuple[float, float]]:
            sv, dv = score_guided(
                self.model,
                self.processor,
                [images[i] for i in rows],
                [batch["grounding"].iloc[i] for i in rows],
                [batch["guided"].iloc[i] for i in rows],
                keys=[batch["image_id"].iloc[i] for i in rows],
            )
            return list(zip(sv, dv))

        for i, (sv, dv) in isolated(score, ok, errors, "scoring").items():
            s[i], d[i] = sv, dv
        return batch.assign(S=s, delta=d, error=errors)
