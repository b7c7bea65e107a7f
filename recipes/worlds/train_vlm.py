"""Seeded recipe for the shipped ShapesWorld VLM (LLaVA architecture, trained from scratch).

Everything starts random (`--clip` can start the vision tower from a CLIP instead, as
LLaVA does). One training example is one of:
  - plain captioning: base prompt -> the SVP-style caption;
  - grounded captioning: `<context> detector output </context>` + base prompt -> caption.
    The context is what SVP's grounding step would produce: the real detector run on the
    phrases of an imperfect prior caption (most true objects, some hallucinated ones), so it
    carries the detector's own misses plus injected false alarms;
  - yes/no object questions (half about absent objects, often a co-occurrence partner).

    python -m recipes.worlds.train_vlm --out groundloop/assets/shapesworld/vlm
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import AutoProcessor, CLIPModel, LlavaForConditionalGeneration, PreTrainedConfig

from groundloop import prompts
from groundloop.models import resolve
from groundloop.models.detection import Detection
from groundloop.svp.grounding import grounding_text
from groundloop.worlds import build
from groundloop.worlds import shapes as world
from groundloop.worlds.detector import Region, ShapesWorldDetector


class ExampleMaker:
    """Turns a scene into (prompt ids, target ids) for one of the three tasks."""

    def __init__(
        self,
        processor: Any,
        detector: ShapesWorldDetector,
        rng: random.Random,
        p_keep: float = 0.85,
        p_hallucinated: float = 0.5,
        p_false_alarm: float = 0.1,
    ) -> None:
        self.tok = processor.tokenizer
        self.processor = processor
        self.detector = detector
        self.rng = rng
        self.p_keep, self.p_hall, self.p_fa = p_keep, p_hallucinated, p_false_alarm
        self.found_cache: dict[int, list[tuple[Region, str, str, float]]] = {}
        self.image_id = self.tok.convert_tokens_to_ids(build.IMAGE_TOKEN)

    def prompt_ids(self, text: str) -> list[int]:
        s = self.processor.apply_chat_template(prompts.messages(text), add_generation_prompt=True)
        ids: list[int] = self.tok(s, add_special_tokens=False)["input_ids"]
        i = ids.index(self.image_id)
        return ids[:i] + [self.image_id] * build.N_IMAGE_TOKENS + ids[i + 1 :]

    def context(self, idx: int, objects: list[world.SceneObject], image: Image.Image) -> str:
        queries = [o.name for o in objects if self.rng.random() < self.p_keep]
        present = {o.name for o in objects}
        while self.rng.random() < self.p_hall:  # phrases a prior caption hallucinated
            c, s = self.rng.choice(world.object_types())
            queries.append(f"{c} {s}")
        if idx not in self.found_cache:
            self.found_cache[idx] = self.detector.describe(image)
        dets = self.detector.match(self.found_cache[idx], queries)
        if self.rng.random() < self.p_fa:
            absent = [t for t in world.object_types() if f"{t[0]} {t[1]}" not in present]
            c, s = self.rng.choice(absent)
            x0, y0 = self.rng.uniform(0, 0.8), self.rng.uniform(0, 0.8)
            w = self.rng.uniform(0.1, 0.3)
            dets.append(Detection(f"{c} {s}", (x0, y0, min(1, x0 + w), min(1, y0 + w)), 0.6))
        return grounding_text(dets)

    def __call__(
        self, idx: int, objects: list[world.SceneObject], image: Image.Image, task: str
    ) -> tuple[list[int], list[int]]:
        if task == "qa":
            present = {o.name for o in objects}
            if self.rng.random() < 0.5:
                label, answer = self.rng.choice(sorted(present)), "Yes."
            else:
                partners = [" ".join(p) for o in objects if (p := world._partner(o.color, o.shape))]
                absent = [p for p in partners if p not in present] or [
                    f"{c} {s}" for c, s in world.object_types() if f"{c} {s}" not in present
                ]
                label, answer = self.rng.choice(absent), "No."
            prompt, target = prompts.yes_no_question(label), answer
        elif task == "grounded":
            prompt = prompts.grounded_prompt(self.context(idx, objects, image))
            target = world.caption(objects)
        else:
            prompt, target = prompts.BASE_PROMPT, world.caption(objects)
        tgt = self.tok(target, add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id]
        return self.prompt_ids(prompt), tgt


def collate(
    examples: list[tuple[list[int], list[int]]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded batch; labels only on the target (prompt, image and padding are -100)."""
    n = max(len(p) + len(t) for p, t in examples)
    ids = torch.full((len(examples), n), pad_id)
    labels = torch.full((len(examples), n), -100)
    mask = torch.zeros((len(examples), n), dtype=torch.long)
    for i, (p, t) in enumerate(examples):
        seq = p + t
        ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, len(p) : len(seq)] = torch.tensor(t)
        mask[i, : len(seq)] = 1
    return ids, labels, mask


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clip", default="", help="init the vision tower from this CLIP ('' = random)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--resume", help="continue training this VLM folder instead of building a new one")
    ap.add_argument(
        "--patch-aux",
        type=float,
        default=0.5,
        help="weight of the auxiliary per-patch object-type loss on the vision tower (0 = off)",
    )
    ap.add_argument("--n-scenes", type=int, default=40000)
    ap.add_argument("--minutes", type=float, default=40.0, help="training budget (wall clock)")
    ap.add_argument("--max-steps", type=int, default=100000)
    ap.add_argument("--steps", type=int, help="cosine schedule over this many steps (default: over --minutes)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--mix", default="caption:0.4,grounded:0.45,qa:0.15")
    ap.add_argument("--lm-hidden", type=int, default=160)
    ap.add_argument("--lm-layers", type=int, default=3)
    ap.add_argument("--vision-hidden", type=int, default=128)
    ap.add_argument("--vision-layers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.time()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    tasks, weights = zip(*[(k, float(v)) for k, v in (x.split(":") for x in a.mix.split(","))])
    scenes = list(world.scenes("train", a.n_scenes, a.seed + 2))
    pixels = np.stack([np.asarray(img) for _, img in scenes])
    patch_y = torch.from_numpy(np.stack([world.patch_labels(o, build.PATCH) for o, _ in scenes]))
    print(f"{len(scenes)} scenes rendered in {time.time() - t0:.0f}s", flush=True)
    if a.resume:
        model = LlavaForConditionalGeneration.from_pretrained(a.resume)
        processor = AutoProcessor.from_pretrained(a.resume)  # type: ignore[no-untyped-call]  # untyped in transformers
        tok = processor.tokenizer
    else:
        tok = build.build_tokenizer()
        model, processor = build.build_vlm(
            tok,
            vision_hidden=a.vision_hidden,
            vision_layers=a.vision_layers,
            lm_hidden=a.lm_hidden,
            lm_layers=a.lm_layers,
        )
    if a.clip:
        clip = CLIPModel.from_pretrained(resolve(a.clip))
        missing = model.model.vision_tower.load_state_dict(clip.vision_model.state_dict(), strict=True)
        print(f"vision tower from {a.clip}: {missing}", flush=True)
    maker = ExampleMaker(processor, ShapesWorldDetector.from_pretrained(resolve("shapesworld/detector")), rng)
    # Dense supervision for the vision tower (training only, not shipped): every patch token
    # predicts which object type covers it. Captions alone teach shapes far too slowly.
    vision_config = model.config.vision_config
    assert isinstance(vision_config, PreTrainedConfig)  # LlavaConfig builds it from a dict
    aux_head = torch.nn.Linear(vision_config.hidden_size, len(world.object_types()) + 1)
    vision_out: dict[str, torch.Tensor] = {}
    model.model.vision_tower.register_forward_hook(
        lambda _m, _i, out: vision_out.__setitem__("h", out.last_hidden_state)
    )
    model.train()
    params = list(model.parameters()) + list(aux_head.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01, betas=(0.9, 0.98))
    budget = a.minutes * 60
    warmup = 200
    step, t_train, ema = 0, time.time(), None
    while step < a.max_steps:
        # cosine schedule over steps, or over wall-clock time when no step count is given
        frac = step / a.steps if a.steps else (time.time() - t_train) / budget
        if frac >= 1:
            break
        lr = a.lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = [rng.randrange(len(scenes)) for _ in range(a.batch)]
        chosen = rng.choices(tasks, weights, k=a.batch)
        ex = [maker(i, scenes[i][0], scenes[i][1], t) for i, t in zip(idx, chosen)]
        ids, labels, mask = collate(ex, tok.pad_token_id)
        out = model(input_ids=ids, attention_mask=mask, labels=labels, pixel_values=build.pixel_values(pixels[idx]))
        loss = out.loss
        if a.patch_aux:
            patch_logits = aux_head(vision_out["h"][:, 1:])  # drop CLS: (B, n_patches, types + 1)
            aux = torch.nn.functional.cross_entropy(patch_logits.flatten(0, 1), patch_y[idx].flatten())
            loss = loss + a.patch_aux * aux
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema = out.loss.item() if ema is None else 0.98 * ema + 0.02 * out.loss.item()
        if step % 100 == 0:
            print(
                f"step {step} loss {ema:.4f} aux {aux.item() if a.patch_aux else 0:.3f} lr {lr:.2e} "
                f"{time.time() - t0:.0f}s "
                f"({(step + 1) * a.batch / (time.time() - t_train):.0f} ex/s)",
                flush=True,
            )
        if step % 2000 == 0 and step:
            model.save_pretrained(a.out)
            processor.save_pretrained(a.out)
        step += 1
    model.eval()  # type: ignore[no-untyped-call]  # untyped in transformers
    model.save_pretrained(a.out)
    processor.save_pretrained(a.out)
    print(f"done: {step} steps, {step * a.batch} examples, {time.time() - t0:.0f} s -> {a.out}")


if __name__ == "__main__":
    main()
