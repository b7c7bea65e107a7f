"""SVP inner-loop throughput: the Ray Data pipeline vs a plain in-process loop, side by side.

Both run the same models and settings over the same images: K prior samples per image, the
detector on each prior's phrases, one guided sample per prior, S and Delta by teacher forcing.
  - loop: one image at a time, K samples per generate call, K captions per scoring forward;
  - ray:  pipelines.svp.run.sample_and_score (actor pools from the config; actor start-up and
          model loading are inside the timed span).
Also: scoring K captions in one batched forward per prompt vs one caption per forward.

    python benchmarks/svp_throughput.py --data data/shapes/train --n 32 --out benchmarks/results/svp_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import ray
import torch

from groundloop import config as config_lib
from groundloop import prompts, vocab
from groundloop.data.coco import load_dataset, load_image
from groundloop.eval.captioning import ground
from groundloop.models import load_detector, load_vlm
from groundloop.sampling import HFSampler
from groundloop.svp.scoring import score_guided
from pipelines.svp.config import SVPConfig
from pipelines.svp.run import sample_and_score


def in_process_loop(cfg: SVPConfig, paths: list[str]) -> list[dict]:
    smp = cfg.sampling
    model, processor = load_vlm(cfg.model.vlm)
    sampler = HFSampler(model, processor, max_new_tokens=smp.max_new_tokens, seed=cfg.run.seed)
    detector = load_detector(cfg.model.detector)
    words = vocab.get("shapes")  # what the Ray pipeline below is given
    rows = []
    for path in paths:
        image = load_image(path)
        priors = sampler.generate(
            [image], [prompts.BASE_PROMPT], n=smp.k, temperature=smp.temperature, top_p=smp.top_p
        )[0]
        groundings = ground(detector, [image] * len(priors), priors, words)
        guided = [
            g[0]
            for g in sampler.generate(
                [image] * len(priors),
                [prompts.grounded_prompt(g) for g in groundings],
                temperature=smp.temperature,
                top_p=smp.top_p,
            )
        ]
        s, d = score_guided(model, processor, [image] * len(guided), groundings, guided)
        rows += [
            {"path": path, "prior": p, "grounding": g, "guided": q, "S": a, "delta": b}
            for p, g, q, a, b in zip(priors, groundings, guided, s, d)
        ]
    return rows


def scoring_speedup(cfg: SVPConfig, rows: list[dict], repeats: int) -> dict:
    """One batched forward per prompt for K captions of an image vs K single-caption forwards."""
    model, processor = load_vlm(cfg.model.vlm)
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["path"], []).append(r)
    groups_list = list(groups.values())[:repeats]
    t = time.perf_counter()
    batched = []
    for g in groups_list:
        img = load_image(g[0]["path"])
        batched += score_guided(
            model, processor, [img] * len(g), [r["grounding"] for r in g], [r["guided"] for r in g]
        )[0]
    t_batched = time.perf_counter() - t
    t = time.perf_counter()
    single = []
    for g in groups_list:
        img = load_image(g[0]["path"])
        for r in g:
            single += score_guided(model, processor, [img], [r["grounding"]], [r["guided"]])[0]
    t_single = time.perf_counter() - t
    err = max(abs(a - b) for a, b in zip(batched, single))
    return {
        "captions": len(single),
        "batched_s": t_batched,
        "one_at_a_time_s": t_single,
        "speedup": t_single / t_batched,
        "max_abs_score_difference": err,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/svp_shapes.yaml")
    p.add_argument("--data", default=None, help="images to use (default: the config's data.path)")
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/svp_throughput.json"))
    p.add_argument("overrides", nargs="*")
    a = p.parse_args()
    cfg = config_lib.load(SVPConfig, a.config, a.overrides)
    records = load_dataset(Path(a.data or cfg.data.path))[: a.n]
    paths = [str(r.path) for r in records]
    torch.manual_seed(cfg.run.seed)

    t = time.perf_counter()
    loop_rows = in_process_loop(cfg, paths)
    t_loop = time.perf_counter() - t
    print(f"in-process loop: {len(paths)} images in {t_loop:.1f} s", flush=True)

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    t = time.perf_counter()
    df = sample_and_score(
        cfg, [{"image_id": r.image_id, "path": str(r.path), "error": ""} for r in records], None, "shapes"
    ).to_pandas()
    t_ray = time.perf_counter() - t
    ray.shutdown()
    print(f"ray pipeline: {len(paths)} images in {t_ray:.1f} s ({len(df)} scored samples)", flush=True)

    res = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU, torch {torch.__version__}",
        "config": a.config,
        "overrides": a.overrides,
        "k": cfg.sampling.k,
        "n_images": len(paths),
        "resources": config_lib.to_dict(cfg)["resources"],
        "loop": {"seconds": t_loop, "images_per_s": len(paths) / t_loop, "samples": len(loop_rows)},
        "ray": {"seconds": t_ray, "images_per_s": len(paths) / t_ray, "samples": len(df)},
        "ray_speedup": t_loop / t_ray,
        "scoring": scoring_speedup(cfg, loop_rows, repeats=4),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
