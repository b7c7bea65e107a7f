"""ViMaR's value side: the margin reward, TD(0) targets, and the value model (VLM + head).

Reward of a caption sentence s for image I, with delta = CLIP cosine similarity:

    r = delta            if delta >= tau
    r = -alpha (tau - delta)   otherwise

tau is calibrated from the data (a percentile of delta over training sentences), never
hard-coded. The value model V(I, s) is trained with semi-gradient TD(0):

    target_i = r_i + gamma * V(I, s_{i+1})   (no gradient through V(I, s_{i+1}))
    target_i = r_i                           for the last sentence of a caption.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import numpy as np
import torch
from PIL import Image

from groundloop import prompts
from groundloop.models import families

VALUE_FILE = "value_head.pt"
VALUE_META = "value.json"


def split_sentences(text: str) -> list[str]:
    """A caption's sentences ("In the image, ... . A red circle ... .") without empty ones."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def margin_reward(delta: torch.Tensor, tau: float, alpha: float = 1.0) -> torch.Tensor:
    """delta: (N,) image-text similarities. Returns (N,) rewards: delta above tau, and a
    penalty proportional to the shortfall below it."""
    return torch.where(delta >= tau, delta, -alpha * (tau - delta))


def calibrate(scores: Sequence[float], percentile: float) -> float:
    """The percentile (0-100) of a score distribution: how tau and thresholds are set."""
    if not len(scores):
        raise ValueError("cannot calibrate on an empty score list")
    return float(np.percentile(np.asarray(scores, dtype=np.float64), percentile))


def td_targets(
    rewards: torch.Tensor, next_values: torch.Tensor, terminal: torch.Tensor, gamma: float = 0.9
) -> torch.Tensor:
    """TD(0) targets. rewards, next_values: (N,); terminal: (N,) bool, True for a caption's
    last sentence (its next value is ignored). Returns (N,), detached."""
    bootstrap = torch.where(terminal, torch.zeros_like(next_values), next_values)
    return (rewards + gamma * bootstrap).detach()


def td_loss(
    values: torch.Tensor, next_values: torch.Tensor, rewards: torch.Tensor, terminal: torch.Tensor, gamma: float = 0.9
) -> torch.Tensor:
    """Semi-gradient TD(0): mean squared error of V(s_i) against r_i + gamma V(s_{i+1}),
    the target carrying no gradient. All arguments (N,); returns a scalar."""
    return torch.nn.functional.mse_loss(values, td_targets(rewards, next_values, terminal, gamma))


def transitions(
    captions: Sequence[Sequence[str]],
    rewards: Sequence[Sequence[float]],
) -> list[tuple[int, str, str, float, bool]]:
    """(caption index, s_i, s_{i+1} or '' after the last, r_i, terminal) for every sentence
    of every caption."""
    out = []
    for c, (sents, rs) in enumerate(zip(captions, rewards)):
        if len(sents) != len(rs):
            raise ValueError(f"caption {c}: {len(sents)} sentences but {len(rs)} rewards")
        for i, (s, r) in enumerate(zip(sents, rs)):
            last = i == len(sents) - 1
            out.append((c, s, "" if last else sents[i + 1], float(r), last))
    return out


def counterfactual(sentence: str, groups: Sequence[Sequence[str]], rng: random.Random) -> str | None:
    """The sentence with one word of a group swapped for another word of the same group
    ("red" -> "blue", "circle" -> "square"): a sentence the policy could have written at this
    step instead. None when no word of the sentence belongs to a group. Whole words only, so
    "circles" is not a "circle"."""
    hits = [(m, g) for m in re.finditer(r"[A-Za-z]+", sentence) for g in groups if len(g) > 1 and m.group(0) in g]
    if not hits:
        return None
    m, group = rng.choice(hits)
    return sentence[: m.start()] + rng.choice([w for w in group if w != m.group(0)]) + sentence[m.end() :]


