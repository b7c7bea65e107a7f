"""Evaluate a VLM's captions: CHAIR, recall, POPE, BLEU-4, CIDEr-D (and, with --grounded,
the same after inference-time grounding: prior caption -> detector -> `<context>` prompt).

    python pipelines/evaluate.py --model shapesworld/vlm --data data/shapes/test --out r.json
    python pipelines/evaluate.py --model llava-hf/llava-1.5-7b-hf \
        --annotations annotations/instances_val2017.json --images val2017 \
        --captions annotations/captions_val2017.json --n 500 --out coco.json

With --decoder (one or more of greedy, bon, clip_prm, visvm, vimar) it also captions with
each decoder and adds, per decoder, its caption metrics, mean seconds per caption and the
number of generation / value / CLIP calls (report["decoders"], and `<out stem>.decoders.json`):

    python pipelines/evaluate.py --data data/shapes/test --decoder greedy visvm vimar \
        --value shapesworld/value --clip shapesworld/clip --out runs/vimar/report.json

Writes the report JSON, `<out stem>.captions.jsonl` (one row per image) and, when some
images cannot be read, `<out stem>.errors.jsonl`; the other images are still evaluated.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from groundloop import prompts, vocab
from groundloop.data.coco import DataError, load_coco, load_dataset
from groundloop.eval import captioning
from groundloop.models import load_clip, load_detector, load_reward_model, load_value, load_vlm
from groundloop.sampling import HFSampler
from groundloop.vimar import decoding
from groundloop.vimar.similarity import ClipScorer
from pipelines.common import cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="shapesworld/vlm", help="hub id, folder or shapesworld/vlm")
    p.add_argument("--adapter", help="PEFT adapter folder to load on top of --model")
    p.add_argument("--data", type=Path, help="ShapesWorld-layout folder (instances.json, images/)")
    p.add_argument("--split", help="sub-folder of --data to evaluate, e.g. test")
    p.add_argument("--annotations", type=Path, help="COCO instances JSON (instead of --data)")
    p.add_argument("--images", type=Path, help="image folder for --annotations")
    p.add_argument("--captions", type=Path, help="COCO captions JSON for BLEU/CIDEr (optional)")
    p.add_argument("--n", type=int, help="evaluate only the first N images")
    p.add_argument("--vocabulary", choices=vocab.NAMES, help="object vocabulary (default: from the annotations)")
    p.add_argument("--out", type=Path, required=True, help="report JSON path")
    p.add_argument("--grounded", action="store_true", help="also evaluate inference-time grounding")
    p.add_argument("--detector", default="shapesworld/detector")
    p.add_argument(
        "--grounding-samples",
        type=int,
        default=0,
        help="with --grounded: also sample this many captions per image and ground all their phrases",
    )
    p.add_argument("--temperature", type=float, default=1.0, help="for --grounding-samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-pope", action="store_true")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument(
        "--decoder",
        nargs="+",
        default=[],
        help=f"also caption with these decoders and report each: {', '.join(decoding.DECODERS)}; "
        "NAME@key=value,... gives one its own settings (vimar@k=2)",
    )
    p.add_argument("--value", default="shapesworld/value", help="value model for visvm / vimar")
    p.add_argument("--clip", default="shapesworld/clip", help="CLIP for bon / clip_prm")
    p.add_argument("--reward-model", default="shapesworld/genrm", help="VL-GenRM folder for genrm_bon")
    p.add_argument("--temperatures", type=float, nargs="+", default=list(decoding.DecodeSettings.temperatures))
    p.add_argument("--k", type=int, default=decoding.DecodeSettings.k, help="candidates per temperature")
    p.add_argument("--threshold", type=float, help="vimar weak-sentence value (default: the value model's)")
    p.add_argument("--refine", choices=["in_place", "append"], default="in_place")
    p.add_argument("--decode-batch", type=int, default=4, help="images per decoder call")
    a = p.parse_args(argv)
    if (a.data is None) == (a.annotations is None):
        p.error("give either --data DIR or --annotations FILE --images DIR")
    if a.annotations is not None and a.images is None:
        p.error("--annotations needs --images")
    for spec in a.decoder:  # a bad decoder name or setting fails here, before any model loads
        try:
            decoding.parse_spec(spec, decoding.DecodeSettings())
        except ValueError as e:
            p.error(str(e))
    check_inputs(a, {decoding.parse_spec(s, decoding.DecodeSettings())[0] for s in a.decoder})
    return a


def check_inputs(a: argparse.Namespace, decoders: set[str]) -> None:
    """Ranges, paths and the models this run will load, before any of them loads."""
    for flag, value, low in (
        ("--n", a.n, 1),
        ("--batch-size", a.batch_size, 1),
        ("--max-new-tokens", a.max_new_tokens, 1),
        ("--k", a.k, 1),
        ("--decode-batch", a.decode_batch, 1),
        ("--grounding-samples", a.grounding_samples, 0),
        ("--threads", a.threads, 0),
    ):
        if value is not None and value < low:
            cli.fail(f"{flag} must be >= {low}, got {value}")
    models = {
        "--model": a.model,
        "--adapter": a.adapter,
        "--detector": a.detector if a.grounded else None,
        "--value": a.value if decoders & {"visvm", "vimar"} else None,
        "--clip": a.clip if decoders & {"bon", "clip_prm"} else None,
        "--reward-model": a.reward_model if "genrm_bon" in decoders else None,
    }
    try:
        for flag, path in (("--data", a.data), ("--annotations", a.annotations), ("--images", a.images)):
            if path is not None:
                cli.check_path(path, flag)
        for flag, spec in models.items():
            if spec:
                cli.check_model(spec, flag)
    except cli.UsageError as e:
        cli.fail(str(e))


def run_decoders(a: argparse.Namespace, sampler: HFSampler, records, images, vocab, rows) -> dict:
    """Caption with every requested decoder: metrics, seconds per caption, model calls."""
    settings = decoding.DecodeSettings(
        temperatures=tuple(a.temperatures), k=a.k, threshold=a.threshold, refine=a.refine
    )
    specs = {spec: decoding.parse_spec(spec, settings) for spec in a.decoder}
    names = {name for name, _ in specs.values()}
    needs_value = bool(names & {"visvm", "vimar"})
    needs_clip = bool(names & {"bon", "clip_prm"})
    value = load_value(a.value) if needs_value else None
    clip = ClipScorer(*load_clip(a.clip)) if needs_clip else None
    judge = (
        load_reward_model(a.reward_model, max_new_tokens=a.max_new_tokens, vocab=vocab)
        if "genrm_bon" in names
        else None
    )
    out = {}
    for spec, (name, s) in specs.items():
        eng = decoding.Engines(sampler, value=value, clip=clip, judge=judge)
        t = time.time()
        caps: list[str] = []
        for i in range(0, len(images), a.decode_batch):
            caps += decoding.decode(name, eng, images[i : i + a.decode_batch], s)
            print(f"[{spec}] {len(caps)}/{len(images)} images, {time.time() - t:.0f}s", flush=True)
        seconds = time.time() - t
        n = max(1, len(images))
        out[spec] = captioning.caption_metrics(records, caps, vocab) | {
            "sec_per_caption": seconds / n,
            "seconds": seconds,
            "generate_calls_per_caption": eng.stats["generate_calls"] / n,
            "generated_sequences_per_caption": eng.stats["generated_sequences"] / n,
            "value_calls_per_caption": eng.stats["value_calls"] / n,
            "valued_states_per_caption": eng.stats["valued_states"] / n,
            "clip_calls_per_caption": eng.stats["clip_calls"] / n,
            "judged_pairs_per_caption": eng.stats["judged_pairs"] / n,
            "settings": {
                "temperatures": list(s.temperatures),
                "k": s.k,
                "threshold": s.threshold if name == "vimar" else None,
                "refine": s.refine if name == "vimar" else None,
            },
        }
        for row, c in zip(rows, caps):
            row[f"caption_{spec}"] = c
        print(json.dumps({spec: {k: out[spec][k] for k in ("chair_i", "recall", "sec_per_caption")}}), flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.time()
    try:
        if a.data is not None:
            records = load_dataset(a.data / a.split if a.split else a.data)
        else:
            records = load_coco(a.annotations, a.images, a.captions)
    except DataError as e:
        cli.fail(str(e))
    records = records[: a.n] if a.n else records
    loaded, errors = captioning.load_images(records)
    for e in errors:
        print(f"skipping image {e['image_id']}: {e['error']}", file=sys.stderr)
    if not loaded:  # metrics over no images would read as a perfect CHAIR of 0.0
        cli.fail(f"none of the {len(records)} images could be read ({errors[0]['error'] if errors else 'no images'})")
    records = [r for r, _ in loaded]
    images = [im for _, im in loaded]
    model, processor = load_vlm(a.model, adapter=a.adapter)
    sampler = HFSampler(model, processor, max_new_tokens=a.max_new_tokens, seed=a.seed)
    words = vocab.for_records(records, a.vocabulary or "")
    timings = {}

    t = time.time()
    captions = captioning.caption(sampler, images, prompts.BASE_PROMPT, a.batch_size)
    timings["caption_s"] = time.time() - t
    report = {
        "model": a.model,
        "adapter": a.adapter,
        "data": str(a.data or a.annotations),
        "n_images": len(records),
        "n_errors": len(errors),
        "vocabulary": words.name,
    }
    report |= captioning.caption_metrics(records, captions, words)
    rows = [{"image_id": r.image_id, "file": r.path.name, "caption": c} for r, c in zip(records, captions)]
    if not a.no_pope:
        t = time.time()
        truths = [words.truth_labels(r) for r in records]
        report["pope"] = captioning.pope(sampler, images, truths, words.labels, a.batch_size)
        timings["pope_s"] = time.time() - t
    if a.grounded:
        t = time.time()
        groundings, guided = captioning.grounded_recaption(
            sampler,
            load_detector(a.detector),
            images,
            captions,
            words,
            a.batch_size,
            extra_samples=a.grounding_samples,
            temperature=a.temperature,
        )
        timings["grounded_s"] = time.time() - t
        g = captioning.caption_metrics(records, guided, words)
        g["chair_i_relative_change"] = (
            (g["chair_i"] - report["chair_i"]) / report["chair_i"] if report["chair_i"] else None
        )
        report["grounded"] = g | {
            "detector": a.detector,
            "extra_samples": a.grounding_samples,
            "temperature": a.temperature,
        }
        for row, gr, gc in zip(rows, groundings, guided):
            row |= {"grounding": gr, "guided_caption": gc}
    if a.decoder:
        report["decoders"] = run_decoders(a, sampler, records, images, words, rows)
        timings["decoders_s"] = sum(d["seconds"] for d in report["decoders"].values())
    report["timings"] = timings | {"total_s": time.time() - t0}

    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    stem = a.out.with_suffix("")
    Path(f"{stem}.captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if a.decoder:
        Path(f"{stem}.decoders.json").write_text(json.dumps(report["decoders"], indent=1))
    if errors:
        Path(f"{stem}.errors.jsonl").write_text("".join(json.dumps(e) + "\n" for e in errors))
    summary = {k: report[k] for k in ("n_images", "n_errors", "chair_s", "chair_i", "recall")}
    print(json.dumps(summary | {"grounded_chair_i": report.get("grounded", {}).get("chair_i")}))
    return report


if __name__ == "__main__":
    main()
