"""Autoscaling, watched, on Ray's fake multi-node provider (`fake_multinode`).

A local autoscaling cluster whose only worker type is cluster.yaml's `gpu_worker` (its
resources and min_workers read from cluster.yaml; max_workers capped, idle timeout short):

1. a small SVP run goes in through the Jobs API; the autoscaler adds workers from 0 and
   removes them after the idle timeout;
2. the Serve app (serve/app.py's build_app) runs with an autoscaling_config and one GPU per
   replica; bounded load over HTTP scales it 1 -> 2 replicas (a worker node each) and back.

Worker nodes and Serve replicas are sampled every second into one timeline.

    python benchmarks/autoscaling.py --out benchmarks/results/autoscaling.json

The fake head advertises 0 CPUs and 0 GPUs (the large-cluster layout where the head runs no
work), so every task and actor of the job needs a worker node. The job itself runs with
resources.gpus_per_actor=0: with a GPU per actor, Ray Train picks the NCCL backend for its
process group, which a CPU-only torch lacks ("Distributed package doesn't have NCCL built
in"), so the train stage cannot run on a fake GPU node. The Serve replicas do ask for a GPU.

Ray's own AutoscalingCluster runs `ray stop --force` (every Ray process of the user on the
machine) and needs fake_multi_node/example.yaml, which the wheel does not ship; this module
starts the same kind of cluster itself, on free ports and its own temp dir, and stops only
the processes of that cluster (its own process session).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]

CLUSTER_YAML = ROOT / "cluster.yaml"
WORKER_TYPE = "gpu_worker"  # the autoscaled node type of cluster.yaml
FAKE_HEAD_TYPE = "ray.head.default"  # the fake provider's fixed name for the head's type
MAX_WORKERS = 2  # cluster.yaml allows 8; two fake nodes are what 2 cores can hold
IDLE_TIMEOUT_MINUTES = 0.25
WORKER_OBJECT_STORE_BYTES = 200 * 2**20  # fake nodes share one machine's memory
HEAD_OBJECT_STORE_BYTES = 300 * 2**20
JOB_OVERRIDES = [
    "data.n_images=4",
    "data.eval_n_images=2",
    "sampling.k=2",
    "sampling.max_new_tokens=20",
    "svp.iterations=1",
    "train.batch_size=2",
    "train.epochs=1",
    "train.torch_threads=1",
    "resources.gpus_per_actor=0",
]


def worker_node_types(cluster_yaml: Path = CLUSTER_YAML, max_workers: int = MAX_WORKERS) -> dict[str, dict]:
    """cluster.yaml's GPU worker type as a fake_multinode node type: the same name, resources
    and min_workers; max_workers capped at `max_workers`; a small object store per node."""
    node = yaml.safe_load(cluster_yaml.read_text())["available_node_types"][WORKER_TYPE]
    return {
        WORKER_TYPE: {
            "resources": dict(node["resources"]) | {"object_store_memory": WORKER_OBJECT_STORE_BYTES},
            "node_config": {},
            "min_workers": node["min_workers"],
            "max_workers": min(node["max_workers"], max_workers),
        }
    }


def fake_cluster_config(
    gcs_address: str,
    worker_types: dict[str, dict],
    head_resources: dict[str, float],
    idle_timeout_minutes: float = IDLE_TIMEOUT_MINUTES,
) -> dict[str, Any]:
    """A complete autoscaler config for the fake provider (nothing left to defaults)."""
    empty_lists = (
        "initialization_commands",
        "setup_commands",
        "head_setup_commands",
        "worker_setup_commands",
        "head_start_ray_commands",
        "worker_start_ray_commands",
        "cluster_synced_files",
        "rsync_exclude",
        "rsync_filter",
    )
    return {
        "cluster_name": "groundloop-fake",
        "max_workers": sum(t["max_workers"] for t in worker_types.values()),
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_timeout_minutes,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": gcs_address,
        },
        "auth": {},
        "docker": {},
        "file_mounts": {},
        "file_mounts_sync_continuously": False,
        "head_node_type": FAKE_HEAD_TYPE,
        "available_node_types": {FAKE_HEAD_TYPE: {"resources": head_resources, "node_config": {}, "max_workers": 0}}
        | worker_types,
    } | {k: [] for k in empty_lists}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def set_auth_mode(mode: str | None) -> None:
    """This process's Ray authentication mode, as Ray switches it: the env var, then a RayConfig
    refresh (the C++ side reads the variable once)."""
    from ray._raylet import Config

    if mode is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = mode
    Config.initialize("")


class FakeAutoscalingCluster:
    """A head started with `ray start --head --block --autoscaling-config` in a process session of
    its own; worker nodes are raylets the autoscaler's fake provider starts on this machine."""

    def __init__(self, worker_types: dict[str, dict], idle_timeout_minutes: float = IDLE_TIMEOUT_MINUTES) -> None:
        import ray._private.services

        self.ip = ray._private.services.get_node_ip_address()
        self.port, self.dashboard_port = free_port(), free_port()
        self.gcs_address = f"{self.ip}:{self.port}"
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}"
        self.temp_dir = Path(tempfile.mkdtemp(prefix="gl-fake-"))  # short: Ray's socket paths live under it
        self.config = fake_cluster_config(self.gcs_address, worker_types, {"CPU": 0, "GPU": 0}, idle_timeout_minutes)
        self.proc: subprocess.Popen | None = None
        self._auth_mode: str | None = None
        self.jobs: Any = None  # a JobSubmissionClient once the dashboard answers

    def start(self, timeout_s: float = 120) -> None:
        """Start the head and connect this process to it as a driver."""
        import ray
        from ray.job_submission import JobSubmissionClient

        config = self.temp_dir / "autoscaling.yaml"
        config.write_text(json.dumps(self.config))
        cmd = [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",
            f"--autoscaling-config={config}",
            f"--port={self.port}",
            "--num-cpus=0",
            "--num-gpus=0",
            f"--object-store-memory={HEAD_OBJECT_STORE_BYTES}",
            f"--temp-dir={self.temp_dir}",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--ray-client-server-port={free_port()}",
            "--disable-usage-stats",
        ]
        # the job's `python` is this interpreter: the fake nodes run from the same environment
        env = os.environ | {
            "RAY_FAKE_CLUSTER": "1",
            "AUTOSCALER_UPDATE_INTERVAL_S": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        env.pop("RAY_ADDRESS", None)
        # One authentication mode for the head, its nodes, this driver and the Jobs client: the
        # caller's RAY_AUTH_MODE, else token (Ray's default for a new local cluster)
        self._auth_mode = os.environ.get("RAY_AUTH_MODE")
        env["RAY_AUTH_MODE"] = self._auth_mode or "token"
        set_auth_mode(env["RAY_AUTH_MODE"])
        self.log = open(self.temp_dir / "ray_start.log", "w")  # noqa: SIM115 - closed in shutdown
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout_s
        while time.time() < deadline and "Ray runtime started" not in self.tail(100_000):
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited {self.proc.returncode}: {self.tail()}")
            time.sleep(1)
        ray.init(address=self.gcs_address, log_to_driver=False)
        while time.time() < deadline:
            try:
                self.jobs = JobSubmissionClient(self.dashboard_url)  # asks the dashboard for its version
                return
            except ConnectionError:
                time.sleep(1)
        raise TimeoutError(f"the fake cluster's dashboard did not answer in {timeout_s:.0f} s: {self.tail()}")

    def tail(self, n: int = 3000) -> str:
        path = self.temp_dir / "ray_start.log"
        return path.read_text()[-n:] if path.exists() else ""

    def session_pids(self) -> list[int]:
        """Live processes of this cluster: those of the head's process session (its services, the
        fake nodes, their workers) and those running in its temp dir (a job's entrypoint, which
        Ray starts in a session of its own inside the job's working_dir)."""
        if self.proc is None:
            return []
        sid, pids, temp = self.proc.pid, [], str(self.temp_dir.resolve())
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if os.getsid(int(entry.name)) == sid or os.readlink(entry / "cwd").startswith(temp + "/"):
                    pids.append(int(entry.name))
            except OSError:  # gone meanwhile, or not ours to read
                continue
        return pids

    def shutdown(self) -> None:
        """Stop the head (it stops its services), then end what is left of the session by pid."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    pass
            for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
                pids = self.session_pids()
                for pid in pids:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
                end = time.time() + wait
                while pids and time.time() < end and self.session_pids():
                    time.sleep(0.2)
            if self.proc.poll() is None:
                self.proc.wait(timeout=5)
            self.log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        set_auth_mode(self._auth_mode)


class Timeline:
    """Worker nodes (alive, by type) and Serve replicas (RUNNING) sampled every `every_s` seconds."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s, self.samples, self.phase = every_s, [], "start"
        self.t0, self.app = time.time(), ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every_s)

    def sample(self) -> dict:
        s = {
            "t": round(time.time() - self.t0, 1),
            "phase": self.phase,
            "workers": worker_count(),
            "replicas": replica_count(self.app) if self.app else None,
        }
        self.samples.append(s)
        return s

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def last(self) -> dict:
        return self.samples[-1] if self.samples else self.sample()

    def during(self, phase: str, key: str) -> list[int]:
        return [s[key] for s in self.samples if s["phase"] == phase and s[key] is not None]

    def wait(self, phase: str, until: Callable[[dict], bool], timeout_s: float) -> float | None:
        """Seconds until a sample satisfies `until`, or None after `timeout_s`."""
        self.phase, start = phase, time.time()
        while time.time() - start < timeout_s:
            if until(self.sample()):
                return round(time.time() - start, 1)
            time.sleep(self.every_s)
        return None