def counterfactual_transitions(
    sentences: Sequence[Sequence[str]],
    swapped: Sequence[Sequence[str | None]],
    rewards: Sequence[Sequence[float | None]],
) -> list[tuple[int, str, str, float, bool]]:
    """TD transitions for swapped sentences: (caption index, s'_i, s_{i+1} of the original
    caption or '' after the last, r(s'_i), terminal). The swap replaces one step, so the state
    that follows is the policy's own next sentence; the target differs from the original
    step's only by the reward, which is what teaches V to read the sentence against the image."""
    out = []
    for c, (sents, alts, rs) in enumerate(zip(sentences, swapped, rewards)):
        if not len(sents) == len(alts) == len(rs):
            raise ValueError(f"caption {c}: {len(sents)} sentences, {len(alts)} swaps, {len(rs)} rewards")
        for i, (alt, r) in enumerate(zip(alts, rs)):
            if alt is None or r is None:
                continue
            last = i == len(sents) - 1
            out.append((c, alt, "" if last else sents[i + 1], float(r), last))
    return out


def td_batch_loss(
    model: ValueModel,
    images: Sequence[Image.Image],
    states: Sequence[str],
    next_states: Sequence[str],
    rewards: Sequence[float],
    terminal: Sequence[bool],
    gamma: float = 0.9,
    reward_weight: float = 0.0,
) -> torch.Tensor:
    """Semi-gradient TD(0) loss of a batch of transitions (image, s_i, s_{i+1}, r_i, terminal):
    V(s_{i+1}) of the live rows is computed without gradient and terminal rows bootstrap 0.
    reward_weight > 0 (a model with a reward head): plus reward_weight * MSE(R(s_i), r_i), the
    step's own reward as a supervised target for V's reward part."""
    enc = model.encode(images, list(states))
    if reward_weight:
        values, reward_part = model(**enc, parts=True)
    else:
        values = model(**enc)
    done = torch.tensor([bool(t) for t in terminal], device=values.device)
    nxt = torch.zeros(len(states), device=values.device)
    live = [i for i, t in enumerate(done.tolist()) if not t]
    if live:
        with torch.no_grad():
            nxt[live] = model(**model.encode([images[i] for i in live], [next_states[i] for i in live]))
    r = torch.tensor([float(x) for x in rewards], device=values.device)
    loss = td_loss(values, nxt, r, done, gamma)
    if reward_weight:
        loss = loss + reward_weight * torch.nn.functional.mse_loss(reward_part, r)
    return loss


