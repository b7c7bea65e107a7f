"""Seeded recipe for the shipped ShapesWorld CLIP.

ShapesWorld has a finite sentence space: every object sentence is "A {size} {colour} {shape}
is at the {position}." (2 x 6 x 4 x 9 = 432 sentences). Each step encodes ALL of them and
trains the image embedding against the whole space at once: for every object of a scene, its
sentence must beat every sentence that is false for the scene (its one-attribute variants
included), and the scene must beat the other scenes of the batch that lack the object (the
usual CLIP direction). Caption-style sentences ("..., below the green cross.") are mixed in
as extra positives so the text tower also scores the VLM's own sentences.

Three changes to the vision tower made the difference (plain in-batch contrastive training
with a few hard negatives stayed near chance on the one-attribute ranking: top-1 0.15):
  - loud 2-D position codes: the VLM's tower, which starts CLIP, had let its position
    embeddings shrink to ~2% of the patch embeddings' norm (its LM knows positions from
    token order), so nothing in a patch said where it was;
  - a training-only per-patch head: each patch names the object sentence it belongs to;
  - the last layer attends uniformly (a mean over tokens), so the CLS embedding is a sum of
    what the patches say: a set code holding every object of the scene at once.

The shipped weights: 3500 steps as below, then three continuations on fresh scenes at lower
rates, the last two on scenes with the deployment (val) co-occurrence prior
(scripts/rebuild_models.sh has the exact commands):

    python -m recipes.worlds.train_clip --out /tmp/clip_phase1
    python -m recipes.worlds.train_clip --init /tmp/clip_phase1 --steps 2000 --lr 3e-4 --seed 3 \
        --out /tmp/clip_phase2
    python -m recipes.worlds.train_clip --init /tmp/clip_phase2 --steps 1500 --lr 2e-4 --seed 5 --split val \
        --out /tmp/clip_phase3
    python -m recipes.worlds.train_clip --init /tmp/clip_phase3 --steps 1500 --lr 1e-4 --seed 11 --split val \
        --out groundloop/assets/shapesworld/clip
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoModelForImageTextToText, CLIPVisionConfig

from groundloop.models import resolve
from groundloop.worlds import build
from groundloop.worlds import shapes as world

POSITIONS = [p for row in world.POSITIONS for p in row]
SENTENCES = [
    f"A {z} {c} {s} is at the {p}." for z in world.SIZES for c in world.COLORS for s in world.SHAPES for p in POSITIONS
]
SENTENCE_ID = {s: i for i, s in enumerate(SENTENCES)}


def caption_sentences(objects: list[world.SceneObject]) -> dict[str, str]:
    """object sentence -> the caption's sentence about that object (with its relation)."""
    out = {}
    for sent in re.split(r"(?<=\.) ", world.caption(objects))[1:]:
        head = re.match(r"A (\w+) (\w+) (\w+) is at the ([a-z ]+?)[,.]", sent)
        if head:
            out["A {} {} {} is at the {}.".format(*head.groups())] = sent
    return out


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """(grid*grid, dim) unit-norm 2-D sine/cosine position codes, row-major."""
    q = dim // 4
    freqs = 1.0 / (4.0 ** (torch.arange(q) / q))  # periods from ~6 grid cells down
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    parts = []
    for coord in (ys.flatten(), xs.flatten()):
        ang = coord[:, None].float() * freqs[None] * torch.pi / 2
        parts += [ang.sin(), ang.cos()]
    code = torch.cat(parts, -1)
    return cast(torch.Tensor, code / code.norm(dim=-1, keepdim=True))  # Tensor.norm is unannotated


