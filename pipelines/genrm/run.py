"""Train VL-GenRM, the generative reward model, on vision-expert-verified preference pairs.

1. Ray Data streams the images through a pool of VLM sampler actors (k responses each) and a
   pool of vision-expert actors (the detector checks every object, size and count claim).
2. Pairs: per image, a fully verified response over one with a refuted claim (pairs the
   expert cannot separate are dropped); the training judgement is a critique composed from
   the expert's evidence, then the verdict. A/B order is random.
3. Stage 1: Ray Train LoRA-fine-tunes the VLM on the judgements with the mixture loss.
4. Stage 2, each round: Ray Data judge actors sample critiques for training pairs with the
   current adapter; critiques with the right verdict and a margin above the calibrated
   threshold are kept; Ray Train continues the LoRA on them.
5. Every round's adapter is judged on ShapesWorld-RewardBench (accuracy per category).

    python pipelines/genrm.py --config configs/genrm_shapes.yaml [pairs.labeler=self ...]
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import pandas as pd
import ray
import torch

from actors.expert import ExpertActor
from actors.judge import JudgeActor, claim_margins
from actors.sampler import SamplerActor
from groundloop import config as config_lib
from groundloop.data.coco import load_dataset
from groundloop.finetune import add_lora, build_example, collate, grounded_example, grounded_loss
from groundloop.genrm import critique, losses
from groundloop.genrm import judge as genrm
from groundloop.models import REWARD_MODEL_FILE, load_vlm
from groundloop.worlds import reward_bench as rb
from pipelines.common import cli, training
from pipelines.common.pools import ActorStage
from pipelines.common.sink import PartSink
from pipelines.genrm.config import GenRMConfig
from pipelines.genrm.rows import (
    bench_pairs,
    make_pairs,
    probe_rows,
    self_labelled,
    verify_rows,
    vocabulary,
)


def sample_and_check(cfg: GenRMConfig, rows: list[dict], responses: pd.DataFrame | None = None) -> ray.data.Dataset:
    """The graph: one row per (image, response): claims and the expert's verdict on each, and
    `image_samples` (how many rows the image has). With `responses` (image_id, path, response,
    error, sample rows of an earlier run; whole images) only the expert runs, so expert variants
    (the noise study) judge the very same responses."""
    res, smp = cfg.resources, cfg.sampling
    if responses is None:
        ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 8)))
        sampler = {
            "model_spec": cfg.model.vlm,
            "mode": "prior",
            "k": smp.k,
            "temperature": smp.temperature,
            "top_p": smp.top_p,
            "max_new_tokens": smp.max_new_tokens,
            "seed": cfg.run.seed,
        }
        ds = ActorStage(SamplerActor, sampler, res.pool("sampler")).apply(ds)
        ds = ds.map_batches(
            lambda b: (
                b.rename(columns={"prior": "response"})
                .assign(image_samples=b["image_priors"].map(len))
                .drop(columns=["image_priors"])
            ),
            batch_format="pandas",
        )
    else:
        n = responses.groupby("image_id")["image_id"].transform("size")
        ds = ray.data.from_pandas(
            responses[["image_id", "path", "error", "sample", "response"]].assign(image_samples=n)
        )
    return expert_checks(cfg, ds)


def expert_checks(cfg: GenRMConfig, ds: ray.data.Dataset) -> ray.data.Dataset:
    """The expert pool over rows of responses (or of `phrases`): claims, holds and boxes."""
    res = cfg.resources
    expert = {
        "detector_spec": cfg.model.detector,
        "vocabulary": vocabulary(cfg).name,
        "miss_rate": cfg.pairs.miss_rate,
        "false_alarm_rate": cfg.pairs.false_alarm_rate,
        "seed": cfg.run.seed,
    }
    ds = ActorStage(ExpertActor, expert, res.pool("expert", res.batch_size * cfg.sampling.k, gpus=False)).apply(ds)
    return ds


def plain_checks(df: pd.DataFrame) -> pd.DataFrame:
    """The expert's columns as plain lists (Arrow-typed list columns do not read back from parquet in pandas)."""
    return df.assign(
        claims=[list(x) for x in df["claims"]],
        holds=[list(map(bool, x)) for x in df["holds"]],
        boxes=[[[list(map(float, b)) for b in bs] for bs in x] for x in df["boxes"]],
    )