def worker_count() -> int:
    import ray

    return sum(1 for n in ray.nodes() if n["Alive"] and "node:__internal_head__" not in n["Resources"])


def replica_count(app: str) -> int | None:
    from ray import serve

    try:
        status = serve.status().applications[app].deployments["CaptionServer"]
    except Exception:  # noqa: BLE001 - not deployed yet, shutting down, or the controller is busy
        return None
    return int(status.replica_states.get("RUNNING", 0))


def gpu_probe() -> dict:
    """What a task given a fake node's GPU sees: Ray's CUDA_VISIBLE_DEVICES, but no CUDA device."""
    import ray

    @ray.remote(num_gpus=1, num_cpus=0)
    def probe() -> dict:
        import torch

        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "gpu_ids": ray.get_gpu_ids(),
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "torch_cuda_available": torch.cuda.is_available(),
        }

    return ray.get(probe.remote(), timeout=300)


def svp_entrypoint(data_dir: Path, run_dir: Path) -> str:
    args = [
        f"data.path={data_dir / 'val'}",
        f"data.eval_path={data_dir / 'test'}",
        f"run.dir={run_dir}",
        "run.name=svp_autoscaling",
        *JOB_OVERRIDES,
    ]
    return f"python pipelines/svp.py --config configs/svp_shapes.yaml {' '.join(args)}"


