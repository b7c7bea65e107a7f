"""Scale model of SVP on a GPU cluster: per-GPU images/s per stage, GPU-hours and wall-clock for
N images at K samples on 8 and 64 GPUs, and where the pipeline stops scaling.

A model, not a GPU measurement (no GPU was available). Each input is MEASURED on the dev machine
(2 CPU cores: read from benchmarks/results/*.json, or one of two one-off timings named in
ONE_OFF) or ASSUMED (an option below, default with its source). The work per image follows the
code as it runs today (docs/results/scale.md):

  prior sampling    K samples of the plain prompt (HF generate repeats the prompt K times;
                    vLLM caches its prefill)
  grounding         K detector calls per image in both svp.grounding modes (with "image" the K
                    calls are identical); GroundingActor gets no GPU, so GroundingDINO runs on CPUs
  guided sampling   one sample per grounded prompt (K prompts)
  scoring           each guided caption teacher-forced under the grounded and the plain prompt;
                    one prefill per distinct (image, prompt): the plain prompt once, the grounded
                    one once ("image") or K times ("sample"); full-vocabulary log-probs go to the
                    host, where S and Delta are summed on CPU
  LoRA              ceil(top_fraction * K) kept captions per image, train.num_workers GPUs
  evaluation        greedy captions of eval_images in the driver process (base + each iteration)

Scenarios: `as_coded` (fp32 weights: load_vlm's default dtype; detector on resources.grounder_actors
CPU actors; evaluation in the driver on the CPU head node), `as_coded_spare_cpus` (grounders on
every spare vCPU of the GPU nodes: a config change), `estimate` (bf16 weights, detector and
evaluation on GPUs: code changes), `estimate_vllm` (model.engine=vllm), `best_case` (vllm,
svp.grounding=image with one detector call per image, S and Delta summed on the GPU,
train.num_workers = the GPUs), `estimate_plumbing_per_row` (`estimate` with the measured plumbing
time read per row instead of per block: the pessimistic reading).

    .venv/bin/python benchmarks/scale_model.py [--gpu a100|h100] [--gpus 8 64] [--decode-tps-hf 1500 ...]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEV_THREADS = 2  # torch threads of the one-off timings below

# One-off timings on the dev machine (2 cores, shared with a CI run), not in a results file; the
# snippets are in docs/results/scale.md.
ONE_OFF = {
    "detector_cpu_s_per_call_dev": (
        32.7,
        "s/call",
        "one-off: random-init transformers GroundingDinoConfig() (= grounding-dino-tiny's architecture, "
        "172M parameters), one 800x1200 image + 24 text tokens, torch 2 threads, second of two calls",
    ),
    "host_reduce_elements_per_s_dev": (
        4.7e7,
        "elements/s",
        "one-off: s_score + delta_score (groundloop scoring) on (8, 60, 32064) float32 log-prob tensors, "
        "torch 2 threads; elements of one prompt's tensor per second",
    ),
}

# Assumed GPU figures per preset (bf16 unless named fp32). Sources: vendor spec sheets (dense, no
# sparsity) and common HF / vLLM practice; none measured here.
GPU_PRESETS = {
    "a100": {
        "peak_bf16_tflops": 312,
        "peak_fp32_tflops": 19.5,
        "prefill_mfu": 0.45,
        "decode_tps_hf": 1500,
        "decode_tps_vllm": 4000,
        "detector_gpu_calls_per_s": 8,
        "d2h_gb_per_s": 10,
        "lora_mfu": 0.35,
        "vcpus_per_gpu": 12,
        "gpu_memory_gib": 80,
    },
    "h100": {
        "peak_bf16_tflops": 989,
        "peak_fp32_tflops": 67,
        "prefill_mfu": 0.35,
        "decode_tps_hf": 2500,
        "decode_tps_vllm": 8000,
        "detector_gpu_calls_per_s": 12,
        "d2h_gb_per_s": 20,
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
        "the question (COCO train2017 has 118,287; train2014, which configs/svp_coco.yaml reads, 82,783)",
    ),
    "k": (20, "samples/image", "setting", "configs/svp_coco.yaml sampling.k"),
    "iterations": (1, "", "setting", "configs/svp_coco.yaml svp.iterations"),
    "top_fraction": (0.2, "", "setting", "configs/svp_coco.yaml svp.top_fraction"),
    "batch_size": (8, "images/block", "setting", "configs/svp_coco.yaml resources.batch_size"),
    "gpus_per_actor": (0.5, "GPU", "setting", "configs/svp_coco.yaml resources.gpus_per_actor"),
    "actor_cpus": (4, "CPUs", "setting", "configs/svp_coco.yaml resources.sampler_cpus = scorer_cpus"),
    "grounder_actors": (2, "actors", "setting", "configs/svp_coco.yaml resources.grounder_actors"),
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
    "vocab": (32064, "tokens", "spec", "llava-1.5-7b-hf's vocabulary (S and Delta sum over all of it)"),
    "lm_params": (6.74e9, "parameters", "spec", "Llama-2-7B / Vicuna-7B language model of LLaVA-1.5"),
    "model_params": (7.06e9, "parameters", "spec", "llava-1.5-7b-hf with its vision tower and projector"),
    "kv_bytes_per_token": (524_288, "bytes (bf16)", "spec", "2 x 32 layers x 4096 x 2 bytes (Llama-2-7B, MHA)"),
    "peak_bf16_tflops": (None, "TFLOP/s", "spec", "vendor spec sheet, dense bf16"),
    "peak_fp32_tflops": (
        None,
        "TFLOP/s",
        "spec",
        "vendor spec sheet, fp32 without TF32 (torch's default matmul precision)",
    ),
    "prefill_mfu": (
        None,
        "",
        "estimate",
        "HF eager forward of ~600-800-token rows, bf16; prefill tokens/s = peak x MFU / (2 x lm_params)",
    ),
    "decode_tps_hf": (
        None,
        "tokens/s/GPU",
        "estimate",
        "HF generate, bf16, batches of 40-160 sequences, useful "
        "tokens after padding waste (docs/runbook.md uses 1,500 on A100)",
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
        "GroundingDINO-tiny (HF, fp32) at 800x1067, batches of 8",
    ),
    "d2h_gb_per_s": (None, "GB/s", "estimate", "pageable .cpu() copies of the scorer's float32 log-probs"),
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
        "cluster.yaml's head (m6i.2xlarge, 8 vCPUs, AVX-512 fp32 at ~40 % of peak) for the driver's evaluation",
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
    "as_coded": {"dtype": "fp32", "engine": "hf", "detector": "cpu", "grounders": "config", "eval": "head_cpu"},
    "as_coded_spare_cpus": {
        "dtype": "fp32",
        "engine": "hf",
        "detector": "cpu",
        "grounders": "spare_cpus",
        "eval": "head_cpu",
    },
    "estimate": {"dtype": "bf16", "engine": "hf", "detector": "gpu", "eval": "gpu"},
    "estimate_vllm": {"dtype": "bf16", "engine": "vllm", "detector": "gpu", "eval": "gpu"},
    "best_case": {
        "dtype": "bf16",
        "engine": "vllm",
        "detector": "gpu",
        "eval": "gpu",
        "grounding": "image",
        "dedupe": True,
        "scores_on_gpu": True,
        "train_workers_follow_gpus": True,
    },
}


def stage_seconds(p: dict, sc: dict) -> dict[str, float]:
    """Seconds per image of each stage on one whole GPU (detection_cpu: on one CPU grounder actor)."""
    k, L, T = p["k"], p["caption_tokens"], p["scoring_pad_tokens"]
    plain = p["image_tokens"] + p["prompt_tokens"]
    grounded = plain + p["grounding_tokens"]
    image_mode, hf = sc["grounding"] == "image", sc["engine"] == "hf"
    peak = p["peak_fp32_tflops"] if sc["dtype"] == "fp32" else p["peak_bf16_tflops"]
    prefill_tps = peak * 1e12 * p["prefill_mfu"] / (2 * p["lm_params"])
    # at batches of 40-160 sequences fp32 decode is compute-bound: no faster than fp32 prefill
    decode_hf = min(p["decode_tps_hf"], prefill_tps)
    decode = decode_hf if hf else p["decode_tps_vllm"]  # vLLM runs the checkpoint's 16-bit weights
    prefill_gen = prefill_tps if hf else p["peak_bf16_tflops"] * 1e12 * p["prefill_mfu"] / (2 * p["lm_params"])
    prior_prefill = k * plain if hf else plain
    if hf:
        guided_prefill = k * grounded
    elif image_mode:
        guided_prefill = grounded  # K identical prompts: one cached prefill
    else:
        guided_prefill = p["image_tokens"] + k * (grounded - p["image_tokens"])  # the image's tokens cached
    score_tokens = plain + (grounded if image_mode else k * grounded) + 2 * k * T
    host_rate = p["host_reduce_elements_per_s_dev"] * p["actor_cpus"] / DEV_THREADS * p["cpu_core_speedup"]
    calls = 1 if (image_mode and sc.get("dedupe")) else k
    cpu_call_s = p["detector_cpu_s_per_call_dev"] * DEV_THREADS / p["grounder_cpus"] / p["cpu_core_speedup"]
    decode_img = p["image_decode_s"]
    return {
        "prior_sampling": k * L / decode + prior_prefill / prefill_gen + decode_img,
        "guided_sampling": k * L / decode + guided_prefill / prefill_gen + k * decode_img,
        "scoring_forward": score_tokens / prefill_tps + k * decode_img,
        # S and Delta summed on the host over (rows, T, vocab) float32 log-probs of both prompts
        "scoring_to_host": 0.0 if sc.get("scores_on_gpu") else 2 * k * T * p["vocab"] * 4 / (p["d2h_gb_per_s"] * 1e9),
        "scoring_host_reduce": 0.0 if sc.get("scores_on_gpu") else k * T * p["vocab"] / host_rate,
        "detection_gpu": calls / p["detector_gpu_calls_per_s"] + k * decode_img,
        "detection_cpu": calls * cpu_call_s + k * decode_img,
        "_prefill_tps": prefill_tps,
        "_decode_tps": decode,
    }


def lora_gpu_s(p: dict, sc: dict) -> float:
    kept = p["images"] * max(1, math.ceil(p["top_fraction"] * p["k"]))
    tokens = kept * (p["image_tokens"] + p["prompt_tokens"] + p["caption_tokens"]) * p["train_epochs"]
    peak = p["peak_fp32_tflops"] if sc["dtype"] == "fp32" else p["peak_bf16_tflops"]
    return p["lora_flops_factor"] * p["lm_params"] * tokens / (peak * 1e12 * p["lora_mfu"])


def eval_s(p: dict, sc: dict, s: dict) -> float:
    """Wall seconds of one evaluation (greedy captions of eval_images in the driver process)."""
    tokens = p["eval_images"] * (p["image_tokens"] + p["prompt_tokens"] + p["caption_tokens"])
    if sc["eval"] == "head_cpu":
        return tokens * 2 * p["lm_params"] / (p["head_cpu_gflops"] * 1e9)
    return p["eval_images"] * (
        (p["image_tokens"] + p["prompt_tokens"]) / s["_prefill_tps"] + p["caption_tokens"] / s["_decode_tps"]
    )


def scenario(p: dict, sc: dict, gpus: list[int]) -> dict:
    s = stage_seconds(p, sc)
    scoring = s["scoring_forward"] + s["scoring_to_host"] + s["scoring_host_reduce"]
    on_gpu = {"prior_sampling": s["prior_sampling"], "guided_sampling": s["guided_sampling"], "scoring": scoring}
    if sc["detector"] == "gpu":
        on_gpu["detection"] = s["detection_gpu"]
    # prior and guided pools share resources.sampler_actors (same size); scorer and detector sized freely
    gpu_s_per_image = 2 * max(on_gpu["prior_sampling"], on_gpu["guided_sampling"]) + sum(
        v for name, v in on_gpu.items() if not name.endswith("_sampling")
    )
    train_s = lora_gpu_s(p, sc)
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
        "bottleneck_stage": max(on_gpu, key=on_gpu.get),
        "gpu_s_per_image": round(gpu_s_per_image, 3),
        "balanced_images_per_s_per_gpu": round(1 / gpu_s_per_image, 4),
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


def checks(p: dict) -> dict:
    """GPU and host memory at the recipe's settings: 1 / gpus_per_actor actors (a sampler and a
    scorer) share a GPU, each with its own copy of the weights; fp32 as coded, bf16 as changed."""
    per_gpu = round(1 / p["gpus_per_actor"])
    rows = p["batch_size"] * p["k"]
    seq = p["image_tokens"] + p["prompt_tokens"] + p["caption_tokens"]
    out = {"actors_per_gpu": per_gpu}
    for dtype, b in (("fp32", 4), ("bf16", 2)):
        left = p["gpu_memory_gib"] - per_gpu * p["model_params"] * b / 2**30
        kv_image = (
            p["k"]
            * (p["image_tokens"] + p["prompt_tokens"] + p["max_new_tokens"])
            * p["kv_bytes_per_token"]
            * b
            / 2
            / 2**30
        )
        logits = rows * p["scoring_pad_tokens"] * p["vocab"] * (b + 4 + 4 if b == 2 else 8) / 2**30
        out[dtype] = {
            "gib_left_after_weights": round(left, 1),
            "prior_call_kv_cache_gib": round(kv_image * p["batch_size"], 1),
            "scorer_call_logits_gib": round(logits, 1),
            "both_fit_at_batch_size": kv_image * p["batch_size"] + logits <= left,
            "largest_batch_size_that_fits": max(0, math.floor(left / (kv_image + logits / p["batch_size"]))),
        }
    # Korthikanti et al. 2022: s*b*h*(34 + 5*a*s/h) bytes per layer at 16 bits (32 layers, h 4096, 32 heads)
    act = 32 * seq * p["train_batch_size"] * 4096 * (34 + 5 * 32 * seq / 4096) / 2**30
    out["lora_activations_gib_per_worker_bf16_no_checkpointing"] = round(act, 1)
    out["scorer_call_host_gib_fp32"] = round(rows * p["scoring_pad_tokens"] * p["vocab"] * 4 * 3 / 2**30, 1)
    return out


FRACTIONS = {"prefill_mfu", "lora_mfu", "train_dp_efficiency"}  # at most 1 in the sensitivity table


def sensitivity(p: dict, gpus: list[int], names: list[str]) -> list[dict]:
    """Each estimate x0.5 and x2 (a fraction at most 1) in the `estimate` scenario: busy GPU-hours and
    the wall-clock at the most GPUs, largest change first."""
    sc = SCENARIOS["estimate"] | {"grounding": p["_grounding"]}
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
    scen["estimate_plumbing_per_row"] = scenario(
        p, SCENARIOS["estimate"] | {"grounding": a.grounding, "plumbing": "per_row"}, a.gpus
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
        "sensitivity_estimate": sensitivity(p, a.gpus, [k for k, v in inputs.items() if v["role"] == "estimate"]),
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
