"""Caption decoders that share one sampler, one value model and one CLIP scorer.

    greedy      the model's own greedy caption
    bon         best of N full captions by mean CLIP sentence similarity
    genrm_bon   best of N full captions by a knockout tournament judged by the generative
                reward model (VL-GenRM): N - 1 pairwise critiques per image
    clip_prm    sentence-by-sentence search, candidates scored by CLIP (a process reward)
    visvm       sentence-by-sentence search, candidates scored by the value model V
    vimar       stage 1: N temperatures x K full captions in one batched pass, keep the one
                with the highest mean V; stage 2: re-sample in place only the sentences whose
                V is below a calibrated threshold (alternatives conditioned on the prefix, best
                by V), then append sentences for overlooked content while V says they are
                worth it. `refine="append"` skips the in-place step (the released code's way).

Every decoder works on a batch of images and batches its model calls across them. A
sentence search step offers the same candidate set (every temperature x K) that ViMaR's stage
1 draws once, so the two spend the same sampling budget per decision. The caption ends when
most of a step's candidates end it (the policy's own vote), or at `max_sentences`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, get_args

from PIL import Image

from groundloop import prompts
from groundloop.genrm import best_of_n as bon
from groundloop.sampling import StepSampler
from groundloop.vimar.similarity import ImageTextScorer
from groundloop.vimar.value import ValueFunction, split_sentences

DECODERS = ("greedy", "bon", "genrm_bon", "clip_prm", "visvm", "vimar")
Refine = Literal["in_place", "append"]  # vimar's stage 2: re-sample weak sentences in place, or only append
REFINES: tuple[str, ...] = get_args(Refine)


class PairwiseJudge(Protocol):
    def prefer(
        self, images: Sequence[Image.Image], questions: Sequence[str], a: Sequence[str], b: Sequence[str]
    ) -> list[float]:
        """P(response a_i is better than b_i) for each (image, question) pair."""
        ...


@dataclass
class Engines:
    """The models a decoder uses, and counters of what it asked of them."""

    sampler: StepSampler
    value: ValueFunction | None = None
    clip: ImageTextScorer | None = None
    judge: PairwiseJudge | None = None
    prompt: str = prompts.BASE_PROMPT
    top_p: float = 1.0
    stats: Counter[str] = field(default_factory=Counter)

    def sample(
        self, images: Sequence[Image.Image], prefixes: Sequence[str], temperatures: Sequence[float], one_sentence: bool
    ) -> list[str]:
        if not images:
            return []
        self.stats["generate_calls"] += 1
        self.stats["generated_sequences"] += len(images)
        return self.sampler.sample(
            images, [self.prompt] * len(images), prefixes, temperatures, self.top_p, one_sentence
        )

    def values(self, images: Sequence[Image.Image], sentences: Sequence[str]) -> list[float]:
        if self.value is None:
            raise ValueError("this decoder needs a value model")
        if not sentences:
            return []
        self.stats["value_calls"] += 1
        self.stats["valued_states"] += len(sentences)
        return self.value.values(images, sentences)

    def clip_scores(self, images: Sequence[Image.Image], sentences: Sequence[str]) -> list[float]:
        if self.clip is None:
            raise ValueError("this decoder needs a CLIP scorer")
        if not sentences:
            return []
        self.stats["clip_calls"] += 1
        self.stats["clip_pairs"] += len(sentences)
        return self.clip.score(list(images), list(sentences))

    def prefer(self, images: Sequence[Image.Image], a: Sequence[str], b: Sequence[str]) -> list[float]:
        if self.judge is None:
            raise ValueError("this decoder needs a reward model")
        if not a:
            return []
        self.stats["judge_calls"] += 1
        self.stats["judged_pairs"] += len(a)
        return self.judge.prefer(images, [self.prompt] * len(a), a, b)


def join(prefix: str, sentence: str) -> str:
    return f"{prefix} {sentence}".strip()


def mean_scores(
    score: Callable[[Sequence[Image.Image], Sequence[str]], list[float]],
    images: Sequence[Image.Image],
    captions: Sequence[str],
) -> list[float]:
    """Mean sentence score per (image, caption), all sentences in one call; -inf if empty."""
    flat_img, flat_sent, owner = [], [], []
    for i, (im, c) in enumerate(zip(images, captions)):
        for s in split_sentences(c):
            flat_img.append(im)
            flat_sent.append(s)
            owner.append(i)
    sums, counts = [0.0] * len(captions), [0] * len(captions)
    for i, v in zip(owner, score(flat_img, flat_sent)):
        sums[i] += v
        counts[i] += 1
    return [s / n if n else float("-inf") for s, n in zip(sums, counts)]


def greedy(eng: Engines, images: Sequence[Image.Image]) -> list[str]:
    return eng.sample(images, [""] * len(images), [0.0] * len(images), one_sentence=False)


def _expand(
    images: Sequence[Image.Image], temperatures: Sequence[float], k: int
) -> tuple[list[tuple[int, float]], int]:
    temps = [t for t in temperatures for _ in range(k)]
    rows = [(b, t) for b in range(len(images)) for t in temps]
    return rows, len(temps)


def best_of_n(eng: Engines, images: Sequence[Image.Image], temperatures: Sequence[float], k: int) -> list[str]:
    """len(temperatures) * k full captions per image, the best by mean CLIP similarity."""
    rows, n = _expand(images, temperatures, k)
    caps = eng.sample([images[b] for b, _ in rows], [""] * len(rows), [t for _, t in rows], False)
    scores = mean_scores(eng.clip_scores, [images[b] for b, _ in rows], caps)
    best = [max(range(b * n, (b + 1) * n), key=lambda r: scores[r]) for b in range(len(images))]
    return [caps[r] for r in best]


def reward_model_best_of_n(
    eng: Engines, images: Sequence[Image.Image], temperatures: Sequence[float], k: int
) -> list[str]:
    """len(temperatures) * k full captions per image, the knockout winner under the reward
    model; every round of every image's tournament is judged in one batched call."""
    rows, n = _expand(images, temperatures, k)
    caps = eng.sample([images[b] for b, _ in rows], [""] * len(rows), [t for _, t in rows], False)
    owner = [b for b, _ in rows]

    def judge(pairs: Sequence[tuple[int, int]]) -> list[float]:
        return eng.prefer(
            [images[owner[i]] for i, _ in pairs], [caps[i] for i, _ in pairs], [caps[j] for _, j in pairs]
        )

    return [caps[w] for w in bon.knockouts([range(b * n, (b + 1) * n) for b in range(len(images))], judge)]


