"""Endpoint throughput with dynamic batching vs batch size 1, under concurrent clients.

Two Serve applications with the same models side by side in one Ray cluster, one with
`max_batch_size=1` and one with dynamic batching; 16 client threads each send requests
through the official `openai` client; throughput (captions/s) and latency percentiles are
measured per decoder, one application after the other.

    python benchmarks/serve_throughput.py --out benchmarks/results/serve_throughput.json
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import platform
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import ray
from openai import OpenAI
from ray import serve

from groundloop.data.coco import load_image
from groundloop.worlds import shapes as world
from serve.app import build_app


def data_url(path: Path) -> str:
    buf = io.BytesIO()
    load_image(path).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def load_test(base_url: str, model: str, urls: list[str], clients: int, per_client: int) -> dict:
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        oc = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600)
        for j in range(per_client):
            url = urls[(c * per_client + j) % len(urls)]
            t = time.time()
            try:
                oc.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
                )
                with lock:
                    lat.append(time.time() - t)
            except Exception as e:  # noqa: BLE001 - a failed request is a result to report
                with lock:
                    errors.append(repr(e))

    t0 = time.time()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    a = np.array(lat)
    return {
        "requests": len(lat),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "wall_s": wall,
        "captions_per_s": len(lat) / wall,
        "latency_p50_s": float(np.percentile(a, 50)) if len(a) else None,
        "latency_p99_s": float(np.percentile(a, 99)) if len(a) else None,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--per-client", type=int, default=4)
    p.add_argument("--batch", type=int, default=16, help="max_batch_size of the batched application")
    p.add_argument("--decoders", nargs="+", default=["greedy", "vimar"])
    p.add_argument("--k", type=int, default=2, help="candidates per temperature for vimar")
    p.add_argument("--threads", type=int, default=2, help="torch threads per replica")
    a = p.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    common = {
        "torch_threads": a.threads,
        "batch_wait_timeout_s": 0.05,
        "decode": {"temperatures": [0.1, 0.3, 0.5, 0.7, 0.9], "k": a.k},
        "deployment": {"ray_actor_options": {"num_cpus": 0.5}, "max_ongoing_requests": 64},
    }
    for name, bs in (("b1", 1), (f"b{a.batch}", a.batch)):
        serve.run(build_app(common | {"max_batch_size": bs}), name=name, route_prefix=f"/{name}")
    with tempfile.TemporaryDirectory() as d:
        world.generate(Path(d), "test", 32, seed=77)
        urls = [data_url(f) for f in sorted((Path(d) / "images").glob("*.png"))]
    results: dict = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores (no GPU)",
        "clients": a.clients,
        "per_client": a.per_client,
        "batch": a.batch,
        "vimar_k": a.k,
    }
    for dec in a.decoders:
        model = f"groundloop-{dec}"
        load_test(f"http://127.0.0.1:{port}/b1/v1", model, urls[:2], 2, 1)  # warm both replicas
        load_test(f"http://127.0.0.1:{port}/b{a.batch}/v1", model, urls[:2], 2, 1)
        r1 = load_test(f"http://127.0.0.1:{port}/b1/v1", model, urls, a.clients, a.per_client)
        rb = load_test(f"http://127.0.0.1:{port}/b{a.batch}/v1", model, urls, a.clients, a.per_client)
        results[dec] = {
            "batch_1": r1,
            f"batch_{a.batch}": rb,
            "throughput_ratio": rb["captions_per_s"] / r1["captions_per_s"],
        }
        print(json.dumps({dec: results[dec]}, indent=1), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=1))
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
