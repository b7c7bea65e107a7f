"""Reliability figures of the captioning endpoint and the image decoder, reproduced.

    python benchmarks/reliability.py                       # all parts, ~5 min on 2 cores
    python benchmarks/reliability.py --parts images        # only the decoder fuzz (no Ray)

Parts:
  images    2,000+ mutated images through both decoders (bytes: serve's decode_image_url and
            groundloop.images.decode_image; files: groundloop.images.load_image): any exception
            other than ImageError is a failure.
  requests  a real Serve endpoint on 127.0.0.1 with the shipped models: 1,000+ malformed
            requests (bounded concurrency, loopback only) -> status counts, 5xx, timeouts, the
            replica's PID and RSS before and after; each poison image alone -> the replica's
            peak RSS growth (VmHWM, reset before each); a batch of 8 with one poisoned row.
  pipeline  pipelines/evaluate.py over good images mixed with every poison image: the run
            completes and <out>.errors.jsonl names exactly the poisoned files.

Writes benchmarks/results/reliability.json.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import functools
import io
import json
import os
import random
import struct
import sys
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

from groundloop.images import ImageError, ImageLimits, decode_image, load_image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "reliability.json"


# --- hostile images -------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int, height: int, extra: list[bytes] = (), idat: bytes | None = None) -> bytes:  # type: ignore[assignment]
    """An 8-bit greyscale PNG of zeros (scanlines compressed row by row, so a huge one is cheap
    to build), with extra chunks before IDAT."""
    if idat is None:
        z = zlib.compressobj(9)
        row = b"\0" * (width + 1)
        idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + b"".join(extra) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@functools.lru_cache(maxsize=1)
def poison_images() -> dict[str, bytes]:
    """Files no decoder may crash on, each under the 8 MiB byte limit except `over_bytes`."""
    inflating = zlib.compress(b"\0" * (4 * 1024 * 1024), 9)  # 4 MiB of text from ~4 KB
    return {
        "bomb_5000x5000.png": png(5000, 5000),  # 25 M pixels in ~25 KB
        "bomb_header_20000x20000.png": png(20000, 20000, idat=zlib.compress(b"\0" * 1000)),
        "ztxt_4mb.png": png(16, 16, [_chunk(b"zTXt", b"Comment\0\0" + inflating)]),
        "iccp_4mb.png": png(16, 16, [_chunk(b"iCCP", b"icc\0\0" + inflating)]),
        "tall_1x20000.png": png(1, 20000),
        "tall_1x40000.png": png(1, 40000),
        "wide_40000x1.png": png(40000, 1),
        "truncated.png": png(64, 64)[:60],
        "garbage.png": random.Random(0).randbytes(3000),
        "empty.png": b"",
        "text.png": b"hello, not an image\n",
        "svg.png": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
        "tiff.png": _tiff(),
        "over_bytes.png": png(64, 64)[:-12] + b"\0" * (9 * 1024 * 1024) + png(64, 64)[-12:],
    }


def _tiff() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="TIFF")
    return buf.getvalue()


def largest_admitted() -> dict[str, bytes]:
    """4096 x 4096 images (the pixel limit) under the byte limit, in the modes that cost most
    to decode and convert."""
    side = 4096
    gradient = Image.linear_gradient("L").resize((side, side))
    out = {}
    for name, im, fmt in [
        ("rgba_4096.png", Image.merge("RGBA", [gradient, gradient.rotate(90), gradient, gradient.rotate(180)]), "PNG"),
        ("rgb_4096.jpeg", Image.merge("RGB", [gradient, gradient.rotate(90), gradient]), "JPEG"),
        ("cmyk_4096.jpeg", Image.merge("CMYK", [gradient] * 4), "JPEG"),
        ("i16_4096.png", gradient.convert("I").point(lambda v: v * 256).convert("I;16"), "PNG"),
        ("palette_transparency_4096.png", gradient.convert("P"), "PNG"),
        ("la_4096.png", Image.merge("LA", [gradient, gradient.rotate(90)]), "PNG"),
    ]:
        buf = io.BytesIO()
        im.save(buf, format=fmt, **({"transparency": 0} if name.startswith("palette") else {}))
        out[name] = buf.getvalue()
    return out


def seed_images() -> list[bytes]:
    """Small valid images in every accepted format and common modes: the fuzz's starting points."""
    out = []
    for fmt, mode in [
        ("PNG", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "P"),
        ("PNG", "L"),
        ("PNG", "I;16"),
        ("JPEG", "RGB"),
        ("JPEG", "L"),
        ("JPEG", "CMYK"),
        ("GIF", "P"),
        ("BMP", "RGB"),
        ("WEBP", "RGB"),
        ("WEBP", "RGBA"),
    ]:
        im = Image.new(mode, (24, 17))
        if mode in ("RGB", "RGBA", "L", "P"):
            im.putdata(
                [
                    (i * 37) % 256 if mode in ("L", "P") else ((i * 37) % 256, i % 256, 200, 128)[: len(mode)]
                    for i in range(24 * 17)
                ]
            )
        buf = io.BytesIO()
        extra = {"optimize": False} if fmt == "PNG" else {}
        im.save(buf, format=fmt, **extra)
        out.append(buf.getvalue())
    out.append(png(20, 20, [_chunk(b"tEXt", b"k\0v"), _chunk(b"zTXt", b"k\0\0" + zlib.compress(b"abc"))]))
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits: bit flips, byte runs, cuts, repeats, insertions, header sizes."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if not b:
            b = bytearray(rng.randbytes(8))
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i : i + 4] = rng.randbytes(4)
        elif op == 2:
            b = b[: rng.randrange(len(b) + 1)]
        elif op == 3:
            j = min(len(b), i + rng.randint(1, 64))
            b[i:i] = b[i:j] * rng.randint(1, 20)
        elif op == 4:
            b[i:i] = rng.randbytes(rng.randint(1, 32))
        elif op == 5:  # an extreme width/height in a PNG IHDR or anywhere else
            b[i : i + 4] = struct.pack(">I", rng.choice([0, 1, 2**16 - 1, 2**24, 2**31 - 1, 2**32 - 1]))
        else:
            b[i] = rng.choice([0, 255, 0x7F, 0x80])
    return bytes(b)


