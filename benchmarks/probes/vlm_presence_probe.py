"""Can the VLM learn to verify an object against the image? A fine-tuning probe.

Balanced yes/no questions ("Is there a red circle in the image?"), half about an object
type in the image and half about one that is not, with the truth from the annotations. The
whole VLM is fine-tuned on them; held-out accuracy is read from the Yes/No logits. This is
the skill a value model (ViMaR) and a critique-writing reward model (VL-GenRM) need: judging
a given phrase against the image, not describing the image.

With --attn-weight W, grounded attention (`groundloop.genrm.grounded_attention`) adds W x the
cross-entropy of one head's attention at the phrase's last token against the object's patches
(from the annotations' boxes; the first token for an absent object).

    python benchmarks/probes/vlm_presence_probe.py --steps 1500 --lr 1e-4 \
        --out benchmarks/results/vlm_presence_probe.json
    python benchmarks/probes/vlm_presence_probe.py --steps 1200 --lr 3e-4 --attn-weight 1 \
        --out benchmarks/results/vlm_presence_probe_grounded.json

Results: benchmarks/results/vlm_presence_probe*.json, each named with its settings in
docs/history/2026-12-02-genrm-grounded-attention-scaffold-21ee26b.md.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from groundloop import finetune, prompts
from groundloop.data.coco import load_dataset, load_image
from groundloop.models import load_vlm
from groundloop.worlds import shapes as world


def items(paths: list[Path], rng: random.Random) -> list[tuple[str, str, str, list]]:
    """(image path, phrase, answer, the phrase's normalized xyxy boxes) per question."""
    out = []
    for path in paths:
        for r in load_dataset(path.resolve()):
            boxes: dict[str, list] = {}
            for o in r.objects:
                x, y, w, h = o.bbox
                boxes.setdefault(f"{o.attributes['color']} {o.category}", []).append(
                    (x / r.width, y / r.height, (x + w) / r.width, (y + h) / r.height)
                )
            present = sorted(boxes)
            absent = [f"{c} {s}" for c, s in world.object_types() if f"{c} {s}" not in boxes]
            q = rng.choice(present)
            out.append((str(r.path), q, "Yes.", boxes[q]))
            out.append((str(r.path), rng.choice(absent), "No.", []))
    return out


@torch.no_grad()
def accuracy(model, processor, data, images) -> float:
    model.eval()
    tok = processor.tokenizer
    yes, no = (tok(w, add_special_tokens=False)["input_ids"][0] for w in ("Yes", "No"))
    correct = 0
    for i in range(0, len(data), 32):
        batch = data[i : i + 32]
        ex = [finetune.build_example(processor, images(p), prompts.yes_no_question(q), "") for p, q, *_ in batch]
        for e in ex:  # the prompt alone: drop the EOS target
            e["input_ids"], e["labels"] = e["input_ids"][:-1], e["labels"][:-1]
        enc = finetune.collate(ex, processor)
        last = enc["attention_mask"].sum(1) - 1
        logits = model(**{k: v for k, v in enc.items() if k != "labels"}).logits
        for j, (_, _, ans, _) in enumerate(batch):
            pred = "Yes." if logits[j, last[j], yes] > logits[j, last[j], no] else "No."
            correct += pred == ans
    model.train()
    return correct / len(data)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vlm", default="shapesworld/vlm")
    p.add_argument("--train", type=Path, nargs="+", default=[Path("data/genrm_train")])
    p.add_argument("--test", type=Path, default=Path("data/shapes/test"))
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--attn-weight", type=float, default=0.0, help="grounded attention's weight (0: off)")
    p.add_argument("--attn-layer", type=int, default=1, help="the LM layer whose head is grounded")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--save", type=Path, help="also save the fine-tuned VLM here (e.g. as a reward model's base)")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    train, test = items(a.train, rng), items([a.test], rng)
    rng.shuffle(train)
    model, processor = load_vlm(a.vlm)
    if a.attn_weight > 0:
        model.set_attn_implementation("eager")  # attention weights for the grounded-attention loss
    model.train()
    cache: dict[str, object] = {}

    def images(path: str):
        if path not in cache:
            cache[path] = load_image(path)
        return cache[path]

    opt = torch.optim.AdamW(model.parameters(), lr=a.lr)
    curve = [{"step": 0, "test_accuracy": accuracy(model, processor, test, images)}]
    t = time.time()
    for step in range(1, a.steps + 1):
        batch = [train[(step * a.batch_size + i) % len(train)] for i in range(a.batch_size)]
        ex = [
            finetune.grounded_example(
                processor, images(p), prompts.yes_no_question(q), ans, q, boxes, model.config.image_token_id
            )
            for p, q, ans, boxes in batch
        ]
        loss = finetune.grounded_loss(model, finetune.collate(ex, processor), a.attn_weight, a.attn_layer)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 250 == 0 or step == a.steps:
            curve.append({"step": step, "loss": loss.item(), "test_accuracy": accuracy(model, processor, test, images)})
            print(json.dumps(curve[-1]), flush=True)
    report = {
        "settings": {k: str(v) for k, v in vars(a).items()},
        "n_train": len(train),
        "n_test": len(test),
        "curve": curve,
        "final_test_accuracy": curve[-1]["test_accuracy"],
        "final_train_accuracy": accuracy(model, processor, train[: len(test)], images),
        "train_s": time.time() - t,
    }
    if a.save:
        model.save_pretrained(a.save)
        processor.save_pretrained(a.save)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("final_test_accuracy", "final_train_accuracy", "train_s")}))


if __name__ == "__main__":
    main()
