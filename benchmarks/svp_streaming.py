"""SVP's streamed sampling stage: driver peak RSS against the number of images, and kills.

Each measurement runs `pipelines.svp.run.sample_to` (the Ray Data graph prior sampler -> grounder
-> guided sampler -> scorer, its rows streamed into iter_1/scored.parts/ by the driver, then
scored.parquet, selected.parquet, errors and sample_quality.json written a part at a time) in
a fresh driver process on a fresh local Ray cluster, and reads that driver's peak RSS
(getrusage ru_maxrss: the whole process life, imports and ray.init included) and its RSS
sampled every 0.1 s during the stage (peak minus the RSS just before the stage: what the
stage itself adds).

--actors cheap (the plumbing): the graph's four actor pools keep their shape (classes,
batch sizes, pool sizes and CPUs from the config) but each actor only writes its columns
(K priors, a context, a guided caption, S and delta) without a model or an image; the input
paths need not exist. --actors real: the shipped shapesworld/vlm and detector on generated
ShapesWorld images, at sampling.k=1 and max_new_tokens=1 unless overridden.

--kill: the same command killed (SIGKILL of the driver) once a given fraction of the parts is
written, then run again to the end: the union of the rows must be images x K with no
duplicate (image_id, sample); the prior actors log every image they sample, so the images
sampled again after the kill (redone) are counted, and none of them was written before it.

    python benchmarks/svp_streaming.py --images 1000 20000 --kill-images 4000 \
        --set resources.batch_size=32 --out benchmarks/results/svp_streaming.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

LOG_ENV = "SVP_STREAMING_LOG"  # where the cheap prior actors append the image ids they sample


class CheapSampler:
    """SamplerActor's row contract without a model: K priors per image, or a guided caption."""

    def __init__(self, model_spec: str, mode: str = "prior", k: int = 1, **_: object) -> None:
        self.mode, self.k, self.log = mode, k, os.environ.get(LOG_ENV)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        if self.mode == "guided":
            return batch.assign(guided=batch["prior"] + " guided")
        if self.log:
            with open(self.log, "a") as f:
                f.write("".join(f"{int(i)}\n" for i in batch["image_id"]))
        out = []
        for row in batch.to_dict("records"):
            priors = [f"a red circle and a blue square, sample {j}" for j in range(self.k)]
            out += [row | {"sample": j, "prior": p, "image_priors": priors} for j, p in enumerate(priors)]
        return pd.DataFrame(out)


class CheapGrounder:
    def __init__(self, detector_spec: str, vocabulary: str, phrases_from: str = "sample") -> None:
        pass

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return batch.assign(grounding="a red circle [0.1, 0.2, 0.3, 0.4]")


class CheapScorer:
    def __init__(self, model_spec: str, adapter: str | None = None) -> None:
        pass

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        v = [float((int(i) * 31 + int(s) * 7) % 13) for i, s in zip(batch["image_id"], batch["sample"])]
        return batch.assign(S=v, delta=[-x for x in v])


CHEAP = {"prior": CheapSampler, "grounder": CheapGrounder, "guided": CheapSampler, "scorer": CheapScorer}


def child(a: argparse.Namespace) -> None:
    """One driver: ray.init, the sampling stage over --images images, a JSON line of results."""
    import psutil
    import ray

    from groundloop import config as config_lib
    from groundloop.data.coco import load_dataset
    from pipelines.svp import run as svp
    from pipelines.svp.config import SVPConfig

    work, n = Path(a.dir), a.images[0]
    if a.actors == "real":
        data = work.parent / f"shapes_{n}"
        if not (data / "instances.json").exists():
            from groundloop.worlds import shapes

            shapes.generate(data, "val", n, seed=0)
        rows = [{"image_id": r.image_id, "path": str(r.path), "error": ""} for r in load_dataset(data)]
    else:  # sample_quality reads the annotations of data.path: a one-image split, matching none of the ids
        data = work.parent / "shapes_1"
        if not (data / "instances.json").exists():
            from groundloop.worlds import shapes

            shapes.generate(data, "val", 1, seed=0)
        rows = [{"image_id": i, "path": f"/nonexistent/img_{i:06d}.png", "error": ""} for i in range(1, n + 1)]
    overrides = [f"data.path={data}", "sampling.k=1", "sampling.max_new_tokens=1", *a.overrides]
    cfg = config_lib.load(SVPConfig, "configs/svp_shapes.yaml", overrides)
    work.mkdir(parents=True, exist_ok=True)
    os.environ[LOG_ENV] = str(work / f"sampled.{os.getpid()}.log")  # the local cluster's workers inherit it
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    proc, peak, stop = psutil.Process(), [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.1)

    before = proc.memory_info().rss
    threading.Thread(target=watch, daemon=True).start()
    t = time.time()
    stats = svp.sample_to(
        cfg,
        rows,
        None,
        "shapes",
        work / "iter_1",
        1,
        work / "errors.jsonl",
        actors=CHEAP if a.actors == "cheap" else None,
    )
    seconds = time.time() - t
    stop.set()
    peak[0] = max(peak[0], proc.memory_info().rss)
    print(
        json.dumps(
            {
                "images": n,
                "k": cfg.sampling.k,
                "seconds": round(seconds, 1),
                "rss_before_stage_mib": round(before / 2**20, 1),
                "rss_peak_during_stage_mib": round(peak[0] / 2**20, 1),
                "stage_adds_mib": round((peak[0] - before) / 2**20, 1),
                "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "sink": stats,
            }
        ),
        flush=True,
    )
    ray.shutdown()