def samples_to(cfg: GenRMConfig, rows: list[dict], folder: Path, responses: pd.DataFrame | None = None) -> pd.DataFrame:
    """`sample_and_check`'s rows streamed into parquet parts under `folder` as they are produced
    (pipelines.common.sink), resumable per image: a re-run samples (or, with `responses`,
    checks) only the images not written there. Read back in input order, each image's
    responses by `sample`."""
    smp, pairs = cfg.sampling, cfg.pairs
    source = {
        "graph": "sample_and_check",
        "models": [cfg.model.vlm, cfg.model.detector],
        "sampling": [smp.k, smp.temperature, smp.top_p, smp.max_new_tokens],
        "expert": [vocabulary(cfg).name, pairs.miss_rate, pairs.false_alarm_rate],
        "responses_from": cfg.data.responses_from,
        "seed": cfg.run.seed,
    }
    sink = PartSink(folder, source)
    inputs = (
        rows if responses is None else responses[["image_id", "path", "error", "sample", "response"]].to_dict("records")
    )
    sink.run(
        inputs,
        lambda todo: (
            sample_and_check(cfg, todo) if responses is None else sample_and_check(cfg, [], pd.DataFrame(todo))
        ),
        lambda row: int(row["image_samples"]),
        lambda df: plain_checks(df.drop(columns=["image_samples"])),
    )
    return plain_checks(sink.read(dict.fromkeys(int(r["image_id"]) for r in inputs)))


def probe_checks(cfg: GenRMConfig, samples: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """Stage 0's extra questions (`stage0.probes` object phrases per image, `pairing.probe_phrases`)
    labelled by the expert, or by the VLM's own belief for pairs.labeler=self (it made none of
    them on that image, so it believes none); resumed from probes.parquet."""
    out = run_dir / "probes.parquet"
    if out.exists():
        return pd.read_parquet(out)
    probes = probe_rows(samples, cfg.stage0.probes, cfg.run.seed, vocabulary(cfg))
    if cfg.pairs.labeler == "self":
        checked = probes.assign(claims=probes["phrases"], holds=[[False] * len(p) for p in probes["phrases"]])
    else:
        checked = plain_checks(expert_checks(cfg, ray.data.from_pandas(probes.assign(error=""))).to_pandas())
    checked = checked[checked["error"] == ""] if "error" in checked else checked
    checked = checked.drop(columns=["phrases"])  # the claims, as asked
    checked.to_parquet(out)
    return checked


def verify_loop(config: dict) -> None:
    """Runs on the Ray Train worker: stage 0, full fine-tuning on the yes/no claim questions."""
    training.setup_worker(config)
    model, processor = load_vlm(config["model"])
    weight = config["attn_weight"]
    if weight > 0:
        model.set_attn_implementation("eager")  # attention weights for grounded attention
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=config["lr"])
    rows = ray.train.get_dataset_shard("train")
    img = training.Images()
    losses: list[float] = []
    passes = 0
    while len(losses) < config["steps"]:
        passes += 1
        for b in rows.iter_batches(
            batch_size=config["batch_size"],
            batch_format="pandas",
            local_shuffle_buffer_size=4096,
            local_shuffle_seed=config["seed"] + passes,  # the same shuffle on every run of a seed
        ):
            ex = [
                grounded_example(
                    processor, img(r.path), r.question, r.answer, r.phrase, r.boxes, model.config.image_token_id
                )
                if weight > 0
                else build_example(processor, img(r.path), r.question, r.answer)
                for r in b.itertuples()
            ]
            loss = grounded_loss(model, collate(ex, processor), weight, config["attn_layer"], config["attn_head"])
            training.step(loss, opt, None, losses, steps=config["steps"], label="stage 0", every=100)
            if len(losses) >= config["steps"]:
                break
    training.report(model, losses, processor)


def train_verify(cfg: GenRMConfig, base: str, rows: pd.DataFrame, out: Path) -> Path:
    s0, tr = cfg.stage0, cfg.train
    config = {
        "model": base,
        "lr": s0.lr,
        "steps": s0.steps,
        "batch_size": s0.batch_size,
        "attn_weight": s0.attn_weight,
        "attn_layer": s0.attn_layer,
        "attn_head": s0.attn_head,
        "seed": cfg.run.seed,
        "torch_threads": tr.torch_threads,
    }
    training.fit(
        verify_loop,
        config,
        rows,
        out,
        name=f"{cfg.run.name}-stage0",
        num_workers=1,
        cpus_per_worker=tr.cpus_per_worker,
        use_gpu=cfg.resources.gpus_per_actor > 0,
    )
    return out


