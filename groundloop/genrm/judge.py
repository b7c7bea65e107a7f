"""The generative reward model on a transformers VLM: training examples, the mixture-loss
forward, and judging (critique generation + verdict log-probabilities).

A judgement is the chat: user = image + `judge_prompt(question, A, B)`, assistant =
"<critique> Verdict: <label>". The verdict label is one token after the prefix
"<critique> Verdict: ", so both verdicts' log-probabilities come out of one forward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from PIL import Image

from groundloop import finetune
from groundloop.genrm import critique, losses
from groundloop.genrm import grounded_attention as ga
from groundloop.models import families
from groundloop.vocab import Vocabulary


def label_ids(tokenizer: Any) -> list[int]:
    """The token id of each verdict label; the labels must be single tokens."""
    ids = [tokenizer(label, add_special_tokens=False)["input_ids"] for label in critique.LABELS]
    if any(len(i) != 1 for i in ids):
        raise ValueError(f"verdict labels {critique.LABELS} are not single tokens for this tokenizer: {ids}")
    return [i[0] for i in ids]


def check_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """How a check is written in tokens: the ids " yes" and " no" share (e.g. the space) and
    the first ids that tell them apart, [yes, no] (a small vocabulary spells both in pieces)."""
    yes, no = (tokenizer(f" {w}", add_special_tokens=False)["input_ids"] for w in ("yes", "no"))
    k = next(i for i, (y, n) in enumerate(zip(yes, no)) if y != n)
    return yes[:k], [yes[k], no[k]]


def answer_ids(tokenizer: Any) -> list[int]:
    """The ids that decide a yes/no question's answer: the first tokens of "Yes." and "No."."""
    yes, no = (tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("Yes.", "No."))
    if yes == no:
        raise ValueError("'Yes.' and 'No.' start with the same token for this tokenizer")
    return [yes, no]


def _prompt_row(processor: Any, image: Image.Image, text: str) -> families.Row:
    return families.row(processor, image, families.chat(processor, text))


def _thought_ids(tokenizer: Any, thought: str) -> list[int]:
    return cast(list[int], tokenizer(f"{thought} {critique.VERDICT} ".lstrip(), add_special_tokens=False)["input_ids"])


def _pad_id(tokenizer: Any, end: Sequence[int]) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end[-1]


LEARN = ("all", "checks", "verdict")


def example(
    processor: Any,
    image: Image.Image,
    judge_text: str,
    thought: str,
    label: str,
    weight: float = 1.0,
    grounding: Sequence[tuple[str, Sequence[Any]]] = (),
    image_token_id: int | None = None,
    learn: str = "all",
    no_weight: float = 1.0,
) -> dict[str, Any]:
    """Token ids of prompt + thought + verdict + EOS; labels -100 on the prompt; `verdict_at`:
    the index of the verdict token; `correct`: 0 for A, 1 for B. With `grounding` (each claim
    the thought checks, in order, with the expert's boxes for it), also the grounded-attention
    queries (`groundloop.genrm.grounded_attention`): `attn_query`, each claim's last token in the
    thought, and `attn_target`, its patches (or the first token when the expert found none).
    learn="checks" (for scaffolded critiques, whose claim text the judge is given): only the
    "yes"/"no" checks, the verdict and EOS are learned; `loss_weight` puts `no_weight` on each
    "no" check (false claims are a small minority of the checks). learn="verdict" (for
    factored critiques, whose checks are answered outside the judgement): the verdict and EOS."""
    if learn not in LEARN:
        raise ValueError(f"learn must be one of {LEARN}, got {learn!r}")
    tok = processor.tokenizer
    row = _prompt_row(processor, image, judge_text)
    p = row.ids
    t = _thought_ids(tok, thought)
    v = label_ids(tok)[critique.LABELS.index(label)]
    ids = p + t + [v, families.end_id(processor)]
    labels = [-100] * len(p) + ids[len(p) :]
    # the token that decides each check: the first of " yes" / " no" that differs
    prefix, (yes_id, no_id) = check_tokens(tok)
    n = len(prefix)
    decides = {i for i in range(len(p) + n, len(p) + len(t)) if ids[i] in (yes_id, no_id) and ids[i - n : i] == prefix}
    if learn != "all":
        labels = [
            x if i >= len(p) + len(t) or (learn == "checks" and i in decides) else -100 for i, x in enumerate(labels)
        ]
    ex = {
        "row": row,
        "input_ids": ids,
        "labels": labels,
        "verdict_at": len(p) + len(t),
        "correct": critique.LABELS.index(label),
        "weight": weight,
        "loss_weight": [no_weight if i in decides and x == no_id else 1.0 for i, x in enumerate(ids)],
    }
    if grounding:
        if image_token_id is None:
            raise ValueError("grounding needs the model's image_token_id")
        families.require_one_grid(processor)
        start, grid = ga.image_grid(p, image_token_id)
        phrases = [tok(f" {phrase}", add_special_tokens=False)["input_ids"] for phrase, _ in grounding]
        ex["attn_query"] = ga.phrase_ends(ids[: len(p) + len(t)], phrases, start=len(p))
        ex["attn_target"] = [ga.target(len(ids), start, ga.box_patches(boxes, grid)) for _, boxes in grounding]
    return ex