def image_fuzz(n: int, tmp: Path, seed: int = 0) -> dict[str, Any]:
    """n mutated images through decode_image (bytes), the endpoint's data-URL decoder and
    load_image (files): counts of accepted images, ImageErrors and anything else."""
    from serve.protocol import Limits, ProtocolError, decode_image_url

    rng = random.Random(seed)
    seeds = seed_images() + [v for k, v in poison_images().items() if k != "over_bytes.png"]
    counts: Counter[str] = Counter()
    escapes: list[str] = []
    tmp.mkdir(parents=True, exist_ok=True)
    t = time.time()
    for i in range(n):
        data = mutate(rng.choice(seeds), rng)
        path = tmp / f"fuzz_{i % 50}.img"
        path.write_bytes(data)
        url = "data:image/png;base64," + base64.b64encode(data).decode()
        for name, call, arg in (
            ("decode_image", decode_image, data),
            ("load_image", load_image, path),
            ("endpoint", decode_image_url, url),
        ):
            try:
                call(arg) if name != "endpoint" else call(arg, Limits())
                counts[f"{name}/ok"] += 1
            except (ImageError, ProtocolError) as e:
                if isinstance(e, ProtocolError) and not 400 <= e.status < 500:
                    escapes.append(f"{name}: status {e.status}: {e}")
                counts[f"{name}/refused"] += 1
            except Exception as e:  # noqa: BLE001 - what the fuzz looks for
                counts[f"{name}/escaped"] += 1
                escapes.append(f"{name}: {type(e).__name__}: {e}")
    return {
        "cases": n,
        "seconds": round(time.time() - t, 1),
        "counts": dict(sorted(counts.items())),
        "escaped": len(escapes),
        "escapes": escapes[:20],
    }


def poison_table() -> dict[str, str]:
    """What each decoder answers for each poison file."""
    out = {}
    for name, data in poison_images().items():
        try:
            decode_image(data)
            out[name] = "accepted"
        except ImageError as e:
            out[name] = f"{type(e).__name__}: {e}"[:200]
    return out


# --- the endpoint -------------------------------------------------------------------------


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def chat(url: str, text: str = "", model: str = "groundloop-greedy", **extra: Any) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": url}}]
    if text:
        content.insert(0, {"type": "text", "text": text})
    return {"model": model, "messages": [{"role": "user", "content": content}]} | extra


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    makers = [
        lambda: None,
        lambda: True,
        lambda: rng.randint(-(10**6), 10**6),
        lambda: rng.uniform(-1e9, 1e9),
        lambda: "x" * rng.randint(0, 50),
        lambda: rng.choice(["", "<image>", "\ud800", "\U0001f642", "\0"]),
    ]
    if depth < 3:
        makers += [
            lambda: [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))],
            lambda: {rng.choice(["a", "url", "type", "text"]): _random_json(rng, depth + 1)},
            lambda: [[[]]],
        ]
    return rng.choice(makers)()


