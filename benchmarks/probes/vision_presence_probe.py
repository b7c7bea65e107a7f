"""Does the VLM's vision tower see which object types are present? A linear probe.

Frozen patch features of the shipped VLM (vision tower output, and after the projector) ->
one linear score per object type and patch, soft max-pooled over patches -> present or not,
trained on one split and measured on another against the annotations. Compare with
benchmarks/probes/vlm_presence_probe.py (the whole VLM fine-tuned to answer the same question in
words): if this probe does well and that one does not, the gap is in the language model's
lookup of a phrase among the image tokens, not in the vision features.

    python benchmarks/probes/vision_presence_probe.py --out benchmarks/results/vision_presence_probe.json

Result: benchmarks/results/vision_presence_probe.json
(docs/history/2026-12-02-genrm-grounded-attention-scaffold-21ee26b.md).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from groundloop.data.coco import load_dataset, load_image
from groundloop.models import load_vlm
from groundloop.worlds import shapes as world

TYPES = [f"{c} {s}" for c, s in world.object_types()]


@torch.no_grad()
def features(model, processor, path: Path, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    records = load_dataset(path.resolve())[:n]
    vis, proj, present = [], [], []
    for i in range(0, len(records), 64):
        rs = records[i : i + 64]
        images = [load_image(str(r.path)) for r in rs]
        px = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
        h = model.model.vision_tower(px).last_hidden_state[:, 1:]  # patches, CLS dropped as the VLM does
        vis.append(h)
        proj.append(model.model.multi_modal_projector(h))
        for r in rs:
            names = {f"{o.attributes['color']} {o.category}" for o in r.objects}
            present.append([t in names for t in TYPES])
    return torch.cat(vis), torch.cat(proj), torch.tensor(present, dtype=torch.float)


def probe(x_train, y_train, x_test, y_test, steps: int) -> dict:
    mu, sd = x_train.mean((0, 1)), x_train.std((0, 1)) + 1e-5
    a, b = (x_train - mu) / sd, (x_test - mu) / sd
    w = torch.zeros(a.shape[-1], len(TYPES), requires_grad=True)
    bias = torch.zeros(len(TYPES), requires_grad=True)
    opt = torch.optim.Adam([w, bias], lr=1e-2)
    offset = math.log(a.shape[1])

    def score(x):  # soft max over patches, scaled so one confident patch is enough
        return (x @ w + bias).logsumexp(1) - offset + 3

    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(score(a), y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = (score(b) > 0).float()
    recall = pred[y_test == 1].mean().item()
    specificity = 1 - pred[y_test == 0].mean().item()
    return {
        "recall_present": recall,
        "specificity_absent": specificity,
        "balanced_accuracy": (recall + specificity) / 2,
        "accuracy": (pred == y_test).float().mean().item(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vlm", default="shapesworld/vlm")
    p.add_argument("--train", type=Path, default=Path("data/genrm_train"))
    p.add_argument("--test", type=Path, default=Path("data/shapes/test"))
    p.add_argument("--n-train", type=int, default=1500)
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model, processor = load_vlm(a.vlm)
    vtr, ptr, ytr = features(model, processor, a.train, a.n_train)
    vte, pte, yte = features(model, processor, a.test, 10**9)
    report = {
        "settings": {k: str(v) for k, v in vars(a).items()},
        "n_test_images": len(yte),
        "vision_tower": probe(vtr, ytr, vte, yte, a.steps),
        "after_projector": probe(ptr, ytr, pte, yte, a.steps),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
