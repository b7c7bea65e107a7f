"""Do a reward model's factored checks catch what the VLM itself hallucinates?

RewardBench's `hallucination` pairs add an object type that is not in the image, chosen at
random: a claim the VLM would rarely make. The bootstrapping dilemma is about the other kind,
the false claims the VLM makes habitually. This benchmark scores both kinds of claim with each
reward model's checker (`GenRM.check_margins`, the stage-0 VLM's Yes-minus-No margin), truth
from the annotations:

  own      every distinct claim of k captions the VLM samples per test image
  random   per image, one object type in it and one (colour, shape) type not in it

For each it reports the AUC of the margin (false claims below true ones), and at the model's
calibrated threshold the share of false claims refuted and of true claims wrongly refuted.

    python benchmarks/genrm_checker.py --reward-models shapesworld/genrm runs/genrm_self/round0/adapter \
        --out benchmarks/results/genrm/checker.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from groundloop import prompts
from groundloop.data.coco import load_dataset
from groundloop.eval import captioning
from groundloop.models import load_reward_model, load_vlm
from groundloop.sampling import HFSampler
from groundloop.vocab.shapes import ShapesVocabulary
from groundloop.worlds import shapes as world
from groundloop.worlds.reward_bench import claim_truth

SHAPES = ShapesVocabulary()


def auc(false: list[float], true: list[float]) -> float | None:
    """P(a false claim's margin < a true claim's), ties counting a half."""
    if not false or not true:
        return None
    t = torch.tensor(true)
    return sum(((t > f).double().mean() + 0.5 * (t == f).double().mean()).item() for f in false) / len(false)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reward-models", nargs="+", required=True)
    p.add_argument("--vlm", default="shapesworld/vlm", help="the VLM whose own claims are checked")
    p.add_argument("--data", type=Path, default=Path("data/shapes/test"))
    p.add_argument("--n-images", type=int, default=100)
    p.add_argument("--k", type=int, default=6)
    p.add_argument("--temperature", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    ok, _ = captioning.load_images(load_dataset(a.data.resolve())[: a.n_images])
    records, images = [r for r, _ in ok], [im for _, im in ok]
    sampler = HFSampler(*load_vlm(a.vlm), max_new_tokens=128, seed=a.seed)
    caps: list[list[str]] = []
    for i in range(0, len(images), 8):
        caps += sampler.generate(
            images[i : i + 8],
            [prompts.BASE_PROMPT] * len(images[i : i + 8]),
            n=a.k,
            temperature=a.temperature,
            top_p=0.95,
        )
    sets: dict[str, dict[tuple[int, str], bool]] = {"own": {}, "random": {}}
    for b, (r, cs) in enumerate(zip(records, caps)):
        for c in cs:
            sets["own"].update({(b, cl.text): t for cl, t in zip(SHAPES.claims(c), claim_truth(r.objects, c))})
        present = sorted({f"{o.attributes['color']} {o.category}" for o in r.objects})
        absent = [f"{c} {s}" for c, s in world.object_types() if f"{c} {s}" not in present]
        sets["random"].update({(b, rng.choice(present)): True, (b, rng.choice(absent)): False})
    report: dict = {
        "settings": vars(a) | {"data": str(a.data), "out": str(a.out)},
        "claims": {k: {"n": len(v), "false": sum(not t for t in v.values())} for k, v in sets.items()},
        "models": {},
    }
    for spec in a.reward_models:
        judge = load_reward_model(spec, critique="factored")
        t0, res = time.time(), {"check_threshold": judge.check_threshold}
        for name, claims in sets.items():
            keys = list(claims)
            m = judge.check_margins([images[b] for b, _ in keys], [c for _, c in keys])
            false = [x for x, k in zip(m, keys) if not claims[k]]
            true = [x for x, k in zip(m, keys) if claims[k]]
            res[name] = {
                "auc": auc(false, true),
                "false_refuted": sum(x < judge.check_threshold for x in false) / max(1, len(false)),
                "true_refuted": sum(x < judge.check_threshold for x in true) / max(1, len(true)),
            }
        res["seconds"] = time.time() - t0
        report["models"][spec] = res
        print(spec, json.dumps(res), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