def launch(a: argparse.Namespace, images: int, work: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--images",
        str(images),
        "--dir",
        str(work),
        "--actors",
        a.actors,
        "--set",
        *a.overrides,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def result(p: subprocess.Popen) -> dict:
    out, _ = p.communicate()
    if p.returncode:
        raise SystemExit(f"driver failed ({p.returncode}):\n{out[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def rows_of(work: Path) -> pd.DataFrame:
    return pd.read_parquet(work / "iter_1" / "scored.parquet")


def sampled(work: Path, pid: int) -> list[int]:
    f = work / f"sampled.{pid}.log"
    return [int(x) for x in f.read_text().split()] if f.exists() else []


def kill_and_resume(a: argparse.Namespace, fraction: float, root: Path) -> dict:
    """Kill the driver once `fraction` of the rows are written (1.0: while it compacts the parts and
    writes the quality report), run the same command again, check the rows, count what was redone."""
    import psutil
    import pyarrow.parquet as pq

    work = root / f"kill_{fraction}"
    parts_dir = work / "iter_1" / "scored.parts"
    p = launch(a, a.kill_images, work)
    rows_in: dict[Path, int] = {}

    def written_fraction() -> float:
        for f in parts_dir.glob("part-*.parquet"):
            if f not in rows_in:
                rows_in[f] = pq.ParquetFile(f).metadata.num_rows
        return sum(rows_in.values()) / (a.kill_images * k_of(a))

    while p.poll() is None and written_fraction() < fraction:
        time.sleep(0.02)
    if p.poll() is not None:
        return {"kill_after_rows_fraction": fraction, "killed": False, "note": "the driver finished first"}
    started = psutil.Process(p.pid).children(recursive=True)  # the driver's local Ray cluster
    p.send_signal(signal.SIGKILL)
    p.wait()
    for q in started:  # what the driver started goes with it, by id
        try:
            q.kill()
        except psutil.NoSuchProcess:
            pass
    first = sampled(work, p.pid)
    written = {
        int(i) for f in parts_dir.glob("part-*.parquet") for i in pd.read_parquet(f, columns=["image_id"])["image_id"]
    }
    again = launch(a, a.kill_images, work)
    res = result(again)
    second = sampled(work, again.pid)
    df = rows_of(work)
    redone = sorted(set(first) & set(second))
    return {
        "kill_after_rows_fraction": fraction,
        "killed": True,
        "images_written_before_kill": len(written),
        "images_sampled_before_kill": len(set(first)),
        "redone_images": len(redone),
        "redone_blocks": -(-len(redone) // batch_size(a)),
        "redone_written_before_kill": len(set(second) & written),
        "rows": len(df),
        "expected_rows": a.kill_images * res["k"],
        "duplicates": int(df.duplicated(["image_id", "sample"]).sum()),
        "resumed_run": res["sink"],
    }


def config(a: argparse.Namespace):
    from groundloop import config as config_lib
    from pipelines.svp.config import SVPConfig

    return config_lib.load(SVPConfig, "configs/svp_shapes.yaml", ["sampling.k=1", *a.overrides])


def batch_size(a: argparse.Namespace) -> int:
    return config(a).resources.batch_size


def k_of(a: argparse.Namespace) -> int:
    return config(a).sampling.k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, nargs="+", default=[1000, 20000])
    ap.add_argument("--actors", choices=["cheap", "real"], default="cheap")
    ap.add_argument("--kill-images", type=int, default=0, help="images of the kill/resume runs (0: none)")
    ap.add_argument("--kill-at", type=float, nargs="+", default=[0.0, 0.05, 0.5, 0.95, 1.0])
    ap.add_argument("--out", default="")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--dir", default="")
    ap.add_argument("--set", dest="overrides", nargs="*", default=[], help="dotted config overrides, e.g. sampling.k=2")
    a = ap.parse_args()
    if a.child:
        child(a)
        return
    import ray

    root = Path(tempfile.mkdtemp(prefix="svp_streaming_"))
    runs = []
    for n in a.images:
        runs.append(result(launch(a, n, root / f"n{n}")))
        print(json.dumps(runs[-1]), flush=True)
    kills = []
    for f in a.kill_at if a.kill_images else []:
        kills.append(kill_and_resume(a, f, root))
        print(json.dumps(kills[-1]), flush=True)
    ratio = runs[-1]["ru_maxrss_mib"] / runs[0]["ru_maxrss_mib"] if len(runs) > 1 else None
    res = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU, Python {platform.python_version()}, "
        f"ray {ray.__version__}",
        "command": " ".join(sys.argv),
        "actors": a.actors,
        "overrides": a.overrides,
        "runs": runs,
        "peak_rss_ratio_largest_to_smallest": round(ratio, 3) if ratio else None,
        "kills": kills,
    }
    print(json.dumps({"peak_rss_ratio": res["peak_rss_ratio_largest_to_smallest"]}), flush=True)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