def job_phase(cluster: FakeAutoscalingCluster, tl: Timeline, work: Path, timeout_s: float) -> dict:
    """The SVP job through the Jobs API, then the wait for the autoscaler to remove its workers."""
    from ray.job_submission import JobStatus

    from groundloop.worlds import shapes as world

    data = work / "data"
    world.generate(data / "val", "val", 4, seed=0)
    world.generate(data / "test", "test", 2, seed=0)
    tl.phase = "job"
    client = cluster.jobs
    entrypoint = svp_entrypoint(data, work / "runs")
    t0 = time.time()
    job_id = client.submit_job(
        entrypoint=entrypoint,
        runtime_env={
            "working_dir": str(ROOT),
            "excludes": ["data/", "runs/", "logs/", "benchmarks/results/", ".venv/"],
            "env_vars": {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"},
        },
    )
    try:
        status = client.get_job_status(job_id)
        while not status.is_terminal() and time.time() - t0 < timeout_s:
            time.sleep(2)
            status = client.get_job_status(job_id)
    finally:
        if not client.get_job_status(job_id).is_terminal():
            client.stop_job(job_id)
    logs = client.get_job_logs(job_id)
    job_s = round(time.time() - t0, 1)
    report_path = work / "runs" / "svp_autoscaling" / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    probe = gpu_probe() if status == JobStatus.SUCCEEDED else {}
    idle_s = tl.wait("after_job", lambda s: s["workers"] == 0, 60 * IDLE_TIMEOUT_MINUTES + 120)
    return {
        "entrypoint": entrypoint,
        "status": str(status.value),
        "seconds": job_s,
        "stages_s": report.get("timings_s") or report.get("timings"),
        "max_workers_during_job": max(tl.during("job", "workers"), default=0),
        "gpu_probe_on_worker": probe,
        "seconds_to_zero_workers_after_job": idle_s,
        "logs_tail": logs[-2000:] if status != JobStatus.SUCCEEDED else "",
    }


def serve_phase(tl: Timeline, work: Path, load_threads: int, load_s: float) -> dict:
    """build_app with an autoscaling_config and a GPU per replica, bounded HTTP load, replicas watched."""
    import requests
    from ray import serve

    from groundloop.worlds import shapes as world
    from serve.app import build_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port}, proxy_location="HeadOnly")
    autoscaling = {
        "min_replicas": 1,
        "max_replicas": 2,
        "initial_replicas": 1,
        "target_ongoing_requests": 1,
        "upscale_delay_s": 2,
        "downscale_delay_s": 5,
        "metrics_interval_s": 1,
        "look_back_period_s": 2,
    }
    tl.app, tl.phase = "autoscaling", "serve_deploy"
    serve.run(
        build_app(
            {
                "torch_threads": 1,
                "max_new_tokens": 24,
                "max_batch_size": 1,
                "deployment": {"autoscaling_config": autoscaling, "ray_actor_options": {"num_cpus": 1, "num_gpus": 1}},
            }
        ),
        name=tl.app,
        route_prefix="/",
        blocking=False,
    )
    ready_s = tl.wait("serve_deploy", lambda s: s["replicas"] == 1, 300)
    world.generate(work / "serve_images", "test", 4, seed=1)
    urls = []
    for f in sorted((work / "serve_images" / "images").glob("*.png")):
        buf = io.BytesIO()
        from PIL import Image

        Image.open(f).convert("RGB").save(buf, format="PNG")
        urls.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())
    stop, codes, lock = threading.Event(), [], threading.Lock()

    def client(i: int) -> None:
        n = 0
        while not stop.is_set():
            body = {
                "model": "groundloop-greedy",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": urls[(i + n) % len(urls)]}}],
                    }
                ],
            }
            n += 1
            try:
                code = requests.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=120).status_code
            except requests.RequestException as e:
                code = type(e).__name__
            with lock:
                codes.append(code)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(load_threads)]
    tl.phase = "serve_load"
    for t in threads:
        t.start()
    up_s = tl.wait("serve_load", lambda s: (s["replicas"] or 0) >= 2, load_s)
    if up_s is not None:
        tl.wait("serve_load", lambda s: False, 10)  # a while at 2 replicas under the same load
    stop.set()
    for t in threads:
        t.join(timeout=150)
    down_s = tl.wait("serve_after_load", lambda s: s["replicas"] == 1, 180)
    # the removed replica's node goes idle: the autoscaler takes it away, the other one stays
    node_down_s = tl.wait("serve_after_load", lambda s: s["workers"] == 1, 60 * IDLE_TIMEOUT_MINUTES + 120)
    serve.shutdown()
    tl.app = ""
    idle_s = tl.wait("after_serve", lambda s: s["workers"] == 0, 60 * IDLE_TIMEOUT_MINUTES + 120)
    ok = sum(c == 200 for c in codes)
    return {
        "autoscaling_config": autoscaling,
        "load_threads": load_threads,
        "requests": len(codes),
        "requests_ok": ok,
        "other_codes": sorted({str(c) for c in codes if c != 200}),
        "seconds_to_first_replica": ready_s,
        "seconds_to_2_replicas_under_load": up_s,
        "seconds_to_1_replica_after_load": down_s,
        "seconds_to_1_worker_after_downscale": node_down_s,
        "seconds_to_zero_workers_after_serve": idle_s,
        "replicas_before_load": tl.during("serve_deploy", "replicas")[-1:],
        "max_replicas_under_load": max(tl.during("serve_load", "replicas"), default=0),
        "max_workers_under_load": max(tl.during("serve_load", "workers"), default=0),
    }