def train_loop(config: dict) -> None:
    """Runs on every Ray Train worker: LoRA with the mixture loss, cosine schedule with warmup."""
    training.setup_worker(config)
    model, processor = load_vlm(config["base"])
    weight = config["attn_weight"]
    if weight > 0:
        model.set_attn_implementation("eager")  # attention weights for grounded attention
    model = add_lora(
        model, config["r"], config["alpha"], config["dropout"], config["target_modules"], adapter=config["adapter"]
    )
    model.train()
    verdict_ids = genrm.label_ids(processor.tokenizer)
    image_token_id = model.config.image_token_id
    steps = training.epoch_steps(config["n_rows"], config["batch_size"], config["epochs"])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config["lr"])
    sched = training.cosine_schedule(opt, steps, config["warmup"])
    img = training.Images()
    shard = ray.train.get_dataset_shard("train")
    losses: list[float] = []
    for epoch in range(config["epochs"]):
        for b in shard.iter_batches(
            batch_size=config["batch_size"],
            batch_format="pandas",
            local_shuffle_buffer_size=4096,
            local_shuffle_seed=config["seed"] + epoch,  # the same shuffle on every run of a seed
        ):
            ex = [
                genrm.example(
                    processor,
                    img(r.path),
                    critique.judge_prompt(r.question, r.a, r.b),
                    r.thought,
                    r.label,
                    grounding=json.loads(getattr(r, "grounding", "[]") or "[]") if weight > 0 else (),
                    image_token_id=image_token_id,
                    learn=config["learn"],
                    no_weight=config["no_weight"],
                )
                for r in b.itertuples()
            ]
            loss = genrm.loss(
                model,
                genrm.collate(ex, processor),
                verdict_ids,
                config["lam"],
                weight,
                config["attn_layer"],
                config["attn_head"],
            )
            training.step(loss, opt, sched, losses, steps=steps, clip=model)
    training.report(model, losses)


def train(
    cfg: GenRMConfig,
    base: str,
    rows: pd.DataFrame,
    out: Path,
    adapter: str | None,
    lr: float,
    epochs: int,
    threshold: float = 0.0,
) -> Path:
    tr, lora = cfg.train, cfg.train.lora
    config = {
        "base": base,
        "adapter": adapter,
        "r": lora.r,
        "alpha": lora.alpha,
        "dropout": lora.dropout,
        "target_modules": lora.target_modules,
        "lr": lr,
        "warmup": tr.warmup,
        "epochs": epochs,
        "batch_size": tr.batch_size,
        "lam": tr.lam,
        "n_rows": len(rows),
        "seed": cfg.run.seed,
        # grounded attention in stage 1 only: stage 2 trains on sampled critiques
        "attn_weight": tr.attn_weight if adapter is None else 0.0,
        "attn_layer": cfg.stage0.attn_layer,
        "attn_head": cfg.stage0.attn_head,
        "learn": tr.learn,
        "no_weight": tr.no_weight,
        "torch_threads": tr.torch_threads,
    }
    training.fit(
        train_loop,
        config,
        rows.sample(frac=1.0, random_state=cfg.run.seed),
        out,
        name=f"{cfg.run.name}-{out.parent.name}",
        num_workers=tr.num_workers,
        cpus_per_worker=tr.cpus_per_worker,
        use_gpu=cfg.resources.gpus_per_actor > 0,
    )
    (out / REWARD_MODEL_FILE).write_text(
        json.dumps(
            {
                "base": base,
                "vocabulary": vocabulary(cfg).name,
                "check_threshold": threshold,
                "recipe": config_lib.to_dict(cfg),
            }
        )
    )
    return out