def collate(examples: Sequence[dict[str, Any]], processor: Any) -> dict[str, torch.Tensor]:
    """`finetune.collate`'s right-padded batch (with any grounded-attention queries) plus each
    example's token loss weights, verdict position, correct label index and BT weight."""
    return finetune.collate(list(examples), processor) | {
        "loss_weight": torch.nn.utils.rnn.pad_sequence(
            [torch.tensor(e.get("loss_weight", [1.0] * len(e["input_ids"]))) for e in examples], batch_first=True
        ),
        "verdict_at": torch.tensor([e["verdict_at"] for e in examples]),
        "correct": torch.tensor([e["correct"] for e in examples]),
        "weight": torch.tensor([float(e["weight"]) for e in examples]),
    }


def loss(
    model: Any,
    batch: dict[str, torch.Tensor],
    verdict_ids: Sequence[int],
    lam: float,
    attn_weight: float = 0.0,
    attn_layer: int = 1,
    attn_head: int = 0,
) -> torch.Tensor:
    """`losses.mixture_loss` of a collated batch (right padded), plus `attn_weight` x grounded
    attention's cross-entropy at the critique's claims when the batch carries them (the model
    must then run eager attention)."""
    grounded = attn_weight > 0 and "attn_query" in batch
    batch = families.to_model(batch, model)
    out = model(**finetune.model_inputs(batch), output_attentions=grounded)
    extra = (
        attn_weight
        * finetune.attention_term(
            out, attn_layer, attn_head, batch["attn_query"], batch["attn_target"], batch["attn_row"]
        )
        if grounded
        else 0.0
    )
    logits = out.logits.float()
    logp = logits[:, :-1].float().log_softmax(-1)
    target = batch["labels"][:, 1:]
    mask = (target != -100).float()
    if "loss_weight" in batch:
        mask = mask * batch["loss_weight"][:, 1:]
    token_logp = logp.gather(-1, target.clamp(min=0)[..., None]).squeeze(-1)
    rows = torch.arange(len(target))
    verdict = logp[rows, batch["verdict_at"] - 1][:, list(verdict_ids)]  # (B, 2)
    right = verdict[rows, batch["correct"]]
    wrong = verdict[rows, 1 - batch["correct"]]
    return losses.mixture_loss(token_logp, mask, right, wrong, batch["weight"], lam) + extra


@dataclass(frozen=True)
class Judgement:
    text: str  # what the model wrote
    thought: str  # the critique before the verdict
    verdict: str | None  # the written verdict, None when malformed
    logp_a: float  # log p(verdict A | thought); the preference is sigmoid(logp_a - logp_b)
    logp_b: float

    @property
    def p_a(self) -> float:
        return float(losses.preference(torch.tensor(self.logp_a), torch.tensor(self.logp_b)))


CRITIQUES = ("free", "scaffold", "factored")


