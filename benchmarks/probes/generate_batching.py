"""Does batching more images into one `generate` call speed up sampling on this machine?

Seconds per image for K=8 samples per image, 1 vs 4 images per call, with 1 and 2 torch
threads (Ray actors with fractional CPUs get 1). Explains benchmarks/results/svp_throughput.json.

Result: benchmarks/results/generate_batching.json (docs/results/svp.md, Throughput).

    python benchmarks/probes/generate_batching.py --out benchmarks/results/generate_batching.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from groundloop import prompts
from groundloop.models import load_vlm
from groundloop.sampling import HFSampler
from groundloop.worlds import shapes as world


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/generate_batching.json"))
    p.add_argument("--n", type=int, default=8)
    a = p.parse_args()
    sampler = HFSampler(*load_vlm("shapesworld/vlm"), max_new_tokens=128, seed=0)
    images = [im for _, im in world.scenes("val", a.n, 3)]
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for per_call in (1, 4):
            t = time.perf_counter()
            for i in range(0, len(images), per_call):
                chunk = images[i : i + per_call]
                sampler.generate(chunk, [prompts.BASE_PROMPT] * len(chunk), n=8, temperature=0.7, top_p=0.95)
            rows.append(
                {
                    "threads": threads,
                    "images_per_call": per_call,
                    "seconds_per_image": (time.perf_counter() - t) / len(images),
                }
            )
            print(rows[-1], flush=True)
    res = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU, torch {torch.__version__}",
        "k": 8,
        "n_images": len(images),
        "rows": rows,
    }
    a.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