def summarise(samples: list[dict]) -> list[dict]:
    """The timeline's changes only: the first sample, then each one where a count or the phase moved."""
    out: list[dict] = []
    for s in samples:
        if not out or any(s[k] != out[-1][k] for k in ("phase", "workers", "replicas")):
            out.append(s)
    return out


def run(out: Path | None = None, job_timeout_s: float = 900, load_threads: int = 4, load_s: float = 120) -> dict:
    """The whole study on a fresh fake cluster, torn down whatever happens; the result to `out`."""
    import ray
    import torch

    worker_types = worker_node_types()
    cluster = FakeAutoscalingCluster(worker_types)
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch.cuda.is_available()="
        f"{torch.cuda.is_available()}",
        "command": "python benchmarks/autoscaling.py" + (f" --out {out}" if out else ""),
        "ray": ray.__version__,
        "worker_node_type": worker_types,
        "idle_timeout_minutes": IDLE_TIMEOUT_MINUTES,
        "head_resources": {"CPU": 0, "GPU": 0},
    }
    try:
        cluster.start()
        with tempfile.TemporaryDirectory(prefix="gl-autoscale-") as d, Timeline() as tl:
            try:
                tl.wait("start", lambda s: s["workers"] == 0, 60)
                result["job"] = job_phase(cluster, tl, Path(d), job_timeout_s)
                result["serve"] = serve_phase(tl, Path(d), load_threads, load_s)
            finally:
                result["timeline"] = tl.samples
                result["changes"] = summarise(tl.samples)
    finally:
        ray.shutdown()
        cluster.shutdown()
        result["processes_left_after_shutdown"] = len(cluster.session_pids())
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=1, default=str))
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/autoscaling.json")
    p.add_argument("--load-threads", type=int, default=4)
    a = p.parse_args()
    r = run(a.out, load_threads=a.load_threads)
    print(json.dumps({k: r.get(k) for k in ("job", "serve", "changes")}, indent=1, default=str))


if __name__ == "__main__":
    main()
