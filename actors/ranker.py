"""Reward-model ranking actor (SVP's svp.score=genrm): within one image's group of guided
captions, every caption's round-robin win probability under VL-GenRM becomes its score."""

from __future__ import annotations

import pandas as pd

from actors import require
from actors.images import read_rows
from groundloop import prompts
from groundloop.genrm import best_of_n
from groundloop.models import load_reward_model


class RewardRankActor:
    def __init__(self, reward_model_spec: str, column: str = "guided", max_new_tokens: int = 200) -> None:
        self.rm = load_reward_model(reward_model_spec, max_new_tokens=max_new_tokens)
        self.column = column

    def __call__(self, group: pd.DataFrame) -> pd.DataFrame:
        require(group, ["path", self.column], "RewardRankActor")
        images, errors = read_rows(group)
        ok = [i for i, e in enumerate(errors) if not e and group[self.column].iloc[i]]
        caps = [group[self.column].iloc[i] for i in ok]

        def judge(pairs):
            return self.rm.prefer(
                [images[ok[i]] for i, _ in pairs],
                [prompts.BASE_PROMPT] * len(pairs),
                [caps[i] for i, _ in pairs],
                [caps[j] for _, j in pairs],
            )

        scores = [float("nan")] * len(group)
        for i, s in zip(ok, best_of_n.pairwise_scores(len(ok), judge)):
            scores[i] = s
        return group.assign(genrm=scores)