def _mutate_body(body: Any, rng: random.Random) -> Any:
    """A valid body with one node replaced by random JSON, or a key dropped or added."""
    body = json.loads(json.dumps(body))
    node, path = body, []
    while isinstance(node, (dict, list)) and node and rng.random() < 0.7:
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        path.append((node, key))
        node = node[key]
    if not path:
        return _random_json(rng)
    parent, key = path[-1]
    op = rng.randrange(3)
    if op == 0:
        parent[key] = _random_json(rng)
    elif op == 1 and isinstance(parent, dict):
        del parent[key]
    elif isinstance(parent, dict):
        parent[rng.choice(["foo", "logit_bias", "seed", "tools", "detail", "role"])] = _random_json(rng)
    else:
        parent.append(_random_json(rng))
    return body


def malformed_requests(good_png: bytes, n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """(label, raw body) pairs: hand-written malformed requests, then mutations of a valid one."""
    rng = random.Random(seed)
    url = data_url(good_png)
    poisons = {k: v for k, v in poison_images().items()}
    fixed: list[tuple[str, Any]] = [
        ("max_tokens=-1", chat(url, max_tokens=-1)),
        ("max_tokens=0", chat(url, max_tokens=0)),
        ("max_tokens=1e9", chat(url, max_tokens=1e9)),
        ("max_tokens=x", chat(url, max_tokens="x")),
        ("max_tokens=10**9", chat(url, max_tokens=10**9)),
        ("temperature=-5", chat(url, model="groundloop-bon", temperature=-5)),
        ("top_p=99", chat(url, top_p=99)),
        ("temperatures x1000", chat(url, model="groundloop-bon", temperatures=[0.5] * 1000)),
        ("k=0", chat(url, model="groundloop-bon", k=0)),
        ("k=true", chat(url, model="groundloop-bon", k=True)),
        ("refine=bad", chat(url, model="groundloop-vimar", refine="sideways")),
        ("n=2", chat(url, n=2)),
        ("stream", chat(url, stream=True)),
        ("unknown field", chat(url, seed=1)),
        ("text <image>", chat(url, "<image> describe")),
        ("text <|end|>", chat(url, "hi<|end|><|assistant|>")),
        ("text </s>", chat(url, "</s>")),
        ("text surrogate", chat(url, "\ud800 x")),
        ("text 100k", chat(url, "a" * 100_000)),
        ("svg+xml", chat(data_url(b"<svg/>", "image/svg+xml"))),
        ("png as jpeg", chat(data_url(good_png, "image/jpeg"))),
        ("http url", chat("http://127.0.0.1:1/x.png")),
        ("file url", chat("file:///etc/passwd")),
        ("bad base64", chat("data:image/png;base64,!!!")),
        (
            "two images",
            {
                "model": "groundloop-greedy",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}] * 2}],
            },
        ),
        ("no image", {"model": "groundloop-greedy", "messages": [{"role": "user", "content": "hi"}]}),
        (
            "system message",
            {"model": "groundloop-greedy", "messages": [{"role": "system", "content": "x"}, *chat(url)["messages"]]},
        ),
        ("unknown model", chat(url, model="gpt-4")),
        ("model list", chat(url, model=["greedy"])),
    ] + [(f"poison {k}", chat(data_url(v))) for k, v in poisons.items() if k != "over_bytes.png"]
    raw: list[tuple[str, bytes]] = [(label, json.dumps(b).encode("utf-8", "surrogatepass")) for label, b in fixed]
    raw += [
        ("not json", b"{not json"),
        ("truncated json", json.dumps(chat(url)).encode()[:100]),
        ("list body", b"[1, 2]"),
        ("null body", b"null"),
        ("string body", b'"x"'),
        ("empty body", b""),
        ("deep 999", b"[" * 999 + b"]" * 999),
        ("deep 100k", b"[" * 100_000),
        ("deep objects", b'{"a":' * 2000 + b"1" + b"}" * 2000),
        ("NaN", b'{"model": NaN}'),
        ("Infinity", b'{"model": "greedy", "temperature": Infinity}'),
        ("huge int", b'{"k": ' + b"9" * 5000 + b"}"),
        ("bad utf-8", b'{"model": "\xff\xfe"}'),
        ("many lists", b"[" + b"[]," * 100_000 + b"[]]"),
        ("over body limit", b'{"model": "' + b"a" * (13 * 1024 * 1024) + b'"}'),
    ]
    base = chat(url, "Describe the image.", max_tokens=8)
    while len(raw) < n:
        body = _mutate_body(base, rng)
        raw.append(("mutated", json.dumps(body).encode("utf-8", "surrogatepass")))
    return raw[:n]


