"""Seeded recipe for the shipped ShapesWorld CLIP: contrastive training on (scene, object
sentence) pairs, with one-attribute hard negatives so colour, shape, size and position all
matter to the similarity.

    python -m groundloop.worlds.train_clip --out groundloop/assets/shapesworld/clip
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModelForImageTextToText

from groundloop.models import resolve
from groundloop.worlds import build
from groundloop.worlds import shapes as world

TYPES = world.object_types()
POSITIONS = [p for row in world.POSITIONS for p in row]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n-scenes", type=int, default=20000)
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--batch", type=int, default=96)
    p.add_argument("--hard-negatives", type=int, default=3)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vision-init", default="shapesworld/vlm", help="VLM whose vision tower starts CLIP ('' = random)")
    a = p.parse_args()
    t0 = time.time()
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    scenes = list(world.scenes("train", a.n_scenes, a.seed + 1))
    pixels = np.stack([np.asarray(img) for _, img in scenes])
    tok = build.build_tokenizer(add_eos=True, padding_side="right")
    model, processor = build.build_clip(tok)
    if a.vision_init:
        # The shipped VLM's vision tower already tells shapes apart; starting from it saves
        # most of the (slow) from-scratch ViT learning. Its CLS path is untrained there.
        vlm = AutoModelForImageTextToText.from_pretrained(resolve(a.vision_init))
        model.vision_model.load_state_dict(vlm.model.vision_tower.state_dict())
        print(f"vision tower from {a.vision_init}", flush=True)
    # Auxiliary heads (training only, not shipped): make the image embedding say which
    # colour+shape types are present, where and how big, and the text embedding what its
    # sentence says. Contrastive loss alone learned these far too slowly at this size.
    dim = model.config.projection_dim
    n_types, n_pos = len(world.object_types()), 9
    img_head = torch.nn.Linear(dim, n_types * (1 + n_pos + 2))
    txt_heads = torch.nn.ModuleList(torch.nn.Linear(dim, k) for k in (6, 4, 2, n_pos))
    model.train()
    params = list(model.parameters()) + list(img_head.parameters()) + list(txt_heads.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.05)
    for step in range(a.steps):
        aux_weight = max(0.0, 1.0 - step / (0.7 * a.steps))  # fades out: contrastive has the last word
        idx = [rng.randrange(len(scenes)) for _ in range(a.batch)]
        texts, negs, txt_y = [], [], []
        img_y = torch.zeros(a.batch, n_types * (1 + n_pos + 2))
        for b, i in enumerate(idx):
            objects = scenes[i][0]
            for x in objects:
                t = TYPES.index((x.color, x.shape))
                img_y[b, t] = 1
                img_y[b, n_types + t * n_pos + POSITIONS.index(world.position_words(x))] = 1
                img_y[b, n_types * (1 + n_pos) + t * 2 + world.SIZES.index(x.size)] = 1
            o = rng.choice(objects)
            texts.append(world.object_sentence(o))
            txt_y.append((list(world.COLORS).index(o.color), world.SHAPES.index(o.shape),
                          world.SIZES.index(o.size), POSITIONS.index(world.position_words(o))))
            variants = world.one_attribute_variants(o, objects)
            negs += rng.sample(variants, a.hard_negatives)
        enc = tok(texts + negs, padding=True, return_tensors="pt")
        img_raw = model.get_image_features(pixel_values=build.pixel_values(pixels[idx])).pooler_output
        txt_raw = model.get_text_features(**enc).pooler_output
        img, txt = F.normalize(img_raw, dim=-1), F.normalize(txt_raw, dim=-1)
        ty = torch.tensor(txt_y)
        aux = F.binary_cross_entropy_with_logits(img_head(img_raw), img_y) * 10 + sum(
            F.cross_entropy(h(txt_raw[: a.batch]), ty[:, k]) for k, h in enumerate(txt_heads)) / 4
        scale = model.logit_scale.exp().clamp(max=100)
        logits = scale * img @ txt.T  # (B, B + B*hard): own sentence, other images', hard negatives
        target = torch.arange(a.batch)
        contrastive = F.cross_entropy(logits, target) + F.cross_entropy(logits[:, : a.batch].T, target)
        loss = contrastive + aux_weight * aux
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0:
            print(f"step {step} contrastive {contrastive.item():.3f} aux {aux.item():.3f} "
                  f"{time.time() - t0:.0f}s", flush=True)
    model.eval()
    model.save_pretrained(a.out)
    processor.save_pretrained(a.out)
    print(f"saved to {a.out} after {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