class GenRM:
    """A VLM (with its reward-model adapter) that judges pairs of responses.

    How the critique is written (`critique`):
      free      the model writes the whole critique.
      scaffold  the claims to check are read off the two responses by `vocab.claims` (text
                parsing, no vision), and the model writes every check ("yes" / "no", greedy or
                sampled between the two) inside the judgement, then the verdict.
      factored  the same claims, but each check is the model's answer to the claim's own
                yes/no question about the image (`vocab.check_question`), asked with neither
                response in sight (the factored checks of Chain-of-Verification): a claim both
                responses make gets one answer, and a check cannot copy the response's
                confidence. The answers are written into the critique and the model, in the
                full judgement, writes the verdict. The questions are answered by the base
                VLM (stage 0 trains it on the expert's answers to exactly these questions);
                the adapter is switched off for them, so it only learns to judge.
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        max_new_tokens: int = 200,
        seed: int | None = None,
        critique: str = "free",
        check_threshold: float = 0.0,
        vocab: Vocabulary | None = None,
    ) -> None:
        if critique not in CRITIQUES:
            raise ValueError(f"critique must be one of {CRITIQUES}, got {critique!r}")
        if critique != "free" and vocab is None:
            raise ValueError(f"critique {critique!r} reads claims off the responses: it needs a vocabulary")
        self.vocab = vocab
        self.model = model.eval()
        self.processor = processor
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.critique = critique
        self.verdict_ids = label_ids(processor.tokenizer)
        self.check_prefix, self.check_ids = check_tokens(processor.tokenizer)
        self.answer_ids = answer_ids(processor.tokenizer)
        self.check_threshold = check_threshold  # factored checks: "yes" when the margin reaches it

    @torch.no_grad()
    def verdict_logps(
        self, images: Sequence[Image.Image], judge_texts: Sequence[str], thoughts: Sequence[str]
    ) -> torch.Tensor:
        """(N, 2) log-probs of verdicts A and B after each thought (one forward, left padded)."""
        tok = self.processor.tokenizer
        rows = [_prompt_row(self.processor, im, jt) for im, jt in zip(images, judge_texts)]
        return (
            self.next_logits(rows, [_thought_ids(tok, th) for th in thoughts])
            .float()
            .log_softmax(-1)[:, self.verdict_ids]
        )

    @torch.no_grad()
    def scaffolded(
        self,
        images: Sequence[Image.Image],
        judge_texts: Sequence[str],
        a: Sequence[str],
        b: Sequence[str],
        temperature: float = 0.0,
    ) -> list[str]:
        """Critiques written slot by slot (`critique.critique_so_far`): one batched forward per claim
        position, each open slot filled with "yes" or "no" by the model."""
        if self.seed is not None:
            torch.manual_seed(self.seed)
        tok = self.processor.tokenizer
        claims = [[self.claim_texts(x) for x in pair] for pair in zip(a, b)]
        rows = [_prompt_row(self.processor, im, jt) for im, jt in zip(images, judge_texts)]
        checks: list[list[bool]] = [[] for _ in claims]
        while True:
            open_ = [i for i, c in enumerate(claims) if len(checks[i]) < sum(map(len, c))]
            if not open_:
                break
            written = [
                tok(critique.critique_so_far(claims[i], checks[i]), add_special_tokens=False)["input_ids"]
                + self.check_prefix
                for i in open_
            ]
            logits = self.next_logits([rows[i] for i in open_], written)[:, self.check_ids]
            if temperature > 0:
                says_yes = torch.bernoulli(torch.softmax(logits / temperature, -1)[:, 0]).bool()
            else:
                says_yes = logits[:, 0] >= logits[:, 1]
            for i, y in zip(open_, says_yes.tolist()):
                checks[i].append(bool(y))
        return [critique.critique_so_far(c, ch) for c, ch in zip(claims, checks)]

    @property
    def _vocab(self) -> Vocabulary:
        if self.vocab is None:
            raise ValueError("reading claims needs a vocabulary (GenRM(vocab=...))")
        return self.vocab

    def claim_texts(self, response: str) -> list[str]:
        return [c.text for c in self._vocab.claims(response)]

    @contextlib.contextmanager
    def _base_model(self) -> Iterator[None]:
        """The VLM without the reward-model adapter (a no-op for a model without one)."""
        if hasattr(self.model, "disable_adapter"):
            with self.model.disable_adapter():
                yield
        else:
            yield

    @torch.no_grad()
    def check_margins(self, images: Sequence[Image.Image], claims: Sequence[str], batch_size: int = 64) -> list[float]:
        """The base VLM's logit of "Yes" minus "No" for each claim's yes/no question about its image."""
        out: list[float] = []
        with self._base_model():
            for s in range(0, len(claims), batch_size):
                ims = list(images[s : s + batch_size])
                rows = [
                    _prompt_row(self.processor, im, self._vocab.check_question(c))
                    for im, c in zip(ims, claims[s : s + batch_size])
                ]
                logits = self.next_logits(rows)[:, self.answer_ids]
                out += (logits[:, 0] - logits[:, 1]).tolist()
        return out

    def check(self, images: Sequence[Image.Image], claims: Sequence[str], temperature: float = 0.0) -> list[bool]:
        """Factored checks: "yes" when the margin reaches `check_threshold` (calibrated on
        training pairs, `critique.calibrate_check_threshold`), or drawn with probability
        sigmoid((margin - threshold) / temperature)."""
        m = torch.tensor(self.check_margins(images, claims)) - self.check_threshold
        if temperature > 0:
            return torch.bernoulli(torch.sigmoid(m / temperature)).bool().tolist()
        return (m >= 0).tolist()

    def factored(
        self, images: Sequence[Image.Image], a: Sequence[str], b: Sequence[str], temperature: float = 0.0
    ) -> list[str]:
        """Critiques from factored checks: every distinct (image, claim) is asked once."""
        if self.seed is not None:
            torch.manual_seed(self.seed)
        claims = [[self.claim_texts(x) for x in pair] for pair in zip(a, b)]
        asked = list(dict.fromkeys((i, t) for i, c in enumerate(claims) for side in c for t in side))
        answers = dict(zip(asked, self.check([images[i] for i, _ in asked], [t for _, t in asked], temperature)))
        return [critique.critique_so_far(c, [answers[i, t] for side in c for t in side]) for i, c in enumerate(claims)]

    def next_logits(self, rows: Sequence[families.Row], answers: Sequence[list[int]] | None = None) -> torch.Tensor:
        """(N, V) next-token logits after each prompt row and its answer tokens so far (one
        forward, left padded)."""
        enc = families.batch(self.processor, rows, answers, side="left")
        return cast(torch.Tensor, self.model(**families.to_model(enc, self.model)).logits[:, -1].float().cpu())

    @torch.no_grad()
    def write(
        self, images: Sequence[Image.Image], judge_texts: Sequence[str], temperature: float = 0.0, top_p: float = 1.0
    ) -> list[str]:
        """Generated judgements (critique and verdict), greedy at temperature 0."""
        if self.seed is not None:
            torch.manual_seed(self.seed)
        enc = families.to_model(families.prompts_batch(self.processor, images, judge_texts, side="left"), self.model)
        sample = temperature > 0
        end = families.end_ids(self.processor)
        out = self.model.generate(
            **enc,
            max_new_tokens=self.max_new_tokens,
            do_sample=sample,
            temperature=temperature if sample else None,
            top_p=top_p if sample else None,
            eos_token_id=end,
            pad_token_id=_pad_id(self.processor.tokenizer, end),
        )
        return [
            t.strip()
            for t in self.processor.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        ]

    def judge(
        self,
        images: Sequence[Image.Image],
        questions: Sequence[str],
        a: Sequence[str],
        b: Sequence[str],
        temperature: float = 0.0,
        batch_size: int = 32,
    ) -> list[Judgement]:
        """One judgement per (image, question, A, B): the written critique, then the verdict's
        log-probabilities after it."""
        if not len(images) == len(questions) == len(a) == len(b):
            raise ValueError("images, questions, a and b must have one entry per pair")
        out: list[Judgement] = []
        for s in range(0, len(images), batch_size):
            ims = list(images[s : s + batch_size])
            texts = [
                critique.judge_prompt(q, x, y)
                for q, x, y in zip(questions[s : s + batch_size], a[s : s + batch_size], b[s : s + batch_size])
            ]
            if self.critique == "scaffold":
                thoughts = self.scaffolded(ims, texts, a[s : s + batch_size], b[s : s + batch_size], temperature)
            elif self.critique == "factored":
                thoughts = self.factored(ims, a[s : s + batch_size], b[s : s + batch_size], temperature)
            else:
                written = self.write(ims, texts, temperature)
                thoughts = [critique.thought_of(w) for w in written]
            lp = self.verdict_logps(ims, texts, thoughts)
            if self.critique != "free":  # the verdict the model writes: the likelier label
                written = [
                    critique.with_verdict(th, critique.LABELS[int(y > x)]) for th, (x, y) in zip(thoughts, lp.tolist())
                ]
            out += [
                Judgement(w, th, critique.parse_verdict(w), float(x), float(y))
                for w, th, (x, y) in zip(written, thoughts, lp.tolist())
            ]
        return out

    def prefer(
        self, images: Sequence[Image.Image], questions: Sequence[str], a: Sequence[str], b: Sequence[str]
    ) -> list[float]:
        """P(A better than B) per pair, from greedy critiques."""
        return [j.p_a for j in self.judge(images, questions, a, b)]
