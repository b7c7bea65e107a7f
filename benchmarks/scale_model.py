"""Scale model of SVP on a GPU cluster: per-GPU images/s per stage, GPU-hours and wall-clock for
N images at K samples on 8 and 64 GPUs, and where the pipeline stops scaling.

A model, not a GPU measurement (no GPU was available). Each input is MEASURED on the dev machine
(2 CPU cores: read from benchmarks/results/*.json, or the one-off timing named in ONE_OFF) or
ASSUMED (an option below, default with its source). The work per image follows the code as it
runs today (docs/results/scale.md):

  prior sampling    K samples of the plain prompt (HF generate repeats the prompt K times;
                    vLLM caches its prefill); load_vlm loads bfloat16 weights on a GPU
  grounding         K detector calls per image with svp.grounding=sample (the recipe's), one with
                    "image" (the grounder dedupes rows asking the same question of the same
                    image); GroundingDINO on the grounder pool's GPUs (resources.grounder_gpus)
  guided sampling   one sample per grounded prompt (K prompts)
  scoring           each guided caption teacher-forced under the grounded and the plain prompt;
                    one prefill per distinct (image, prompt): the plain prompt once, the grounded
                    one once ("image") or K times ("sample"); S and Delta summed on the GPU
  LoRA              ceil(top_fraction * K) kept captions per image, train.num_workers GPUs
  evaluation        greedy captions of eval_images in the driver process (base + each iteration):
                    on cluster.yaml's CPU head, where load_vlm loads float32

Pools: "config" gives each pool the recipe's share of the GPUs (prior and guided sampling are two
pools of resources.sampler_actors each, scoring resources.scorer_actors, all at gpus_per_actor;
grounding resources.grounder_actors at grounder_gpus), scaled to the cluster; "balanced" sizes
each pool to its stage's GPU time (prior and guided the same size, as they share sampler_actors).

Scenarios, each one change on the one before: `as_coded` (configs/svp_coco.yaml as it is),
`balanced_pools` (pools sized to the work: a config change), `balanced_pools_gpu_eval` (evaluation
on a GPU: a code change), `vllm` (model.engine=vllm), `best_case` (svp.grounding=image,
train.num_workers = the GPUs). What-ifs: `detector_on_cpu` (resources.grounder_gpus=0: two CPU
grounder actors), `detector_on_spare_cpus` (CPU grounders on every vCPU the GPU actors leave
free), `as_coded_plumbing_per_row` (the measured plumbing time read per row instead of per block).

    .venv/bin/python benchmarks/scale_model.py [--gpu a100|h100] [--gpus 8 64] [--decode-tps-hf 1500 ...]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEV_THREADS = 2  # torch threads of the one-off timing below

# One-off timing on the dev machine (2 cores, shared with a CI run), not in a results file; the
# snippet is in docs/results/scale.md.
ONE_OFF = {
    "detector_cpu_s_per_call_dev": (
        32.7,
        "s/call",
        "one-off: random-init transformers GroundingDinoConfig() (= grounding-dino-tiny's architecture, "
        "172M parameters), one 800x1200 image + 24 text tokens, torch 2 threads, second of two calls",
    ),
}

# Assumed GPU figures per preset (the VLM in bf16). Sources: vendor spec sheets (dense, no
# sparsity) and common HF / vLLM practice; none measured here.
GPU_PRESETS = {
    "a100": {
        "peak_bf16_tflops": 312,
        "prefill_mfu": 0.45,
        "decode_tps_hf": 1500,
        "decode_tps_vllm": 4000,
        "detector_gpu_calls_per_s": 8,
        "lora_mfu": 0.35,
        "vcpus_per_gpu": 12,
        "gpu_memory_gib": 80,
    },
    "h100": {
        "peak_bf16_tflops": 989,
        "prefill_mfu": 0.35,
        "decode_tps_hf": 2500,
        "decode_tps_vllm": 8000,
        "detector_gpu_calls_per_s": 12,
        "lora_mfu": 0.30,
        "vcpus_per_gpu": 24,
        "gpu_memory_gib": 80,
    },
}

# name: (default, unit, role, source); default None: from --gpu's preset. role "setting": a
# choice of the run (configs/svp_coco.yaml unless said); "spec": a published figure of the model or
# the hardware; "estimate": a figure that could well be wrong (the sensitivity table varies these).
ASSUMED = {
    "images": (
        100_000,
        "images",
        "setting",
        "the question (COCO train2017 has 118,287; train2014, which configs/svp_coco.yaml reads in full, 82,783)",
    ),
    "k": (20, "samples/image", "setting", "configs/svp_coco.yaml sampling.k"),
    "iterations": (1, "", "setting", "configs/svp_coco.yaml svp.iterations"),
    "top_fraction": (0.2, "", "setting", "configs/svp_coco.yaml svp.top_fraction"),
    "batch_size": (8, "images/block", "setting", "configs/svp_coco.yaml resources.batch_size"),
    "gpus_per_actor": (0.5, "GPU", "setting", "configs/svp_coco.yaml resources.gpus_per_actor"),
    "sampler_actors": (
        5,
        "actors",
        "setting",
        "configs/svp_coco.yaml resources.sampler_actors (a pool of them for prior and one for guided sampling)",
    ),
    "scorer_actors": (3, "actors", "setting", "configs/svp_coco.yaml resources.scorer_actors"),
    "actor_cpus": (4, "CPUs", "setting", "configs/svp_coco.yaml resources.sampler_cpus = scorer_cpus"),
    "grounder_actors": (3, "actors", "setting", "configs/svp_coco.yaml resources.grounder_actors"),
    "grounder_gpus": (0.5, "GPU", "setting", "configs/svp_coco.yaml resources.grounder_gpus"),
    "grounder_cpus": (4, "CPUs", "setting", "configs/svp_coco.yaml resources.grounder_cpus"),
    "train_workers": (8, "GPUs", "setting", "configs/svp_coco.yaml train.num_workers"),
    "train_batch_size": (16, "sequences/worker", "setting", "configs/svp_coco.yaml train.batch_size"),
    "train_epochs": (1, "", "setting", "configs/svp_coco.yaml train.epochs"),
    "eval_images": (500, "images", "setting", "configs/svp_coco.yaml data.eval_n_images"),
    "max_new_tokens": (256, "tokens", "setting", "configs/svp_coco.yaml sampling.max_new_tokens"),
    "image_tokens": (576, "tokens", "spec", "LLaVA-1.5: 24x24 patches of CLIP ViT-L/14 at 336 px"),
    "prompt_tokens": (40, "tokens", "estimate", "system prompt + BASE_PROMPT + LLaVA-1.5 chat template, by hand"),
    "grounding_tokens": (
        150,
        "tokens",
        "estimate",
        "the <context> text: ~7 grounded COCO phrases x ~20 tokens ('a dog [0.12, 0.34, 0.56, 0.78]; ')",
    ),
    "caption_tokens": (
        150,
        "tokens",
        "estimate",
        "mean sampled caption (docs/runbook.md's figure for a LLaVA-1.5 detailed description)",
    ),
    "scoring_pad_tokens": (
        220,
        "tokens",
        "estimate",
        "a scoring batch's padded width: the longest of batch_size x K captions, capped at max_new_tokens",
    ),
    "vocab": (32064, "tokens", "spec", "llava-1.5-7b-hf's vocabulary (S and Delta sum over all of it, on the GPU)"),
    "lm_params": (6.74e9, "parameters", "spec", "Llama-2-7B / Vicuna-7B language model of LLaVA-1.5"),
    "model_params": (7.06e9, "parameters", "spec", "llava-1.5-7b-hf with its vision tower and projector"),
    "kv_bytes_per_token": (524_288, "bytes (bf16)", "spec", "2 x 32 layers x 4096 x 2 bytes (Llama-2-7B, MHA)"),
    "peak_bf16_tflops": (None, "TFLOP/s", "spec", "vendor spec sheet, dense bf16"),
    "prefill_mfu": (
        None,
        "",
        "estimate",
        "HF forward of ~600-800-token rows, bf16; prefill tokens/s = peak x MFU / (2 x lm_params)",
    ),
    "decode_tps_hf": (
        None,
        "tokens/s/GPU",
        "estimate",
        "HF generate, bf16, batches of 40-160 sequences, useful "
        "tokens after padding waste (1,500 on A100: the figure of docs/runbook.md's earlier decode-only estimate)",
    ),
    "decode_tps_vllm": (
        None,
        "tokens/s/GPU",
        "estimate",
        "vLLM offline engine, bf16, continuous batching, 7B with 576 image tokens per prompt",
    ),
    "detector_gpu_calls_per_s": (
        None,
        "calls/s/GPU",
        "estimate",
        "GroundingDINO-tiny (HF, fp32: load_detector passes no dtype) at 800x1067, batches of 8 (HFDetector)",
    ),
    "lora_mfu": (None, "", "estimate", "HF + PEFT LoRA on a frozen 7B, DDP"),
    "vcpus_per_gpu": (None, "vCPUs", "spec", "8-GPU nodes: p4d.24xlarge 96 vCPUs (A100), p5.48xlarge 192 (H100)"),
    "gpu_memory_gib": (None, "GiB", "spec", "80 GB parts"),
    "lora_flops_factor": (
        4,
        "x params per token",
        "estimate",
        "frozen base: forward 2N + activation gradients 2N (no weight gradients, no checkpointing)",
    ),
    "train_dp_efficiency": (0.9, "", "estimate", "DDP over LoRA gradients only (~160M parameters at r=64)"),
    "cpu_core_speedup": (
        1.0,
        "x",
        "estimate",
        "a server core vs one dev-machine core; thread scaling taken as linear (optimistic)",
    ),
    "head_cpu_gflops": (
        300,
        "GFLOP/s",
        "estimate",
        "cluster.yaml's head (m6i.2xlarge, 8 vCPUs, AVX-512 fp32 at ~40 % of peak) for the driver's evaluation "
        "(load_vlm loads float32 on a CPU)",
    ),
    "image_decode_s": (
        0.005,
        "s/decode",
        "estimate",
        "one COCO JPEG (~640x480) through PIL; every row of the grounder, guided sampler and scorer decodes its image",
    ),
    "image_bytes": (160e3, "bytes", "estimate", "COCO train2014: 13 GB / 82,783 images"),
    "storage_reads_per_image": (
        4,
        "reads",
        "estimate",
        "one per stage: the K rows of an image are on one node, so repeats hit the page cache",
    ),
    "storage_mb_per_s": (500, "MB/s", "estimate", "shared file system (EFS / FSx class) read bandwidth"),
    "row_bytes": (2000, "bytes", "estimate", "a scored row: prior + guided (~700 B each) + grounding (~600 B)"),
    "model_load_s": (120, "s", "estimate", "a 7B checkpoint from shared storage + HF init, per stage start"),
    "vm_boot_s": (300, "s", "estimate", "a cloud GPU node booting and running cluster.yaml's setup_commands"),
}


def _load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def measured_inputs() -> dict[str, dict]:
    """The inputs read from committed results files, each with the file and key it came from."""
    st = _load("svp_streaming.json")
    runs = sorted(st["runs"], key=lambda r: r["images"])
    lo, hi = runs[0], runs[-1]
    block = int(dict(o.split("=", 1) for o in st["overrides"])["resources.batch_size"])
    blocks = [math.ceil(r["images"] / block) for r in (lo, hi)]
    per_block = (hi["seconds"] - lo["seconds"]) / (blocks[1] - blocks[0])
    mib_per_image = (hi["stage_adds_mib"] - lo["stage_adds_mib"]) / (hi["images"] - lo["images"])
    auto = _load("autoscaling.json")
    first_worker = next(t["t"] for t in auto["timeline"] if t["phase"] == "job" and t["workers"] >= 1)
    sc = _load("svp_scoring.json")
    src = "benchmarks/results/svp_streaming.json"
    out = {
        "block_overhead_s": (
            round(per_block, 4),
            "s/block",
            "estimate",
            f"{src}: (runs[images={hi['images']}].seconds - runs[images={lo['images']}].seconds) / "
            f"({blocks[1]} - {blocks[0]}) blocks of {block} images, k={hi['k']}, cheap actors: the plumbing's "
            "marginal time per streamed block; an upper bound (2 cores shared by the driver and four pools)",
        ),
        "plumbing_s_per_row": (
            round(per_block / block, 6),
            "s/row",
            "estimate",
            f"{src}: block_overhead_s / {block} rows per block (k=1): the same time read as a cost per row",
        ),
        "driver_rss_before_mib": (
            hi["rss_before_stage_mib"],
            "MiB",
            "estimate",
            f"{src}: runs[images={hi['images']}].rss_before_stage_mib",
        ),
        "driver_stage_mib_per_image": (
            round(mib_per_image, 6),
            "MiB/image",
            "estimate",
            f"{src}: slope of runs[].stage_adds_mib ({lo['stage_adds_mib']} -> {hi['stage_adds_mib']} MiB "
            f"over {lo['images']} -> {hi['images']} images)",
        ),
        "driver_peak_rss_ratio": (
            st["peak_rss_ratio_largest_to_smallest"],
            "x",
            "context",
            f"{src}: peak_rss_ratio_largest_to_smallest (20x the images)",
        ),
        "autoscaler_first_worker_s": (
            first_worker,
            "s",
            "estimate",
            "benchmarks/results/autoscaling.json: timeline, first t with phase=job and workers>=1 "
            "(fake cluster: Ray's reaction only, no VM boot)",
        ),
        "scoring_shared_prefix_speedup_shapes": (
            sc["speedup_median"],
            "x",
            "context",
            "benchmarks/results/svp_scoring.json: speedup_median (ShapesWorld VLM, K=8, grounding=image)",
        ),
        "scoring_shared_prefix_max_abs_diff": (
            sc["max_abs_score_difference"],
            "score units",
            "context",
            "benchmarks/results/svp_scoring.json: max_abs_score_difference",
        ),
    }
    out |= {k: (v, unit, "estimate", src) for k, (v, unit, src) in ONE_OFF.items()}
    return {k: {"value": v, "unit": u, "kind": "measured", "role": r, "source": s} for k, (v, u, r, s) in out.items()}


SCENARIOS = {
    "as_coded": {"engine": "hf", "detector": "gpu", "pools": "config", "eval": "head_cpu"},
    "balanced_pools": {"engine": "hf", "detector": "gpu", "pools": "balanced", "eval": "head_cpu"},
    "balanced_pools_gpu_eval": {"engine": "hf", "detector": "gpu", "pools": "balanced", "eval": "gpu"},
    "vllm": {"engine": "vllm", "detector": "gpu", "pools": "balanced", "eval": "gpu"},
    "best_case": {
        "engine": "vllm",
        "detector": "gpu",
        "pools": "balanced",
        "eval": "gpu",
        "grounding": "image",
        "train_workers_follow_gpus": True,
    },
    # what-ifs
    "detector_on_cpu": {
        "engine": "hf",
        "detector": "cpu",
        "grounders": "config",
        "pools": "config",
        "eval": "head_cpu",
    },
    "detector_on_spare_cpus": {
        "engine": "hf",
        "detector": "cpu",
        "grounders": "spare_cpus",
        "pools": "config",
        "eval": "head_cpu",
    },
}
HEADLINE = "as_coded"


def stage_seconds(p: dict, sc: dict) -> dict[str, float]:
    """Seconds per image of each stage on one whole GPU (detection_cpu: on one CPU grounder actor)."""
    k, L, T = p["k"], p["caption_tokens"], p["scoring_pad_tokens"]
    plain = p["image_tokens"] + p["prompt_tokens"]
    grounded = plain + p["grounding_tokens"]
    image_mode, hf = sc["grounding"] == "image", sc["engine"] == "hf"
    prefill_tps = p["peak_bf16_tflops"] * 1e12 * p["prefill_mfu"] / (2 * p["lm_params"])
    decode = p["decode_tps_hf"] if hf else p["decode_tps_vllm"]
    prior_prefill = k * plain if hf else plain
    if hf:
        guided_prefill = k * grounded
    elif image_mode:
        guided_prefill = grounded  # K identical prompts: one cached prefill
    else:
        guided_prefill = p["image_tokens"] + k * (grounded - p["image_tokens"])  # the image's tokens cached
    # S and Delta are summed on the GPU (a few passes over the log-probs: milliseconds, not counted)
    score_tokens = plain + (grounded if image_mode else k * grounded) + 2 * k * T
    calls = 1 if image_mode else k  # the grounder shares one call among rows asking the same of an image
    cpu_call_s = p["detector_cpu_s_per_call_dev"] * DEV_THREADS / p["grounder_cpus"] / p["cpu_core_speedup"]
    decode_img = p["image_decode_s"]
    return {
        "prior_sampling": k * L / decode + prior_prefill / prefill_tps + decode_img,
        "guided_sampling": k * L / decode + guided_prefill / prefill_tps + k * decode_img,
        "scoring": score_tokens / prefill_tps + k * decode_img,
        "detection_gpu": calls / p["detector_gpu_calls_per_s"] + k * decode_img,
        "detection_cpu": calls * cpu_call_s + k * decode_img,
        "_prefill_tps": prefill_tps,
        "_decode_tps": decode,
    }


def lora_gpu_s(p: dict) -> float:
    kept = p["images"] * max(1, math.ceil(p["top_fraction"] * p["k"]))
    tokens = kept * (p["image_tokens"] + p["prompt_tokens"] + p["caption_tokens"]) * p["train_epochs"]
    return p["lora_flops_factor"] * p["lm_params"] * tokens / (p["peak_bf16_tflops"] * 1e12 * p["lora_mfu"])


def eval_s(p: dict, sc: dict, s: dict) -> float:
    """Wall seconds of one evaluation (greedy captions of eval_images in the driver process)."""
    tokens = p["eval_images"] * (p["image_tokens"] + p["prompt_tokens"] + p["caption_tokens"])
    if sc["eval"] == "head_cpu":  # float32 on the head's CPUs: compute-bound at head_cpu_gflops
        return tokens * 2 * p["lm_params"] / (p["head_cpu_gflops"] * 1e9)
    return p["eval_images"] * (
        (p["image_tokens"] + p["prompt_tokens"]) / s["_prefill_tps"] + p["caption_tokens"] / s["_decode_tps"]
    )


def config_pool_gpus(p: dict) -> dict[str, float]:
    """GPUs each pool of configs/svp_coco.yaml asks for (prior and guided: one pool each)."""
    sampler = p["sampler_actors"] * p["gpus_per_actor"]
    return {
        "prior_sampling": sampler,
        "guided_sampling": sampler,
        "scoring": p["scorer_actors"] * p["gpus_per_actor"],
        "detection": p["grounder_actors"] * p["grounder_gpus"],
    }


def scenario(p: dict, sc: dict, gpus: list[int]) -> dict:
    s = stage_seconds(p, sc)
    on_gpu = {"prior_sampling": s["prior_sampling"], "guided_sampling": s["guided_sampling"], "scoring": s["scoring"]}
    if sc["detector"] == "gpu":
        on_gpu["detection"] = s["detection_gpu"]
    if sc["pools"] == "config":
        # each pool gets the recipe's share of the GPUs; the pool with the least GPUs per unit of
        # its work sets the rate, the others wait on it
        asked = {name: g for name, g in config_pool_gpus(p).items() if name in on_gpu}
        share = {name: g / sum(asked.values()) for name, g in asked.items()}
        gpu_s_per_image = max(on_gpu[name] / share[name] for name in on_gpu)
        bottleneck = max(on_gpu, key=lambda name: on_gpu[name] / share[name])
    else:
        # prior and guided pools share resources.sampler_actors (same size); scorer and detector sized freely
        sampler = max(on_gpu["prior_sampling"], on_gpu["guided_sampling"])
        gpu_s_per_image = 2 * sampler + sum(v for name, v in on_gpu.items() if not name.endswith("_sampling"))
        sized = {name: (sampler if name.endswith("_sampling") else v) for name, v in on_gpu.items()}
        share = {name: v / gpu_s_per_image for name, v in sized.items()}
        bottleneck = max(on_gpu, key=on_gpu.get)
    train_s = lora_gpu_s(p)
    ev = eval_s(p, sc, s)
    if sc.get("plumbing") == "per_row":
        plumbing_per_image = p["plumbing_s_per_row"] * p["k"]
    else:
        plumbing_per_image = p["block_overhead_s"] / p["batch_size"]
    gpu_actor_cpus = p["actor_cpus"] / p["gpus_per_actor"]
    out_gpus = {}
    for n in gpus:
        caps = {
            "gpu_stages": n / gpu_s_per_image,
            "driver_plumbing": 1 / plumbing_per_image,
            "shared_storage": p["storage_mb_per_s"] * 1e6 / (p["storage_reads_per_image"] * p["image_bytes"]),
        }
        if sc["detector"] == "cpu":
            grounders = p["grounder_actors"]
            if sc.get("grounders") == "spare_cpus":
                grounders = max(grounders, math.floor(n * (p["vcpus_per_gpu"] - gpu_actor_cpus) / p["grounder_cpus"]))
            caps["detection_cpu"] = grounders / s["detection_cpu"]
        rate = min(caps.values())
        workers = n if sc.get("train_workers_follow_gpus") else min(n, p["train_workers"])
        train_wall = train_s / (workers * (p["train_dp_efficiency"] if workers > 1 else 1))
        wall = {
            "node_start": p["autoscaler_first_worker_s"] + p["vm_boot_s"],
            "model_loads": (1 + 3 * p["iterations"]) * p["model_load_s"],  # base eval; sample, train, eval
            "evaluation": (1 + p["iterations"]) * ev,
            "sample_stage": p["iterations"] * p["images"] / rate,
            "lora": p["iterations"] * train_wall,
        }
        total = sum(wall.values())
        busy = p["iterations"] * (p["images"] * sum(on_gpu.values()) + train_s) + (
            (1 + p["iterations"]) * ev if sc["eval"] == "gpu" else 0
        )
        out_gpus[str(n)] = {
            "images_per_s": round(rate, 3),
            "limited_by": min(caps, key=caps.get),
            "caps_images_per_s": {c: round(v, 3) for c, v in caps.items()},
            "pool_gpus": {name: round(n * f, 2) for name, f in share.items()},
            "wall_h": round(total / 3600, 2),
            "wall_breakdown_h": {w: round(v / 3600, 3) for w, v in wall.items()},
            "held_gpu_hours": round(n * total / 3600, 1),
            "busy_share_of_held": round(busy / (n * total), 3),
            "train_workers": workers,
            "shared_storage_mb_per_s": round(rate * p["storage_reads_per_image"] * p["image_bytes"] / 1e6, 1),
            "parquet_sink_mb_per_s": round(rate * p["k"] * p["row_bytes"] / 1e6, 2),
        }
    # what no number of GPUs removes: fixed stages, the caps that do not grow with GPUs, LoRA on fixed workers
    fixed_caps = [
        1 / plumbing_per_image,
        p["storage_mb_per_s"] * 1e6 / (p["storage_reads_per_image"] * p["image_bytes"]),
    ]
    if sc["detector"] == "cpu" and sc.get("grounders") != "spare_cpus":
        fixed_caps.append(p["grounder_actors"] / s["detection_cpu"])
    fixed_train = (
        0.0
        if sc.get("train_workers_follow_gpus")
        else train_s / (p["train_workers"] * (p["train_dp_efficiency"] if p["train_workers"] > 1 else 1))
    )
    floor = (
        p["autoscaler_first_worker_s"]
        + p["vm_boot_s"]
        + (1 + 3 * p["iterations"]) * p["model_load_s"]
        + (1 + p["iterations"]) * ev
        + p["iterations"] * (p["images"] / min(fixed_caps) + fixed_train)
    )
    scaling_work = p["iterations"] * (
        p["images"] * gpu_s_per_image + (train_s if sc.get("train_workers_follow_gpus") else 0)
    )
    per_gpu = {k: round(1 / v, 4) for k, v in on_gpu.items()}
    if sc["detector"] == "cpu":
        per_gpu["detection_cpu (per grounder actor)"] = round(1 / s["detection_cpu"], 5)
    busy_h = {k: round(p["iterations"] * p["images"] * v / 3600, 1) for k, v in on_gpu.items()}
    busy_h["lora"] = round(p["iterations"] * train_s / 3600, 1)
    if sc["eval"] == "gpu":
        busy_h["evaluation"] = round((1 + p["iterations"]) * ev / 3600, 2)
    return {
        "settings": sc,
        "seconds_per_image": {k: round(v, 4) for k, v in s.items() if not k.startswith("_")},
        "prefill_tokens_per_s_per_gpu": round(s["_prefill_tps"]),
        "decode_tokens_per_s_per_gpu": round(s["_decode_tps"]),
        "per_gpu_images_per_s": per_gpu,
        "pool_share_of_gpus": {name: round(f, 3) for name, f in share.items()},
        "bottleneck_stage": bottleneck,
        "gpu_s_per_image": round(gpu_s_per_image, 3),
        "images_per_s_per_gpu": round(1 / gpu_s_per_image, 4),
        "busy_gpu_hours": busy_h | {"total": round(sum(busy_h.values()), 1)},
        "busy_gpu_hours_per_iteration": round(
            (sum(busy_h.values()) - (ev / 3600 if sc["eval"] == "gpu" else 0)) / p["iterations"], 1
        ),
        "evaluation_h_each": round(ev / 3600, 3),
        "by_gpus": out_gpus,
        "non_scaling_floor_h": round(floor / 3600, 2),
        "gpus_where_floor_is_half_the_wall": round(scaling_work / floor) if scaling_work else None,
        "gpus_where_gpu_stages_stop_limiting": round(min(fixed_caps) * gpu_s_per_image),
    }


GIB = 2**30


def checks(p: dict) -> dict:
    """GPU and host memory at the recipe's settings, bf16 as load_vlm loads on a GPU: 1 /
    gpus_per_actor actors (a sampler and a scorer) share a GPU, each with its own copy of the
    weights, and may each be in their largest call at once. Activations are not counted."""
    per_gpu = round(1 / p["gpus_per_actor"])
    k, T, V, bs = p["k"], p["scoring_pad_tokens"], p["vocab"], p["batch_size"]
    plain = p["image_tokens"] + p["prompt_tokens"]
    grounded = plain + p["grounding_tokens"]
    kv = p["kv_bytes_per_token"] / GIB
    left = p["gpu_memory_gib"] - per_gpu * p["model_params"] * 2 / GIB
    # per image: HF generate holds K rows of KV cache (prompt + max_new_tokens)
    prior = k * (plain + p["max_new_tokens"]) * kv
    guided = k * (grounded + p["max_new_tokens"]) * kv
    # the scorer's grounded call: each prefix's KV cache selected out to its K rows, then extended by the
    # captions; the prefill's logits over every prefix position (K prefixes with svp.grounding=sample);
    # the captions' logits (bf16) + their float32 log-softmax + the log-probs kept
    scorer_kv = k * (grounded + T) * kv
    prefix_logits = (k if p["_grounding"] == "sample" else 1) * grounded * V * 2 / GIB
    call = k * T * V * (2 + 4 + 4) / GIB
    # then S and Delta on the device: both prompts' float32 log-probs + three temporaries of that size
    sums = k * T * V * 4 * 5 / GIB
    scorer = max(scorer_kv + prefix_logits + call, sums)
    pair = max(prior, guided) + scorer
    return {
        "actors_per_gpu": per_gpu,
        "gib_left_after_weights_bf16": round(left, 1),
        "prior_call_kv_cache_gib": round(prior * bs, 1),
        "guided_call_kv_cache_gib": round(guided * bs, 1),
        "scorer_call_kv_cache_gib": round(scorer_kv * bs, 1),
        "scorer_call_prefix_logits_gib": round(prefix_logits * bs, 1),
        "scorer_call_logprobs_gib": round(max(call, sums) * bs, 1),
        "scorer_call_peak_gib": round(scorer * bs, 1),
        "sampler_and_scorer_fit_at_batch_size": pair * bs <= left,
        "largest_batch_size_sampler_and_scorer": max(0, math.floor(left / pair)),
        "largest_batch_size_scorer_alone": max(
            0, math.floor((p["gpu_memory_gib"] - p["model_params"] * 2 / GIB) / scorer)
        ),
        # Korthikanti et al. 2022: s*b*h*(34 + 5*a*s/h) bytes per layer at 16 bits (32 layers, h 4096, 32 heads)
        "lora_activations_gib_per_worker_bf16_no_checkpointing": round(
            32
            * (plain + p["caption_tokens"])
            * p["train_batch_size"]
            * 4096
            * (34 + 5 * 32 * (plain + p["caption_tokens"]) / 4096)
            / GIB,
            1,
        ),
        "head_eval_weights_gib_fp32": round(p["model_params"] * 4 / GIB, 1),
        "a10g_24gb_two_actors_weights_gib_bf16": round(2 * p["model_params"] * 2 / GIB, 1),
    }


FRACTIONS = {"prefill_mfu", "lora_mfu", "train_dp_efficiency"}  # at most 1 in the sensitivity table


def sensitivity(p: dict, gpus: list[int], names: list[str]) -> list[dict]:
    """Each estimate x0.5 and x2 (a fraction at most 1) in the `as_coded` scenario: busy GPU-hours and
    the wall-clock at the most GPUs, largest change first."""
    sc = SCENARIOS[HEADLINE] | {"grounding": p["_grounding"]}
    base = scenario(p, sc, gpus)
    n = str(max(gpus))
    rows = []
    for name in names:
        got = {}
        for f in (0.5, 2.0):
            value = p[name] * f
            r = scenario(p | {name: min(value, 1.0) if name in FRACTIONS else value}, sc, gpus)
            got[f] = (r["busy_gpu_hours"]["total"], r["by_gpus"][n]["wall_h"])
        spread = max(
            abs(math.log(got[f][i] / (base["busy_gpu_hours"]["total"], base["by_gpus"][n]["wall_h"])[i]))
            for f in got
            for i in (0, 1)
        )
        rows.append(
            {
                "input": name,
                "x0.5": {"busy_gpu_hours": got[0.5][0], f"wall_h_{n}_gpus": got[0.5][1]},
                "x2": {"busy_gpu_hours": got[2.0][0], f"wall_h_{n}_gpus": got[2.0][1]},
                "_spread": spread,
            }
        )
    rows.sort(key=lambda r: -r["_spread"])
    return [{k: v for k, v in r.items() if k != "_spread"} for r in rows]


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", choices=sorted(GPU_PRESETS), default="a100", help="preset of the assumed GPU figures")
    ap.add_argument("--gpus", type=int, nargs="+", default=[8, 64])
    ap.add_argument(
        "--grounding",
        choices=["sample", "image"],
        default="sample",
        help="svp.grounding (configs/svp_coco.yaml: sample)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "scale_model.json")
    for name, (default, unit, _, source) in ASSUMED.items():
        ap.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            default=default,
            help=(f"[{unit}] {source}" + (" (default: from --gpu)" if default is None else "")).replace("%", "%%"),
        )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    a = parse(argv)
    preset = GPU_PRESETS[a.gpu]
    inputs = {}
    for name, (default, unit, role, source) in ASSUMED.items():
        value = getattr(a, name)
        value = preset[name] if value is None else value
        value = int(value) if float(value).is_integer() and abs(value) < 1e7 else value
        default = preset.get(name, default)
        if value != default:
            source = f"set on the command line (default {default}); " + source
        elif name in preset:
            source = f"preset {a.gpu}: " + source
        inputs[name] = {"value": value, "unit": unit, "kind": "assumed", "role": role, "source": source}
    inputs |= measured_inputs()
    p = {k: v["value"] for k, v in inputs.items()} | {"_grounding": a.grounding}
    scen = {name: scenario(p, {"grounding": a.grounding} | sc, a.gpus) for name, sc in SCENARIOS.items()}
    scen["as_coded_plumbing_per_row"] = scenario(
        p, SCENARIOS[HEADLINE] | {"grounding": a.grounding, "plumbing": "per_row"}, a.gpus
    )
    driver_mib = p["driver_rss_before_mib"] + p["driver_stage_mib_per_image"] * p["images"]
    result = {
        "what": "a scale model, not a GPU measurement: no GPU was available (docs/results/scale.md)",
        "command": "python benchmarks/scale_model.py" + (f" --gpu {a.gpu}" if a.gpu != "a100" else ""),
        "gpu": a.gpu,
        "gpus": a.gpus,
        "grounding": a.grounding,
        "inputs": inputs,
        "scenarios": scen,
        "driver_rss_mib_at_images_extrapolated": round(driver_mib, 1),
        "checks": checks(p),
        "sensitivity_as_coded": sensitivity(p, a.gpus, [k for k, v in inputs.items() if v["role"] == "estimate"]),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    for name, r in scen.items():
        line = "; ".join(
            f"{n} GPUs {g['wall_h']} h ({g['limited_by']}, {g['held_gpu_hours']} GPU-h held)"
            for n, g in r["by_gpus"].items()
        )
        print(f"{name:26s} busy {r['busy_gpu_hours']['total']:8.1f} GPU-h, bottleneck {r['bottleneck_stage']}: {line}")
    print(f"wrote {a.out}")
    return result


if __name__ == "__main__":
    main()