def optimizer(
    model: ValueModel, lr: float, head_lr_mult: float = 10.0, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """AdamW with the backbone at lr and the (fresh) heads at lr * head_lr_mult."""
    fresh = ("head.", "reward_head.")
    head = [p for n, p in model.named_parameters() if n.startswith(fresh)]
    backbone = [p for n, p in model.named_parameters() if not n.startswith(fresh)]
    return torch.optim.AdamW(
        [{"params": backbone, "lr": lr}, {"params": head, "lr": lr * head_lr_mult}], weight_decay=weight_decay
    )


_T = TypeVar("_T")


def _distinct(items: list[_T], key: Callable[[_T], Any]) -> tuple[list[_T], list[int]]:
    """The items with repeats (by key) left out, first occurrences in order, and for every
    item the position of its first occurrence among them."""
    first: dict[Any, int] = {}
    out: list[_T] = []
    for it in items:
        if key(it) not in first:
            first[key(it)] = len(out)
            out.append(it)
    return out, [first[key(it)] for it in items]


class ValueFunction(Protocol):
    def values(self, images: Sequence[Image.Image], sentences: Sequence[str]) -> list[float]:
        """V(image_i, sentence_i) for each pair."""
        ...


class MatchHead(torch.nn.Module):
    """A value head that pools the sentence against the image ("match" pooling).

    Every sentence token asks which image token it matches best (cosine of learned projections
    of the sentence's last hidden states and of the image tokens' `keys`, max over the image
    tokens); a learned softmax over the sentence's tokens weights those matches into one
    number, which joins the sentence's last hidden state in the linear read-out. Pooling only one position ("last" /
    "mean") leaves the text-to-patch lookup to the small LM, which the shipped VLM does not
    do (held-out AUC 0.56 against CLIP's 0.87; docs/history/, ViMaR's value model).
    """

    def __init__(self, hidden: int, dim: int = 64) -> None:
        super().__init__()
        self.query = torch.nn.Linear(hidden, dim)
        self.key = torch.nn.Linear(hidden, dim)
        self.weight = torch.nn.Linear(hidden, 1)
        self.scale = torch.nn.Parameter(torch.tensor(5.0))
        self.out = torch.nn.Linear(hidden + 1, 1)
        torch.nn.init.zeros_(self.out.weight[:, :hidden])
        torch.nn.init.constant_(self.out.weight[:, hidden:], 0.1)
        torch.nn.init.zeros_(self.out.bias)

    def forward(
        self, h: torch.Tensor, sentence_mask: torch.Tensor, image_mask: torch.Tensor, keys: torch.Tensor | None = None
    ) -> torch.Tensor:
        """h: (B, T, H) last hidden states; masks: (B, T), 1 on the sentence / image tokens;
        keys: (B, T, H) the states the image tokens are read from (default h)."""
        if not bool(image_mask.any(1).all()):
            raise ValueError("match pooling needs image tokens in every row")
        q = torch.nn.functional.normalize(self.query(h), dim=-1)
        k = torch.nn.functional.normalize(self.key(h if keys is None else keys), dim=-1)
        sim = (q @ k.transpose(1, 2)).masked_fill(~image_mask.bool()[:, None, :], -2.0)
        best = sim.max(-1).values  # (B, T): each token's best image token
        w = self.weight(h).squeeze(-1).masked_fill(~sentence_mask.bool(), float("-inf")).softmax(-1)
        match = (w * best).sum(-1, keepdim=True) * self.scale
        return cast(torch.Tensor, self.out(torch.cat([h[:, -1], match], -1))).squeeze(-1)


class ValueModel(torch.nn.Module):
    """A VLM backbone with a scalar head on the pooled hidden states of the sentence.

    The state (image, sentence) is written as the chat: user = image + base prompt,
    assistant = the sentence, so the backbone sees what it saw when it wrote the sentence.
    meta["pool"]: the hidden state the head reads: the sentence's "last" token (default), the
    "mean" over the sentence's tokens, or "match": the sentence's tokens matched against the
    image tokens (`MatchHead`).
    meta["reward_head"]: V = R(s) + C(s), two heads of that kind; R also learns the step's own
    reward as a supervised target (`td_batch_loss(reward_weight=...)`), so the part of V that
    judges this sentence against the image gets a direct signal, not only TD's bootstrapped
    one. V itself is still trained by TD(0).
    """

    def __init__(self, vlm: Any, processor: Any, meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.vlm = vlm
        self.processor = processor
        self.meta: dict[str, Any] = dict(meta or {})
        hidden = vlm.config.text_config.hidden_size
        pool = self.meta.get("pool", "last")
        if pool not in ("last", "mean", "match"):
            raise ValueError(f"value pool must be 'last', 'mean' or 'match', not {pool!r}")
        if self.meta.get("match_keys", "last") not in ("last", "input"):
            raise ValueError(f"value match_keys must be 'last' or 'input', not {self.meta['match_keys']!r}")
        self.head = self._new_head(pool, hidden)
        self.reward_head = self._new_head(pool, hidden) if self.meta.get("reward_head") else None

    @staticmethod
    def _new_head(pool: str, hidden: int) -> torch.nn.Module:
        if pool == "match":
            return MatchHead(hidden)
        head = torch.nn.Linear(hidden, 1)
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
        return head

    def _chat(self, sentence: str) -> str:
        """The state as text: user = image + base prompt, assistant = the sentence (unfinished)."""
        return families.chat(self.processor, prompts.BASE_PROMPT, prefix=sentence)

    @property
    def _reads_input_states(self) -> bool:
        """Whether a head reads the LM's input states (match pooling with match_keys "input")."""
        return bool(self.meta.get("pool", "last") == "match" and self.meta.get("match_keys", "last") == "input")

    def encode(self, images: Sequence[Image.Image], sentences: Sequence[str]) -> dict[str, torch.Tensor]:
        tok = self.processor.tokenizer
        # left padded: the last position is every row's last real token
        enc = families.prompts_batch(self.processor, images, [prompts.BASE_PROMPT] * len(sentences), sentences)
        # Left padding: a sentence is the last n tokens of its row.
        n = torch.tensor([max(1, len(tok(s, add_special_tokens=False)["input_ids"])) for s in sentences])
        pos = torch.arange(enc["input_ids"].shape[1])[None, :]
        enc["sentence_mask"] = (pos >= enc["input_ids"].shape[1] - n[:, None]).float()
        return enc

    def forward(
        self, sentence_mask: torch.Tensor | None = None, parts: bool = False, **enc: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """enc: `encode`'s output. Returns (B,) values; with parts=True (a model with a reward
        head), (values, their reward part R)."""
        enc = families.to_model(enc, self.vlm)
        if sentence_mask is not None:
            sentence_mask = sentence_mask.to(enc["input_ids"].device)
        out = self.vlm.model(**enc, output_hidden_states=self._reads_input_states)
        keys = out.hidden_states[0] if self._reads_input_states else None
        return self._read(
            out.last_hidden_state, sentence_mask, enc["input_ids"] == families.image_token_id(self.vlm), keys, parts
        )

    def _read(
        self,
        h: torch.Tensor,
        sentence_mask: torch.Tensor | None,
        image_mask: torch.Tensor,
        keys: torch.Tensor | None,
        parts: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The heads on a left-padded batch: h (B, T, H) the last hidden states, whose last
        position is each row's last real token; keys: the LM's input states (match_keys "input")."""
        pool = self.meta.get("pool", "last")
        if pool == "match":
            if sentence_mask is None:
                raise ValueError("match pooling needs encode()'s sentence_mask")
            # "input": the image tokens as the LM receives them (the projected vision features),
            # before the LM's layers mix them; "last": the LM's last hidden states there
            args: tuple[torch.Tensor | None, ...] = (h, sentence_mask, image_mask, keys)
        elif pool == "mean" and sentence_mask is not None:
            args = ((h * sentence_mask[..., None]).sum(1) / sentence_mask.sum(1, keepdim=True),)
        else:
            args = (h[:, -1],)

        def read(head: torch.nn.Module) -> torch.Tensor:
            v: torch.Tensor = head(*args)
            return v if pool == "match" else v.squeeze(-1)

        value = read(self.head)
        if self.reward_head is None:
            if parts:
                raise ValueError("parts=True needs a value model with a reward head (meta reward_head)")
            return value
        reward = read(self.reward_head)
        return (value + reward, reward) if parts else value + reward

    @torch.no_grad()
    def values(
        self, images: Sequence[Image.Image], sentences: Sequence[str], batch_size: int = 64, share_prefix: bool = True
    ) -> list[float]:
        """V(image_i, sentence_i). Repeated (image, sentence) states are computed once. With
        share_prefix (the default), each distinct image's part of the chat (image tokens and
        prompt, the same for every sentence) runs through the backbone once and its KV cache
        serves all of that image's sentences, which then cost only their own tokens; the
        result equals the full forward pass (a test checks it). Images are told apart by
        object identity, as the decoders pass them."""
        if len(images) != len(sentences):
            raise ValueError(f"{len(images)} images but {len(sentences)} sentences")
        was_training = self.training
        self.eval()
        unique, index = _distinct(list(zip(images, sentences)), key=lambda u: (id(u[0]), u[1]))
        out: list[float] = []
        for i in range(0, len(unique), batch_size):
            ims, sents = [u[0] for u in unique[i : i + batch_size]], [u[1] for u in unique[i : i + batch_size]]
            v = self._values_shared_prefix(ims, sents) if share_prefix else None
            if v is None:
                v = self(**self.encode(ims, sents))
            out += v.tolist()
        self.train(was_training)
        return [out[i] for i in index]

    def _values_shared_prefix(self, images: Sequence[Image.Image], sentences: Sequence[str]) -> torch.Tensor | None:
        """`values` for one batch through a per-image prefix KV cache; None when the chat does
        not split into (shared prefix, sentence) tokens, e.g. a tokenizer merging across the
        boundary (the caller then runs the full pass)."""
        if not families.family_of(self.vlm).prefix_cache:
            return None  # positions are not 1-D (M-RoPE): the full pass places them
        tok = self.processor.tokenizer
        chats = [self._chat(s) for s in sentences]
        if not all(s and c.endswith(s) for c, s in zip(chats, sentences)):
            return None
        prefix_text = chats[0][: len(chats[0]) - len(sentences[0])]
        if any(c[: len(c) - len(s)] != prefix_text for c, s in zip(chats, sentences)):
            return None
        prefix_ids = tok(prefix_text, add_special_tokens=False)["input_ids"]
        suffixes = []
        for c in chats:
            ids = tok(c, add_special_tokens=False)["input_ids"]
            if ids[: len(prefix_ids)] != prefix_ids or len(ids) == len(prefix_ids):
                return None
            suffixes.append(ids[len(prefix_ids) :])
        distinct, slots = _distinct(list(images), key=id)
        rows = torch.tensor(slots)
        want_inputs = self._reads_input_states
        # The prefix, once per distinct image.
        penc = families.to_model(families.encode(self.processor, distinct, [prefix_text] * len(distinct)), self.vlm)
        device = penc["input_ids"].device
        rows = rows.to(device)
        pout = self.vlm.model(**penc, use_cache=True, output_hidden_states=want_inputs)
        cache_arg = families.cache_arg(self.vlm.model)
        cache = families.cache_of(pout)
        cache.batch_select_indices(rows)
        p_len = penc["input_ids"].shape[1]
        # The sentences, right-padded so every real token keeps its position after the prefix.
        n = torch.tensor([len(x) for x in suffixes])
        width = int(n.max())
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        ids = torch.full((len(images), width), pad, dtype=torch.long)
        smask = torch.zeros(len(images), width, dtype=torch.long)
        for r, x in enumerate(suffixes):
            ids[r, : len(x)] = torch.tensor(x)
            smask[r, : len(x)] = 1
        ids, smask = ids.to(device), smask.to(device)
        attn = torch.cat([penc["attention_mask"][rows], smask], 1)  # prefixes of other lengths are left padded
        # positions continue from the cache as the model numbers them
        sout = self.vlm.model(
            input_ids=ids, attention_mask=attn, **{cache_arg: cache}, output_hidden_states=want_inputs
        )
        # Join prefix and sentence states and roll each row so its last real token is last, as
        # in `encode`'s left-padded layout; masks follow the same roll.
        h = torch.cat([pout.last_hidden_state[rows], sout.last_hidden_state], 1)
        keys = torch.cat([pout.hidden_states[0][rows], sout.hidden_states[0]], 1) if want_inputs else None
        full_ids = torch.cat([penc["input_ids"][rows], ids], 1)
        # The sentence is its last n tokens, counted as `encode` counts them.
        n_sent = torch.tensor([max(1, len(tok(s, add_special_tokens=False)["input_ids"])) for s in sentences])
        n_sent = torch.minimum(n_sent, n)
        col = torch.arange(width)[None]
        sent_mask = torch.cat(
            [torch.zeros(len(images), p_len), ((col < n[:, None]) & (col >= (n - n_sent)[:, None])).float()], 1
        )
        shifts = (width - n).tolist()

        def roll(x: torch.Tensor) -> torch.Tensor:
            return torch.stack([torch.roll(x[r], s, dims=0) for r, s in enumerate(shifts)])

        # parts=False: the values alone, never the (values, R) pair
        return cast(
            torch.Tensor,
            self._read(
                roll(h),
                roll(sent_mask.to(device)),
                roll(full_ids) == families.image_token_id(self.vlm),
                roll(keys) if keys is not None else None,
            ),
        )

    def save_pretrained(self, folder: str | Path) -> None:
        """The backbone as an ordinary VLM folder, plus the head and the calibration."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.vlm.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        torch.save({k: v for k, v in self.state_dict().items() if not k.startswith("vlm.")}, folder / VALUE_FILE)
        (folder / VALUE_META).write_text(json.dumps(self.meta, indent=1))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> ValueModel:
        from groundloop.models import load_vlm

        folder = Path(folder)
        if not (folder / VALUE_FILE).exists():
            raise FileNotFoundError(f"{folder} is not a value model folder (no {VALUE_FILE})")
        vlm, processor = load_vlm(str(folder))
        model = cls(vlm, processor, json.loads((folder / VALUE_META).read_text())).to(vlm.device)
        state = torch.load(folder / VALUE_FILE, weights_only=True)
        if not any(k.startswith("head.") for k in state):  # folders saved before the reward head: the head alone
            state = {f"head.{k}": v for k, v in state.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("vlm.") for k in missing):
            raise ValueError(
                f"{folder / VALUE_FILE} does not fit the value model its {VALUE_META} describes: "
                f"missing {[k for k in missing if not k.startswith('vlm.')]}, unexpected {unexpected}"
            )
        return model.eval()