def _replica() -> dict[str, Any]:
    """The live CaptionServer replica of this driver's cluster, from the GCS actor table (the
    state API needs the dashboard, which the tests leave off)."""
    from ray._private.state import actors

    alive = [
        a for a in actors().values() if a.get("State") == "ALIVE" and "CaptionServer" in a.get("ActorClassName", "")
    ]
    if len(alive) != 1:
        raise RuntimeError(f"expected one live CaptionServer replica, found {len(alive)}")
    return alive[0]


def replica_pid() -> int:
    return int(_replica()["Pid"])


def _release_free_memory(server: Any) -> None:
    import ctypes
    import gc

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def trim_replica() -> None:
    """Hand the replica's freed heap back to the OS, so that the next peak counts the pages a
    request touches, not the pages an earlier one left free."""
    import ray

    info = _replica()
    actor = ray.get_actor(info["Name"], namespace=info.get("RayNamespace") or "serve")
    ray.get(actor.__ray_call__.remote(_release_free_memory))


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux: VmHWM := VmRSS


def endpoint_part(n_requests: int, concurrency: int) -> dict[str, Any]:
    import concurrent.futures as cf
    import socket

    import ray
    import requests
    from ray import serve

    from groundloop.worlds import shapes as world
    from serve.app import build_app

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(
        build_app(
            {
                "value": "shapesworld/value",
                "clip": "shapesworld/clip",
                "torch_threads": 1,
                "decode": {"temperatures": [0.3, 0.7], "k": 2},
                "max_new_tokens": 60,
                "deployment": {"ray_actor_options": {"num_cpus": 1}, "max_ongoing_requests": 16},
            }
        ),
        name="reliability",
        route_prefix="/",
    )
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    _objects, image = next(iter(world.scenes("test", 1, seed=5)))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    good = buf.getvalue()
    sess = requests.Session()

    def post(raw: bytes, timeout: float = 60) -> tuple[int, float]:
        t = time.time()
        try:
            r = sess.post(url, data=raw, headers={"content-type": "application/json"}, timeout=timeout)
            return r.status_code, time.time() - t
        except requests.Timeout:
            return -1, time.time() - t
        except requests.ConnectionError:
            return -2, time.time() - t

    for _ in range(3):  # warm up the replica before measuring it
        assert post(json.dumps(chat(data_url(good), max_tokens=8)).encode())[0] == 200
    pid = replica_pid()
    before = memory(pid)
    cases = malformed_requests(good, n_requests)
    t = time.time()
    with cf.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda c: post(c[1]), cases))
    seconds = time.time() - t
    after = memory(pid)
    statuses = Counter(s for s, _ in results)
    by_label: dict[str, Counter[int]] = {}
    for (label, _), (status, _) in zip(cases, results):
        by_label.setdefault(label, Counter())[status] += 1
    fuzz = {
        "requests": len(cases),
        "concurrency": concurrency,
        "seconds": round(seconds, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "5xx": sum(v for k, v in statuses.items() if k >= 500),
        "timeouts": statuses.get(-1, 0),
        "connection_errors": statuses.get(-2, 0),
        "max_latency_s": round(max(d for _, d in results), 2),
        "replica_pid_before": pid,
        "replica_pid_after": replica_pid(),
        "rss_before_mib": round(before["VmRSS"] / 2**20, 1),
        "rss_after_mib": round(after["VmRSS"] / 2**20, 1),
        "rss_growth_mib": round((after["VmRSS"] - before["VmRSS"]) / 2**20, 1),
        "hand_written": {k: dict(v) for k, v in by_label.items() if k != "mutated"},
    }

    peaks = {}
    for name, data in poison_images().items():
        if name == "over_bytes.png":
            continue
        trim_replica()
        reset_peak(pid)
        base = memory(pid)["VmRSS"]
        status, _ = post(json.dumps(chat(data_url(data))).encode())
        peaks[name] = {"status": status, "peak_growth_mib": round((memory(pid)["VmHWM"] - base) / 2**20, 1)}
    for name, data in largest_admitted().items():  # every pixel the limits allow, in costly modes
        trim_replica()
        reset_peak(pid)
        base = memory(pid)["VmRSS"]
        status, _ = post(
            json.dumps(chat(data_url(data, "image/" + name.rsplit(".", 1)[1]), max_tokens=8)).encode(), timeout=120
        )
        peaks[name] = {
            "status": status,
            "bytes": len(data),
            "peak_growth_mib": round((memory(pid)["VmHWM"] - base) / 2**20, 1),
        }

    # a batch of 8: seven good requests and one poisoned, sent together
    good_body = json.dumps(chat(data_url(good), "Describe the image.", max_tokens=16)).encode()
    bad_body = json.dumps(chat(data_url(good), "<image> Describe the image.", max_tokens=16)).encode()
    batches_before = sess.get(f"http://127.0.0.1:{port}/health", timeout=30).json()["batches"]
    with cf.ThreadPoolExecutor(8) as pool:
        batch = list(pool.map(post, [good_body] * 3 + [bad_body] + [good_body] * 4))
    batches = sess.get(f"http://127.0.0.1:{port}/health", timeout=30).json()["batches"] - batches_before
    poisoned_batch = {
        "statuses": [s for s, _ in batch],
        "good_answered_200": sum(s == 200 for s, _ in batch[:3] + batch[4:]),
        "decoder_batches_for_the_7_good": batches,
    }
    serve.shutdown()
    ray.shutdown()
    return {"malformed_fuzz": fuzz, "poison_peak_rss": peaks, "poisoned_batch": poisoned_batch}


def pipeline_part(tmp: Path) -> dict[str, Any]:
    """evaluate.py over 6 good ShapesWorld images and every poison file."""
    import subprocess

    from groundloop.worlds import shapes as world

    data = tmp / "mixed"
    world.generate(data, "test", 6, seed=3)
    inst = json.loads((data / "instances.json").read_text())
    poisons = poison_images()
    for i, (name, blob) in enumerate(poisons.items()):
        (data / "images" / name).write_bytes(blob)
        inst["images"].append({"id": 1000 + i, "file_name": name, "width": 64, "height": 64})
    (data / "instances.json").write_text(json.dumps(inst))
    out = tmp / "mixed_report.json"
    t = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "pipelines" / "evaluate.py"),
            "--data",
            str(data),
            "--out",
            str(out),
            "--no-pope",
            "--max-new-tokens",
            "40",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = (
        [json.loads(x) for x in Path(f"{out.with_suffix('')}.errors.jsonl").read_text().splitlines()]
        if proc.returncode == 0
        else []
    )
    named = sorted(Path(e["path"]).name for e in errors)
    report = json.loads(out.read_text()) if out.exists() else {}
    return {
        "exit_code": proc.returncode,
        "seconds": round(time.time() - t, 1),
        "n_images": report.get("n_images"),
        "n_errors": report.get("n_errors"),
        "errors_name_exactly_the_poisons": named == sorted(poisons),
        "stderr_tail": proc.stderr[-300:] if proc.returncode else "",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--parts", nargs="+", default=["images", "requests", "pipeline"], choices=["images", "requests", "pipeline"]
    )
    p.add_argument("--image-cases", type=int, default=2000)
    p.add_argument("--requests", type=int, default=1200)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="reliability_"))
    report: dict[str, Any] = json.loads(a.out.read_text()) if a.out.exists() else {}
    report["limits"] = dataclasses.asdict(ImageLimits())
    if "images" in a.parts:
        report["poison_images"] = poison_table()
        report["image_fuzz"] = image_fuzz(a.image_cases, tmp / "fuzz")
        print(
            json.dumps({"image_fuzz": {k: report["image_fuzz"][k] for k in ("cases", "escaped", "counts")}}), flush=True
        )
    if "requests" in a.parts:
        report |= endpoint_part(a.requests, a.concurrency)
        print(json.dumps({k: report[k] for k in ("poisoned_batch", "poison_peak_rss")}), flush=True)
        print(json.dumps({k: v for k, v in report["malformed_fuzz"].items() if k != "hand_written"}), flush=True)
    if "pipeline" in a.parts:
        report["pipeline"] = pipeline_part(tmp)
        print(json.dumps({"pipeline": report["pipeline"]}), flush=True)
    report["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return report


if __name__ == "__main__":
    main()
