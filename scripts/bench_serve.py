"""`inspection serve` load test on loopback: HTTP throughput and p50/p99 at concurrency 1, 8, 32 beside the
in-process ONNX Runtime session on the same model, images and machine, in one run; then server memory over N
requests.

    .venv/bin/python scripts/bench_serve.py [--requests 200] [--memory-requests 10000] [--size 200 --channels 1]
        [--folder ../shared/data/neu-det/IMAGES]

Writes benchmarks/results/serve_cpu.json. Everything stays on 127.0.0.1 and is bounded in requests. The client
threads run on the same machine as the server (they take CPU from it); the in-process reference has no client.
Model: an untrained resnet18 (random weights: the compute of the real one, verdicts meaningless) exported by
`inspection`'s ONNX path; the memory run uses tiny_cnn so that N can be large.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inspection.core.postprocess import Thresholds  # noqa: E402
from inspection.core.preprocess import PreprocessSpec, decode_model_input  # noqa: E402
from inspection.core.results import ImageResult  # noqa: E402
from inspection.edge.inspector import OnnxInspector  # noqa: E402
from inspection.edge.providers import available_cpus  # noqa: E402
from inspection.edge.runner import to_row  # noqa: E402
from inspection.evaluation.machine import machine_info  # noqa: E402
from inspection.export.onnx_export import export_onnx  # noqa: E402
from inspection.models.checkpoint import LoadedModel  # noqa: E402
from inspection.models.factory import create_backbone  # noqa: E402

HOST = "127.0.0.1"
CLASSES = ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"]


def export(backbone: str, size: int, channels: int, out: Path) -> Path:
    torch.manual_seed(0)
    spec = PreprocessSpec(size, size, channels, mean=(0.45,) * channels, std=(0.22,) * channels)
    net = create_backbone(backbone, len(CLASSES), channels).eval()
    return export_onnx(LoadedModel(net, CLASSES, spec, Thresholds(min_confidence=0.5), backbone), out).onnx_path


def load_images(folder: Path | None, size: int, n: int = 64) -> tuple[list[bytes], str]:
    if folder and folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
        if files:
            return [p.read_bytes() for p in files], f"{folder} (first {len(files)} files)"
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        img = (rng.normal(128, 30, (size, size)) + np.linspace(0, 60, size)[None]).clip(0, 255).astype(np.uint8)
        out.append(cv2.imencode(".jpg", img)[1].tobytes())
    return out, f"synthetic {size}x{size} JPEGs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Served:
    def __init__(self, model: Path, threads: int, max_batch: int, max_wait_ms: float):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inspection.edge", "serve", str(model), "--port", str(self.port), "--device", "cpu",
             "--threads", str(threads), "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms),
             "--max-queue", "4096"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
            stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                c = http.client.HTTPConnection(HOST, self.port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def drive(call, images: list[bytes], concurrency: int, total: int) -> dict:
    """`concurrency` threads call `call(conn_state, image)` until `total` calls are done: img/s, p50, p99."""
    lat: list[float] = []
    lock, counter = threading.Lock(), [0]

    def worker(k: int) -> None:
        state: dict = {}
        while True:
            with lock:
                i = counter[0]
                counter[0] += 1
            if i >= total:
                break
            t0 = time.perf_counter()
            call(state, images[(i * 7 + k) % len(images)])
            dt = time.perf_counter() - t0
            with lock:
                lat.append(dt)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = np.array(lat) * 1000
    return {"images_per_s": round(total / wall, 1), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "requests": total}


def http_call(port: int):
    def call(state: dict, body: bytes) -> None:
        conn = state.get("conn") or http.client.HTTPConnection(HOST, port, timeout=60)
        state["conn"] = conn
        conn.request("POST", "/v1/inspect", body=body, headers={"Content-Type": "image/jpeg"})
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {data[:200]!r}")
    return call


def inprocess_call(insp: OnnxInspector):
    """What an application embedding the session does per image: decode, run, decide, make the row."""
    def call(state: dict, body: bytes) -> None:
        x = decode_model_input(body, "x.jpg", insp.spec)[None]
        probs, maps = insp.predict_with_map(x)
        v = insp.decide(probs)[0]
        to_row(ImageResult("x.jpg", probs=probs[0], verdict=v), insp.class_names, 3, insp.model_hash)
    return call


def batched_inprocess(insp: OnnxInspector, images: list[bytes], total: int, batch: int) -> dict:
    """The session's own ceiling: decode `batch` images, one run, rows; one thread, no HTTP."""
    t0, done = time.perf_counter(), 0
    while done < total:
        chunk = [images[(done + j) % len(images)] for j in range(min(batch, total - done))]
        x = np.stack([decode_model_input(b, "x.jpg", insp.spec) for b in chunk])
        probs, _ = insp.predict_with_map(x)
        for p, v in zip(probs, insp.decide(probs), strict=True):
            to_row(ImageResult("x.jpg", probs=p, verdict=v), insp.class_names, 3, insp.model_hash)
        done += len(chunk)
    return {"images_per_s": round(total / (time.perf_counter() - t0), 1), "batch": batch, "requests": total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=96, help="requests per concurrency level and side")
    ap.add_argument("--memory-requests", type=int, default=10000)
    ap.add_argument("--memory-size", type=int, default=64, help="tiny_cnn input size for the memory run")
    ap.add_argument("--concurrency", default="1,8,32", help="levels; '' runs the memory part only and keeps "
                    "the levels already in --out")
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--max-wait-ms", type=float, default=2.0)
    ap.add_argument("--folder", type=Path, default=REPO.parent / "shared" / "data" / "neu-det" / "IMAGES")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "serve_cpu.json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    threads = available_cpus()
    levels = [int(c) for c in a.concurrency.split(",") if c.strip()]
    result: dict = {"machine": machine_info() | {"cpus_available": threads, "loadavg_start": os.getloadavg()},
                    "note": "shared 2-core box (other jobs running); client threads share the CPUs with the server; "
                            "loopback only, bounded request counts",
                    "model": {"backbone": a.backbone, "weights": "random (compute only)",
                              "input": f"{a.size}x{a.size}x{a.channels} uint8", "ort_threads": threads},
                    "serve": {"max_batch": a.max_batch, "max_wait_ms": a.max_wait_ms}, "levels": {}}
    with tempfile.TemporaryDirectory() as tmp:
        model = export(a.backbone, a.size, a.channels, Path(tmp) / "big")
        images, source = load_images(a.folder, a.size)
        result["images"] = source
        insp = OnnxInspector(model, device="cpu", threads=threads)
        ip = inprocess_call(insp)
        drive(ip, images, 1, 10)  # warm-up
        srv = Served(model, threads, a.max_batch, a.max_wait_ms) if levels else None
        try:
            hc = http_call(srv.port) if srv else None
            if srv:
                drive(hc, images, 8, 32)  # warm-up: connections, first batches
            for c in levels:  # the sides alternate per level: a busy neighbour slows them alike
                inproc = drive(ip, images, c, a.requests)
                served = drive(hc, images, c, a.requests)
                batched = batched_inprocess(insp, images, a.requests, min(c, a.max_batch))
                ratio = round(served["images_per_s"] / inproc["images_per_s"], 3)
                result["levels"][str(c)] = {
                    "serve": served, "in_process": inproc, "in_process_batched": batched, "throughput_ratio": ratio,
                    "ratio_vs_batched": round(served["images_per_s"] / batched["images_per_s"], 3),
                    "serve_p99_over_p50": round(served["p99_ms"] / served["p50_ms"], 2)}
                print(f"c={c}: serve {served}  in-process {inproc}  batched {batched}  ratio {ratio}", flush=True)
        finally:
            if srv:
                srv.stop()
        del insp
        tiny = export("tiny_cnn", a.memory_size, a.channels, Path(tmp) / "tiny")
        srv = Served(tiny, threads, a.max_batch, a.max_wait_ms)
        try:
            hc = http_call(srv.port)
            drive(hc, images, 8, 200)  # warm-up before the first reading
            n, step, samples = a.memory_requests, max(1, a.memory_requests // 10), []
            t0 = time.perf_counter()
            samples.append((0, round(rss_mb(srv.proc.pid), 1)))
            for done in range(step, n + 1, step):
                drive(hc, images, 8, step)
                samples.append((done, round(rss_mb(srv.proc.pid), 1)))
            result["memory"] = {"model": f"tiny_cnn {a.memory_size}x{a.memory_size}", "requests": n,
                                "concurrency": 8, "seconds": round(time.perf_counter() - t0, 1),
                                "rss_mb_by_requests": samples,
                                "rss_growth_mb": round(samples[-1][1] - samples[0][1], 1),
                                "rss_growth_after_first_tenth_mb": round(samples[-1][1] - samples[1][1], 1)}
            print(f"memory: {result['memory']}", flush=True)
        finally:
            srv.stop()
    result["machine"]["loadavg_end"] = os.getloadavg()
    if not levels and a.out.exists():  # memory run only: keep the measured levels
        result = json.loads(a.out.read_text()) | {"memory": result["memory"], "memory_machine": result["machine"]}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