def _best_next(
    eng: Engines,
    images: Sequence[Image.Image],
    prefixes: Sequence[str],
    active: Sequence[int],
    temps: Sequence[float],
    score: Callable[[Sequence[Image.Image], Sequence[str]], list[float]],
) -> dict[int, tuple[str, float] | None]:
    """For each active image: its best next sentence and score, or None when most candidates
    end the caption (or every continuation repeats the caption)."""
    rows = [(b, t) for b in active for t in temps]
    cands = eng.sample(
        [images[b] for b, _ in rows], [prefixes[b] for b, _ in rows], [t for _, t in rows], one_sentence=True
    )
    keep = [(b, c) for (b, _), c in zip(rows, cands) if c and c not in split_sentences(prefixes[b])]
    vals = score([images[b] for b, _ in keep], [c for _, c in keep])
    out: dict[int, tuple[str, float] | None] = {}
    for b in active:
        ended = sum(1 for (rb, _), c in zip(rows, cands) if rb == b and not c)
        options = [(c, v) for (kb, c), v in zip(keep, vals) if kb == b]
        out[b] = None if ended * 2 > len(temps) or not options else max(options, key=lambda o: o[1])
    return out


def sentence_search(
    eng: Engines,
    images: Sequence[Image.Image],
    temperatures: Sequence[float],
    k: int,
    scorer: str,
    max_sentences: int = 12,
) -> list[str]:
    """VisVM (scorer="value") or CLIP-PRM (scorer="clip") step-by-step sentence search."""
    score = eng.values if scorer == "value" else eng.clip_scores
    temps = [t for t in temperatures for _ in range(k)]
    prefixes = [""] * len(images)
    active = list(range(len(images)))
    for _ in range(max_sentences):
        if not active:
            break
        best = _best_next(eng, images, prefixes, active, temps, score)
        for b, choice in best.items():
            if choice is not None:
                prefixes[b] = join(prefixes[b], choice[0])
        active = [b for b in active if best[b] is not None]
    return prefixes


