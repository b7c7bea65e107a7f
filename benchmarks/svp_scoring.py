"""SVP scoring with each image's prefixes shared vs one full pass per caption row, side by side.

For each image: K guided captions sampled as SVP's sample stage makes them with
svp.grounding=image (K priors, their phrases' union grounded once, K guided samples under that
one grounded prompt), then S and Delta of the K captions scored two ways, in alternating
repeats on the same captions:
  - full:   one batched teacher-forced forward per prompt over the K rows, each row carrying
            the image and the whole prompt (the scorer before prefix sharing);
  - shared: each prompt (grounded, plain) prefilled once per image, its KV cache serving the K
            captions, which then cost only their own tokens.

    python benchmarks/svp_scoring.py --data data/shapes/val --n 24 --k 8 --repeats 3 \
        --out benchmarks/results/svp_scoring.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from groundloop import prompts, vocab
from groundloop.data.coco import load_dataset, load_image
from groundloop.eval.captioning import ground
from groundloop.models import load_detector, load_vlm
from groundloop.sampling import HFSampler
from groundloop.svp.scoring import score_guided


def guided_captions(
    vlm: str, detector: str, paths: list[str], k: int, seed: int, max_new_tokens: int = 128
) -> list[tuple]:
    model, processor = load_vlm(vlm)
    sampler = HFSampler(model, processor, max_new_tokens=max_new_tokens, seed=seed)
    det, words = load_detector(detector), vocab.get("shapes")
    out = []
    for path in paths:
        image = load_image(path)
        priors = sampler.generate([image], [prompts.BASE_PROMPT], n=k, temperature=0.7, top_p=0.95)[0]
        (grounding,) = ground(det, [image], [priors], words)  # the union of the K priors' phrases
        guided = sampler.generate([image] * k, [prompts.grounded_prompt(grounding)] * k, temperature=0.7, top_p=0.95)
        out.append((image, grounding, [g[0] for g in guided]))
    return out


def time_scoring(model, processor, items, share: bool) -> tuple[float, list[float]]:
    t = time.perf_counter()
    scores: list[float] = []
    for i, (image, grounding, caps) in enumerate(items):
        s, d = score_guided(
            model,
            processor,
            [image] * len(caps),
            [grounding] * len(caps),
            caps,
            keys=[i] * len(caps),
            share_prefix=share,
        )
        scores += s + d
    return time.perf_counter() - t, scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/shapes/val")
    p.add_argument("--vlm", default="shapesworld/vlm")
    p.add_argument("--detector", default="shapesworld/detector")
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-new-tokens", type=int, default=128, help="caption length cap of the sampled captions")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/svp_scoring.json"))
    a = p.parse_args()
    torch.manual_seed(a.seed)
    paths = [str(r.path) for r in load_dataset(Path(a.data))[: a.n]]
    items = guided_captions(a.vlm, a.detector, paths, a.k, a.seed, a.max_new_tokens)
    model, processor = load_vlm(a.vlm)
    n_caps = sum(len(c) for _, _, c in items)
    full_s, shared_s, diff = [], [], 0.0
    for _ in range(a.repeats):  # alternating, so load drifts hit both alike
        t_full, ref = time_scoring(model, processor, items, share=False)
        t_shared, got = time_scoring(model, processor, items, share=True)
        full_s.append(t_full)
        shared_s.append(t_shared)
        diff = max(diff, max(abs(x - y) for x, y in zip(ref, got)))
    ratios = [f / s for f, s in zip(full_s, shared_s)]
    res = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads",
        "command": "python benchmarks/svp_scoring.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items() if k != "out"),
        "n_images": len(items),
        "k": a.k,
        "captions": n_caps,
        "repeats": a.repeats,
        "full_captions_per_s": [n_caps / t for t in full_s],
        "shared_captions_per_s": [n_caps / t for t in shared_s],
        "speedup": ratios,
        "speedup_median": statistics.median(ratios),
        "max_abs_score_difference": diff,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    print(json.dumps({k: res[k] for k in ("captions", "speedup", "speedup_median", "max_abs_score_difference")}))


if __name__ == "__main__":
    main()
