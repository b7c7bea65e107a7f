"""ViMaR against VisVM and CLIP best-of-N, repeated on fresh scenes: speed as the median of
repeats, and why best-of-N by CLIP wins.

Each repeat generates fresh `test` scenes (its own seed) and runs, interleaved in one process with
the same thread budget, `visvm` (30 candidates per sentence step), `vimar@k=2` (10 stage-1
candidates) and the ranking study: one candidate set per image (the `bon` decoder's 30 full
captions, T 0.1-0.9 x 6) ranked both by mean CLIP similarity (= `bon`) and by mean value V
(= ViMaR's stage 1 without stage 2). On the same candidates, how often do the two rankers pick
the same caption, and when they disagree, whose pick hallucinates fewer objects?

    python benchmarks/vimar_speed.py                       # 3 repeats x 60 images (~25 min on 2 cores)
    python benchmarks/vimar_speed.py --n 4 --repeats 1 --out /tmp/v.json   # smoke size

Writes benchmarks/results/vimar/speed_repeats.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from groundloop import vocab as vocab_lib
from groundloop.data.coco import load_dataset
from groundloop.eval import captioning, metrics
from groundloop.models import load_clip, load_value, load_vlm
from groundloop.sampling import HFSampler
from groundloop.vimar import decoding
from groundloop.vimar.similarity import ClipScorer
from groundloop.worlds import shapes as world

OUT = Path(__file__).resolve().parent / "results" / "vimar" / "speed_repeats.json"


def timed_decode(name: str, spec: str, eng: decoding.Engines, images: list, batch: int) -> tuple[list[str], float]:
    _, settings = decoding.parse_spec(spec, decoding.DecodeSettings())
    t = time.perf_counter()
    caps: list[str] = []
    for i in range(0, len(images), batch):
        caps += decoding.decode(name, eng, images[i : i + batch], settings)
    return caps, time.perf_counter() - t


def ranking_study(eng: decoding.Engines, images: list, truths: list[set[str]], words: Any, batch: int) -> dict:
    """One candidate set per image, ranked by CLIP and by V; CHAIR of each pick and who wins."""
    s = decoding.DecodeSettings()
    n = len(s.temperatures) * s.k
    t_sample = t_clip = t_value = 0.0
    clip_pick: list[str] = []
    value_pick: list[str] = []
    for i in range(0, len(images), batch):
        ims = images[i : i + batch]
        rows = [(b, t) for b in range(len(ims)) for t in s.temperatures for _ in range(s.k)]
        t0 = time.perf_counter()
        caps = eng.sample([ims[b] for b, _ in rows], [""] * len(rows), [t for _, t in rows], False)
        t1 = time.perf_counter()
        clip = decoding.mean_scores(eng.clip_scores, [ims[b] for b, _ in rows], caps)
        t2 = time.perf_counter()
        vals = decoding.mean_scores(eng.values, [ims[b] for b, _ in rows], caps)
        t3 = time.perf_counter()
        t_sample, t_clip, t_value = t_sample + t1 - t0, t_clip + t2 - t1, t_value + t3 - t2
        for b in range(len(ims)):
            span = range(b * n, (b + 1) * n)
            clip_pick.append(caps[max(span, key=lambda r: clip[r])])
            value_pick.append(caps[max(span, key=lambda r: vals[r])])
    bad_clip = metrics.chair_per_caption(clip_pick, truths, words)
    bad_value = metrics.chair_per_caption(value_pick, truths, words)
    differ = [i for i in range(len(images)) if clip_pick[i] != value_pick[i]]
    return {
        "candidates_per_image": n,
        "same_pick": 1 - len(differ) / len(images),
        "disagreements": len(differ),
        "clip_pick_fewer_hallucinations": sum(len(bad_clip[i]) < len(bad_value[i]) for i in differ),
        "value_pick_fewer_hallucinations": sum(len(bad_value[i]) < len(bad_clip[i]) for i in differ),
        "equal_hallucinations": sum(len(bad_value[i]) == len(bad_clip[i]) for i in differ),
        "chair_i_clip_pick": metrics.chair(clip_pick, truths, words)["chair_i"],
        "chair_i_value_pick": metrics.chair(value_pick, truths, words)["chair_i"],
        "sec_per_image": {
            "sample": t_sample / len(images),
            "clip": t_clip / len(images),
            "value": t_value / len(images),
        },
    }


def spread(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=60, help="fresh test images per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=9101, help="scene seed of the first repeat (+1 per repeat)")
    p.add_argument("--decode-batch", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, processor = load_vlm("shapesworld/vlm")
    eng = decoding.Engines(
        HFSampler(model, processor, max_new_tokens=a.max_new_tokens, seed=0),
        value=load_value("shapesworld/value"),
        clip=ClipScorer(*load_clip("shapesworld/clip")),
    )
    words = vocab_lib.get("shapes")
    repeats = []
    for r in range(a.repeats):
        seed = a.first_seed + r
        with tempfile.TemporaryDirectory() as tmp:
            world.generate(Path(tmp), "test", a.n, seed=seed)
            loaded, _ = captioning.load_images(load_dataset(Path(tmp)))
            records, images = [x for x, _ in loaded], [im for _, im in loaded]
        truths = [words.truth_labels(x) for x in records]
        row: dict[str, Any] = {"scene_seed": seed, "n_images": len(images)}
        # alternate the order so neither decoder always runs first
        order = [("visvm", "visvm"), ("vimar", "vimar@k=2")]
        for name, spec in order if r % 2 == 0 else order[::-1]:
            caps, seconds = timed_decode(name, spec, eng, images, a.decode_batch)
            m = metrics.chair(caps, truths, words)
            row[spec] = {"chair_i": m["chair_i"], "recall": m["recall"], "sec_per_caption": seconds / len(images)}
        row["speedup_visvm_over_vimar_k2"] = row["visvm"]["sec_per_caption"] / row["vimar@k=2"]["sec_per_caption"]
        row["ranking"] = ranking_study(eng, images, truths, words, a.decode_batch)
        repeats.append(row)
        print(json.dumps(row), flush=True)
    report = {
        "command": "python benchmarks/vimar_speed.py " + " ".join(argv or []),
        "threads": a.threads,
        "repeats": repeats,
        "speedup": spread([x["speedup_visvm_over_vimar_k2"] for x in repeats]),
        "chair_i": {k: statistics.mean(x[k]["chair_i"] for x in repeats) for k in ("visvm", "vimar@k=2")}
        | {
            "bon_clip_pick": statistics.mean(x["ranking"]["chair_i_clip_pick"] for x in repeats),
            "value_pick": statistics.mean(x["ranking"]["chair_i_value_pick"] for x in repeats),
        },
        "same_pick": statistics.mean(x["ranking"]["same_pick"] for x in repeats),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("speedup", "chair_i", "same_pick")}), flush=True)
    return report


if __name__ == "__main__":
    main()