def vimar(
    eng: Engines,
    images: Sequence[Image.Image],
    temperatures: Sequence[float],
    k: int,
    threshold: float,
    refine: str = "in_place",
    refine_temperatures: Sequence[float] = (),
    max_appended: int = 4,
) -> list[str]:
    """ViMaR's two stages (module docstring). threshold: the calibrated value below which a
    sentence is weak; refine_temperatures: one alternative per entry in stage 2 (default: the
    stage-1 temperatures)."""
    if refine not in REFINES:
        raise ValueError(f"refine must be one of {', '.join(REFINES)}, got {refine!r}")
    alt_temps = list(refine_temperatures) or list(temperatures)
    # Stage 1: one batched pass of N x K full captions; keep the highest mean value.
    rows, n = _expand(images, temperatures, k)
    caps = eng.sample([images[b] for b, _ in rows], [""] * len(rows), [t for _, t in rows], False)
    sents = [split_sentences(c) for c in caps]
    flat = [(r, j) for r, ss in enumerate(sents) for j in range(len(ss))]
    flat_vals = eng.values([images[rows[r][0]] for r, _ in flat], [sents[r][j] for r, j in flat])
    vals: list[list[float]] = [[] for _ in caps]
    for (r, _), v in zip(flat, flat_vals):
        vals[r].append(v)
    chosen = [
        max(range(b * n, (b + 1) * n), key=lambda r: sum(vals[r]) / len(vals[r]) if vals[r] else float("-inf"))
        for b in range(len(images))
    ]
    captions = [list(sents[r]) for r in chosen]
    values = [list(vals[r]) for r in chosen]
    # Stage 2a: replace weak sentences in place, all of them in one batched pass.
    if refine == "in_place":
        weak = [(b, j) for b in range(len(images)) for j, v in enumerate(values[b]) if v < threshold]
        wrows = [(b, j, t) for b, j in weak for t in alt_temps]
        alts = eng.sample(
            [images[b] for b, _, _ in wrows],
            [" ".join(captions[b][:j]) for b, j, _ in wrows],
            [t for _, _, t in wrows],
            one_sentence=True,
        )
        keep = [(b, j, a) for (b, j, _), a in zip(wrows, alts) if a and a not in captions[b]]
        avals = eng.values([images[b] for b, _, _ in keep], [a for _, _, a in keep])
        for (b, j, a), v in zip(keep, avals):
            if v > values[b][j]:
                captions[b][j], values[b][j] = a, v
    # Stage 2b: add sentences for overlooked content while V says they are worth it.
    texts = [" ".join(c) for c in captions]
    active = list(range(len(images)))
    for _ in range(max_appended):
        if not active:
            break
        best = _best_next(eng, images, texts, active, alt_temps, eng.values)
        for b, choice in best.items():
            if choice is not None and choice[1] >= threshold:
                texts[b] = join(texts[b], choice[0])
        active = [b for b in active if best[b] is not None and best[b][1] >= threshold]  # type: ignore[index]
    return texts


@dataclass(frozen=True)
class DecodeSettings:
    """What a decoder is asked to spend; the defaults are ViMaR's (paper: T 0.1 to 0.9, K 6)."""

    temperatures: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
    k: int = 6  # candidates per temperature (bon, stage 1, and every sentence-search step)
    threshold: float | None = None  # vimar's weak-sentence value; None: the value model's calibrated one
    refine: Refine = "in_place"  # or "append" (the released ViMaR code)
    refine_temperatures: tuple[float, ...] = ()  # stage-2 alternatives; () = `temperatures`
    max_sentences: int = 12
    max_appended: int = 4


def _refine(value: str) -> str:
    if value not in REFINES:
        raise ValueError(value)
    return value


_SPEC_FIELDS: dict[str, Callable[[str], object]] = {
    "k": int,
    "threshold": float,
    "refine": _refine,
    "max_sentences": int,
    "max_appended": int,
}


def parse_spec(spec: str, base: DecodeSettings) -> tuple[str, DecodeSettings]:
    """A decoder with its own settings: "vimar" or "vimar@k=2,refine=append" -> (name, the base
    settings with those fields replaced), so one run can compare decoders at different budgets."""
    name, _, rest = spec.partition("@")
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r} in {spec!r}; choose from {', '.join(DECODERS)}")
    changes: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in _SPEC_FIELDS:
            raise ValueError(
                f"bad decoder setting {item!r} in {spec!r}: expected key=value with key one of "
                f"{', '.join(_SPEC_FIELDS)}"
            )
        try:
            changes[key] = _SPEC_FIELDS[key](value)
        except ValueError:
            raise ValueError(f"bad value for {key} in {spec!r}: {value!r}") from None
    return name, replace(base, **changes)  # type: ignore[arg-type]


def decode(name: str, eng: Engines, images: Sequence[Image.Image], s: DecodeSettings) -> list[str]:
    """Caption a batch of images with the named decoder."""
    if name == "greedy":
        return greedy(eng, images)
    if name == "bon":
        return best_of_n(eng, images, s.temperatures, s.k)
    if name == "genrm_bon":
        return reward_model_best_of_n(eng, images, s.temperatures, s.k)
    if name in ("clip_prm", "visvm"):
        return sentence_search(
            eng, images, s.temperatures, s.k, "clip" if name == "clip_prm" else "value", s.max_sentences
        )
    if name == "vimar":
        threshold = s.threshold
        if threshold is None:
            threshold = getattr(eng.value, "meta", {}).get("value_threshold")
            if threshold is None:
                raise ValueError("vimar needs a threshold: pass one or use a calibrated value model")
        return vimar(eng, images, s.temperatures, s.k, threshold, s.refine, s.refine_temperatures, s.max_appended)
    raise ValueError(f"unknown decoder {name!r}; choose from {', '.join(DECODERS)}")