@torch.no_grad()
def ranking_accuracy(
    model: Any,
    tok: Any,
    pixels: np.ndarray,
    scenes: Sequence[tuple[list[world.SceneObject], Image.Image]],
    rng: random.Random,
) -> float:
    """The benchmark's measure (benchmarks/clip_ranking.py): true sentence vs 9 variants."""
    model.eval()
    img = F.normalize(model.get_image_features(pixel_values=build.pixel_values(pixels)).pooler_output, dim=-1)
    hits = n = 0
    for b, (objects, _) in enumerate(scenes):
        for o in objects:
            cands = [world.object_sentence(o)] + rng.sample(world.one_attribute_variants(o, objects), 9)
            enc = tok(cands, padding=True, return_tensors="pt")
            txt = F.normalize(model.get_text_features(**enc).pooler_output, dim=-1)
            hits += int((txt @ img[b]).argmax()) == 0
            n += 1
    model.train()
    return hits / n


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n-scenes", type=int, default=20000)
    p.add_argument("--steps", type=int, default=3500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--caption-weight", type=float, default=0.5)
    p.add_argument("--patch-weight", type=float, default=1.0)
    p.add_argument("--mean-pool-last", type=int, default=1)
    p.add_argument("--position-scale", type=float, default=15.0, help="norm of the 2-D position code (0 = keep)")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--split",
        default="train",
        choices=sorted(world.PAIR_PROB),
        help="which split's co-occurrence prior the training scenes follow",
    )
    p.add_argument("--n-eval", type=int, default=60, help="scenes in the in-loop ranking check")
    p.add_argument("--init", default="", help="continue from this CLIP folder (skips the tower set-up below)")
    p.add_argument("--vision-init", default="shapesworld/vlm", help="VLM whose vision tower starts CLIP ('' = random)")
    a = p.parse_args()
    t0 = time.time()
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    scenes = list(world.scenes(a.split, a.n_scenes, a.seed + 1))
    pixels = np.stack([np.asarray(img) for _, img in scenes])
    val = list(world.scenes("val", a.n_eval, a.seed + 2))  # in-loop check only; benchmarks use fresh seeds
    val_pixels = np.stack([np.asarray(img) for _, img in val])
    tok = build.build_tokenizer(add_eos=True, padding_side="right")
    model, processor = build.build_clip(tok)
    if a.init:
        from transformers import CLIPModel

        model = CLIPModel.from_pretrained(resolve(a.init))
        a.vision_init, a.position_scale, a.mean_pool_last = "", 0.0, 0  # already set up
        print(f"continuing from {a.init}", flush=True)
    if a.vision_init:
        # The shipped VLM's vision tower already tells shapes apart patch by patch; starting
        # from it saves most of the slow from-scratch ViT learning. Its CLS path is untrained.
        vlm = AutoModelForImageTextToText.from_pretrained(resolve(a.vision_init))
        model.vision_model.load_state_dict(vlm.model.vision_tower.state_dict())
        print(f"vision tower from {a.vision_init}", flush=True)
    if a.position_scale:
        # Where a patch is must be loud in its state: the VLM's tower let its learned position
        # embeddings shrink to ~2% of the patch embeddings' norm (the LM knows positions from
        # token order), and the CLS token cannot pool "red circle AT THE LEFT" without them.
        emb = model.vision_model.embeddings
        with torch.no_grad():
            emb.position_embedding.weight[1:] = a.position_scale * sincos_2d(
                int(emb.num_patches**0.5), emb.position_embedding.embedding_dim
            )
    all_sentences = tok(SENTENCES, padding=True, return_tensors="pt")
    if a.mean_pool_last:
        # The last layer's attention becomes a plain mean over tokens (query and key zeroed,
        # so both stay zero under training): the CLS embedding is then a sum over patches of
        # what they say, a set code that holds every object of the scene at once.
        last = model.vision_model.encoder.layers[-1].self_attn
        for proj in (last.q_proj, last.k_proj):
            torch.nn.init.zeros_(proj.weight)
            torch.nn.init.zeros_(proj.bias)
    # Training-only head (not shipped): every patch says which object sentence it belongs to,
    # so patch states carry the (size, colour, shape, position) conjunction the CLS token pools.
    vision_config = model.config.vision_config
    assert isinstance(vision_config, CLIPVisionConfig)  # CLIPConfig builds it from a dict
    patch_head = torch.nn.Linear(vision_config.hidden_size, 1 + len(SENTENCES))
    patch_cache: dict[int, torch.Tensor] = {}

    def patch_targets(i: int) -> torch.Tensor:
        if i not in patch_cache:
            objects = scenes[i][0]
            ids = np.array([0] + [1 + SENTENCE_ID[world.object_sentence(o)] for o in objects])
            patch_cache[i] = torch.from_numpy(ids[world.patch_labels(objects, build.PATCH, instances=True)])
        return patch_cache[i]

    params = list(model.parameters()) + list(patch_head.parameters())
    model.train()
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.05)
    for step in range(a.steps):
        idx = [rng.randrange(len(scenes)) for _ in range(a.batch)]
        present = torch.zeros(a.batch, len(SENTENCES), dtype=torch.bool)
        pairs, cap_texts = [], []  # (image in batch, sentence id) for every object
        for b, i in enumerate(idx):
            objects = scenes[i][0]
            caps = caption_sentences(objects)
            for o in objects:
                sid = SENTENCE_ID[world.object_sentence(o)]
                present[b, sid] = True
                pairs.append((b, sid))
            o = rng.choice(objects)
            cap_texts.append(caps.get(world.object_sentence(o), world.object_sentence(o)))
        vis = model.vision_model(pixel_values=build.pixel_values(pixels[idx]), output_hidden_states=True)
        img = F.normalize(model.visual_projection(vis.pooler_output), dim=-1)
        txt = F.normalize(model.get_text_features(**all_sentences).pooler_output, dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        sims = scale * img @ txt.T  # (B, 432)
        rows = torch.tensor([b for b, _ in pairs])
        cols = torch.tensor([s for _, s in pairs])
        # Image -> sentences: own sentence vs every sentence false for the scene.
        logits = sims[rows].masked_fill(present[rows], float("-inf"))
        logits[torch.arange(len(pairs)), cols] = sims[rows, cols]
        i2t = F.cross_entropy(logits, cols)
        # Sentence -> images: the scene vs the batch's scenes that lack the object.
        logits = sims[:, cols].T.masked_fill(present[:, cols].T, float("-inf"))
        logits[torch.arange(len(pairs)), rows] = sims[rows, cols]
        t2i = F.cross_entropy(logits, rows)
        loss = i2t + t2i
        if a.patch_weight:
            patch_logits = patch_head(vis.hidden_states[-2][:, 1:])  # what the last layer pools
            targets = torch.stack([patch_targets(i) for i in idx])
            patch_loss = F.cross_entropy(patch_logits.flatten(0, 1), targets.flatten())
            loss = loss + a.patch_weight * patch_loss
        if a.caption_weight:
            # Caption sentences (with relations) embed close to their scene, in-batch contrastive.
            enc = tok(cap_texts, padding=True, truncation=True, return_tensors="pt")
            cap = F.normalize(model.get_text_features(**enc).pooler_output, dim=-1)
            cl = scale * img @ cap.T
            target = torch.arange(a.batch)
            loss = loss + a.caption_weight * (F.cross_entropy(cl, target) + F.cross_entropy(cl.T, target)) / 2
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward is unannotated
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0:
            print(
                f"step {step} i2t {i2t.item():.3f} t2i {t2i.item():.3f} loss {loss.item():.3f} "
                f"patch {patch_loss.item() if a.patch_weight else 0:.3f} {time.time() - t0:.0f}s",
                flush=True,
            )
        if a.eval_every and (step + 1) % a.eval_every == 0:
            acc = ranking_accuracy(model, tok, val_pixels, val, random.Random(0))
            print(f"step {step + 1} val top-1 among true + 9 variants: {acc:.3f}", flush=True)
    model.eval()  # type: ignore[no-untyped-call]  # untyped in transformers
    model.save_pretrained(a.out)
    processor.save_pretrained(a.out)
    print(f"saved to {a.out} after {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