def judge(
    cfg: GenRMConfig, base: str, pairs: pd.DataFrame, adapter: str, samples: int = 1, temperature: float = 0.0
) -> pd.DataFrame:
    """Judgements of `pairs` (path, question, a, b, ...) by the reward model with `adapter`."""
    res = cfg.resources
    ds = ray.data.from_pandas(pairs).repartition(max(1, min(len(pairs) // res.judge_batch, 16)))
    judge = {
        "model_spec": base,
        "adapter": adapter,
        "samples": samples,
        "temperature": temperature,
        "max_new_tokens": cfg.sampling.judge_max_new_tokens,
        "seed": cfg.run.seed,
        "torch_threads": res.judge_threads,
        "critique": cfg.sampling.critique,
        "check_threshold": check_threshold(adapter),
        "vocabulary": vocabulary(cfg).name,
    }
    ds = ActorStage(JudgeActor, judge, res.pool("judge", res.judge_batch)).apply(ds)
    return ds.to_pandas()


def check_threshold(adapter: str | Path) -> float:
    """The factored checks' threshold an adapter was trained with (0 when none was calibrated)."""
    meta = Path(adapter) / REWARD_MODEL_FILE
    return float(json.loads(meta.read_text()).get("check_threshold", 0.0)) if meta.exists() else 0.0


CHECK_GRID = [x / 4 for x in range(-8, 13)]  # -2 ... 3 in steps of 0.25


def calibrate_checks(cfg: GenRMConfig, base: str, pairs: pd.DataFrame, run_dir: Path) -> dict:
    """The factored checks' threshold, from the base (stage-0) VLM's margins on the claims of
    `stage0.calibration_pairs` training pairs (`critique.calibrate_check_threshold`); resumed from
    check_threshold.json. 0 without factored critiques or calibration pairs."""
    out = run_dir / "check_threshold.json"
    if out.exists():
        return json.loads(out.read_text())
    n = min(cfg.stage0.calibration_pairs, len(pairs))
    if cfg.sampling.critique != "factored" or n == 0:
        return {"threshold": 0.0}
    subset = pairs.sample(n=n, random_state=cfg.run.seed)
    words = vocabulary(cfg)
    claims = [
        ([c.text for c in words.claims(r.a)], [c.text for c in words.claims(r.b)], r.label) for r in subset.itertuples()
    ]
    asked = list(dict.fromkeys((path, c) for path, (ca, cb, _) in zip(subset["path"], claims) for c in ca + cb))
    task = ray.remote(claim_margins).options(num_cpus=cfg.resources.judge_cpus)
    margin = dict(
        zip(
            asked,
            ray.get(
                task.remote(base, [p for p, _ in asked], [c for _, c in asked], words.name, cfg.resources.judge_threads)
            ),
        )
    )
    threshold, accuracy = critique.calibrate_check_threshold(
        claims, [[margin[path, c] for c in ca + cb] for path, (ca, cb, _) in zip(subset["path"], claims)], CHECK_GRID
    )
    result = {"threshold": threshold, "pairs": n, "grid": CHECK_GRID, "tally_accuracy": accuracy}
    out.write_text(json.dumps(result, indent=1))
    return result


def evaluate(cfg: GenRMConfig, base: str, adapter: str, out: Path) -> dict[str, float]:
    """Accuracy per RewardBench category: the verdict's preference (P(A) >= 0.5) against the truth."""
    judged = judge(cfg, base, bench_pairs(cfg), adapter)
    judged["correct"] = [
        (pa >= pb) == (lab == "A") for pa, pb, lab in zip(judged["logp_a"], judged["logp_b"], judged["label"])
    ]
    judged["written_correct"] = judged["verdict"] == judged["label"]
    judged.to_parquet(out)
    acc = rb.accuracy(list(judged["category"]), list(judged["correct"]))
    # `hallucination` by form (the rejected caption adds / swaps in / swaps in and drops an object)
    acc |= {
        k: v for k, v in rb.accuracy(list(judged["form"]), list(judged["correct"])).items() if k not in ("", "overall")
    }
    acc["written_verdict_overall"] = float(judged["written_correct"].mean())
    # a judge that always prefers one position scores the bench's A/B label split, not 0.5
    acc["picks_a"] = float((judged["logp_a"] >= judged["logp_b"]).mean())
    return acc


def stage2_rows(
    cfg: GenRMConfig, base: str, pairs: pd.DataFrame, adapter: str, round_dir: Path
) -> tuple[pd.DataFrame, dict]:
    """Sampled critiques of training pairs that pass margin-based rejection, as training rows."""
    s2 = cfg.stage2
    subset = pairs.sample(n=min(s2.n_pairs, len(pairs)), random_state=cfg.run.seed + int(round_dir.name[-1]))
    judged = judge(cfg, base, subset, adapter, samples=s2.samples, temperature=s2.temperature)
    judged = judged[judged["error"] == ""]
    lp = list(zip(judged["logp_a"], judged["logp_b"], judged["label"]))
    right = [a if lab == "A" else b for a, b, lab in lp]
    wrong = [b if lab == "A" else a for a, b, lab in lp]
    margins = losses.margin(torch.tensor(right), torch.tensor(wrong)).tolist()
    # The verdict is read from its log-probabilities after the critique (as in judging), so a
    # critique is correct when they favour the right response; the training row then writes the
    # right verdict after it whatever the sample wrote there.
    correct = [m > 0 for m in margins]
    keep, thresholds = losses.reject_per_label(margins, correct, list(judged["label"]), s2.retention)
    judged = judged.assign(margin=margins, correct=correct, kept=keep)
    judged.to_parquet(round_dir / "critiques.parquet")
    kept = judged[judged["kept"]].drop_duplicates(["image_id", "a", "b", "thought"])
    stats = {
        "sampled": len(judged),
        "correct": int(sum(correct)),
        "kept": int(sum(keep)),
        "kept_unique": len(kept),
        "retention": sum(keep) / max(1, len(judged)),
        "threshold": {k: t if math.isfinite(t) else None for k, t in thresholds.items()},
    }
    return kept[["image_id", "path", "question", "a", "b", "label", "thought"]].reset_index(drop=True), stats


def ship(adapter: Path, base: str, out: Path, cfg: GenRMConfig) -> None:
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(adapter, out, ignore=shutil.ignore_patterns("losses.json"))
    spec = base
    if base != cfg.model.vlm:  # the stage-0 VLM travels with the adapter
        shutil.copytree(base, out / "base", ignore=shutil.ignore_patterns("losses.json"))
        spec = "base"
    (out / REWARD_MODEL_FILE).write_text(
        json.dumps(
            {
                "base": spec,
                "vocabulary": vocabulary(cfg).name,
                "check_threshold": check_threshold(adapter),
                "recipe": config_lib.to_dict(cfg),
            },
            indent=1,
        )
    )


def load_samples(cfg: GenRMConfig, run_dir: Path) -> pd.DataFrame:
    """Stage A: responses with the expert's checks (resumed from samples.parquet); unreadable
    images go to errors.jsonl."""
    samples_file = run_dir / "samples.parquet"
    if samples_file.exists():
        samples = pd.read_parquet(samples_file)
    else:
        records = load_dataset(Path(cfg.data.path).resolve())[: cfg.data.n_images]
        rows = [{"image_id": r.image_id, "path": str(r.path), "error": ""} for r in records]
        earlier = pd.read_parquet(cfg.data.responses_from) if cfg.data.responses_from else None
        samples = samples_to(cfg, rows, run_dir / "samples.parts", earlier)  # a cut-short stage resumes per image
        samples.to_parquet(samples_file)
    errors = samples[samples["error"] != ""].drop_duplicates("image_id")
    if len(errors):
        errors[["image_id", "path", "error"]].to_json(run_dir / "errors.jsonl", orient="records", lines=True)
    return samples[(samples["error"] == "") & (samples["response"].str.len() > 0)]


def run_round(
    cfg: GenRMConfig,
    base: str,
    pairs: pd.DataFrame,
    r: int,
    adapter: Path | None,
    round_dir: Path,
    threshold: float = 0.0,
) -> tuple[Path, dict]:
    """Stage 1 (r = 0) or stage-2 round r: the new adapter and the round's stats (resumed when
    the round's adapter exists)."""
    if (round_dir / "adapter" / "adapter_config.json").exists():
        return round_dir / "adapter", json.loads((round_dir / "stats.json").read_text())
    if r == 0:
        new = train(cfg, base, pairs, round_dir / "adapter", None, cfg.train.lr, cfg.train.epochs, threshold)
        stats = {}
        stats["rows"] = len(pairs)
    else:
        rows, stats = stage2_rows(cfg, base, pairs, str(adapter), round_dir)
        stats["rows"] = len(rows)
        if len(rows):
            new = train(
                cfg, base, rows, round_dir / "adapter", str(adapter), cfg.stage2.lr, cfg.stage2.epochs, threshold
            )
        else:  # nothing passed rejection: the round keeps the previous adapter
            new = Path(shutil.copytree(str(adapter), round_dir / "adapter", dirs_exist_ok=True))
    (round_dir / "stats.json").write_text(json.dumps(stats))
    return new, stats


def main(argv: list[str] | None = None) -> dict:
    p = cli.parser(__doc__, "configs/genrm_shapes.yaml", "stage2.rounds=1 pairs.labeler=self")
    p.add_argument(
        "--out",
        type=Path,
        help="also write the final reward model here as one relocatable folder "
        "(adapter + genrm.json, and the stage-0 VLM under base/)",
    )
    a = p.parse_args(argv)
    cfg = cli.load(GenRMConfig, a)
    run_dir = cli.start_run(cfg, "genrm")
    cli.init_ray()
    t = time.time()
    samples = load_samples(cfg, run_dir)
    timings = {"sample_check_s": time.time() - t}
    pairs = make_pairs(cfg, samples)
    pairs.to_parquet(run_dir / "pairs.parquet")
    n_verified = sum(len(h) > 0 and all(h) for h in samples["holds"])
    print(f"{len(pairs)} pairs from {len(samples)} responses ({n_verified} verified by the expert)", flush=True)
    # a local folder travels to the Ray Train workers as an absolute path (their cwd differs)
    base = str(Path(cfg.model.vlm).resolve()) if Path(cfg.model.vlm).is_dir() else cfg.model.vlm
    if cfg.stage0.steps > 0:
        t = time.time()
        stage0 = run_dir / "stage0" / "vlm"
        if cfg.stage0.vlm_from and not (stage0 / "config.json").exists():
            shutil.copytree(Path(cfg.stage0.vlm_from).resolve(), stage0)  # an earlier run's stage 0
        if not (stage0 / "config.json").exists():  # else resume
            labelled = samples if cfg.pairs.labeler == "expert" else self_labelled(samples, vocabulary(cfg))
            if cfg.stage0.attn_weight > 0 and "boxes" not in labelled:
                raise ValueError(
                    "stage 0's grounded attention needs the expert's boxes, and "
                    f"{run_dir / 'samples.parquet'} has none (made before grounded attention), "
                    "or pairs.labeler=self (no expert): set "
                    "stage0.attn_weight=0, or re-check the responses in a new run with "
                    "data.responses_from=<that file>"
                )
            if cfg.stage0.probes > 0:
                probes = probe_checks(cfg, samples, run_dir)
                print(
                    f"stage 0: {sum(map(len, probes['claims']))} probe questions, "
                    f"{sum(map(sum, probes['holds']))} confirmed",
                    flush=True,
                )
                labelled = pd.concat(
                    [labelled, probes[["path", "claims", "holds"] + (["boxes"] if "boxes" in labelled else [])]],
                    ignore_index=True,
                )
            rows0 = verify_rows(labelled, cfg.run.seed, vocabulary(cfg), cfg.stage0.balance)
            print(f"stage 0: {len(rows0)} yes/no claim questions", flush=True)
            train_verify(cfg, base, rows0, stage0)
        base = str(stage0)
        timings["stage0_s"] = time.time() - t
    calibration = calibrate_checks(cfg, base, pairs, run_dir)
    if cfg.sampling.critique == "factored":
        print(f"factored checks: threshold {calibration['threshold']} on the Yes-No margin", flush=True)
    rounds = []
    adapter: Path | None = None
    for r in range(cfg.stage2.rounds + 1):
        round_dir = run_dir / f"round{r}"
        round_dir.mkdir(exist_ok=True)
        t = time.time()
        adapter, stats = run_round(cfg, base, pairs, r, adapter, round_dir, calibration["threshold"])
        train_s, t = time.time() - t, time.time()
        acc = evaluate(cfg, base, str(adapter), round_dir / "bench.parquet")
        rounds.append(
            {
                "round": r,
                "adapter": str(adapter),
                "bench": acc,
                "stats": stats,
                "train_s": train_s,
                "eval_s": time.time() - t,
            }
        )
        print(f"round {r}: {json.dumps(acc)}", flush=True)
    if a.out and adapter is not None:
        ship(adapter, base, a.out, cfg)
    report = {
        "config": a.config,
        "vocabulary": vocabulary(cfg).name,
        "n_pairs": len(pairs),
        "n_responses": len(samples),
        "n_verified": n_verified,
        "check_calibration": calibration,
        "rounds": rounds,
        "timings": timings,
        "final_adapter": str(adapter),
    }
    (run_dir / "report.json").write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
