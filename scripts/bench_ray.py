"""Batch inspection on Ray vs the local runner, side by side in one job: Ray's overhead as a ratio.

    .venv/bin/python scripts/bench_ray.py [--images 10000] [--size 64] [--backbone tiny_cnn]
    .venv/bin/python scripts/bench_ray.py --workers 1,2,4,8,16 [--gpus-per-worker 0.25]   # scaling curve

Both engines run the same exported model (untrained weights: throughput does not depend on them) over the same
generated PNGs, files → CSV rows through the edge runner, each at its own defaults (local: ONNX Runtime with
min(8, CPUs) decode threads, batch 32 — and the same with ONNX Runtime on one thread, as in each Ray actor;
Ray: a private local cluster, one actor per CPU, one ORT thread each, batch 64). Local runs come
before and after the Ray runs (median), so a busy machine slows both alike. Ray is timed as: starting the
cluster, two runs on it (each starts its actor pool: Ray Data makes one per run), and the shutdown.
`--workers` instead runs a curve of actor counts on one cluster sized for the largest (a GPU machine: add
--gpus-per-worker).
Writes benchmarks/results/ray_<dev>.json (ray_cpu.json on a CPU box).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inspection.core.postprocess import Thresholds  # noqa: E402
from inspection.core.preprocess import PreprocessSpec  # noqa: E402
from inspection.edge.inspector import OnnxInspector  # noqa: E402
from inspection.edge.runner import Progress, run_inspection  # noqa: E402
from inspection.edge.writers import read_rows  # noqa: E402
from inspection.engines.ray_engine import RayInspector  # noqa: E402
from inspection.evaluation.machine import device_tag, machine_info  # noqa: E402
from inspection.export.onnx_export import export_onnx  # noqa: E402
from inspection.models.checkpoint import LoadedModel  # noqa: E402
from inspection.models.factory import create_backbone  # noqa: E402


def export(backbone: str, size: int, out: Path) -> Path:
    torch.manual_seed(0)
    net = create_backbone(backbone, 2, 3).eval()
    model = LoadedModel(net, ["defect", "good"], PreprocessSpec(size, size, 3),
                        Thresholds(ok_classes=("good",), ng=0.6, ok=0.4), backbone)
    return export_onnx(model, out / backbone.replace(":", "_")).onnx_path


def make_images(folder: Path, n: int, size: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"img_{i:05d}.png"), rng.integers(0, 256, (size, size, 3), np.uint8))


def timed_run(engine, images: Path, out: Path) -> tuple[float, float]:
    """(images per second, seconds) of one runner pass files → CSV."""
    t0 = time.perf_counter()
    s = run_inspection(engine, [str(images)], out, overwrite=True, progress=Progress(enabled=False))
    dt = time.perf_counter() - t0
    return round(s.n_new / dt, 1), round(dt, 2)


def side_by_side(model: Path, images: Path, tmp: Path, gpus: float) -> dict:
    # Two local arms: the runner's defaults (ORT intra-op threads = CPUs), and ORT on one thread like each Ray
    # actor (on a loaded box ORT's spinning thread pool can cost more than a second process).
    local = {"local": OnnxInspector(model, device="cpu"), "local_ort_1_thread": OnnxInspector(model, "cpu", threads=1)}
    rates: dict[str, list[float]] = {k: [] for k in local}
    secs: dict[str, list[float]] = {k: [] for k in local}
    ray_runs: list[tuple[float, float]] = []
    start_s = close_s = 0.0
    for k in range(2):  # local arms before and after the Ray runs
        for name, eng in local.items():
            r, dt = timed_run(eng, images, tmp / f"{name}{k}.csv")
            rates[name].append(r)
            secs[name].append(dt)
            print(f"{name}: {r} img/s ({dt} s)", flush=True)
        if not k:
            t0 = time.perf_counter()
            ray_engine = RayInspector(model, gpus_per_worker=gpus)
            start_s = round(time.perf_counter() - t0, 2)
            ray_runs = [timed_run(ray_engine, images, tmp / f"ray{j}.csv") for j in range(2)]
            t0 = time.perf_counter()
            ray_engine.close()
            close_s = round(time.perf_counter() - t0, 2)
            print(f"ray: start {start_s} s, runs {ray_runs}, shutdown {close_s} s", flush=True)
    same = [r["verdict"] for r in read_rows(tmp / "local0.csv")] == [r["verdict"] for r in read_rows(tmp / "ray0.csv")]
    best_ray_s = min(s for _, s in ray_runs)
    end_to_end = ray_runs[0][1] + start_s + close_s
    med = {name: statistics.median(v) for name, v in secs.items()}
    return {"local_img_per_s": rates, "local_s": secs,
            "ray_runs": [{"img_per_s": r, "s": s} for r, s in ray_runs],
            "ray_start_s": start_s, "ray_shutdown_s": close_s, "ray_concurrency": ray_engine.concurrency,
            "runs_on": ray_engine.runs_on(),
            "time_ratio_ray_run_vs": {name: round(best_ray_s / m, 2) for name, m in med.items()},
            "time_ratio_ray_end_to_end_vs": {name: round(end_to_end / m, 2) for name, m in med.items()},
            "verdicts_identical": same}


def curve(model: Path, images: Path, tmp: Path, workers: list[int], gpus: float) -> dict:
    first = RayInspector(model, concurrency=max(workers), gpus_per_worker=gpus)  # sizes the local cluster
    points = []
    try:
        for n in workers:
            eng = RayInspector(model, concurrency=n, gpus_per_worker=gpus)  # joins the running cluster
            r, dt = timed_run(eng, images, tmp / f"curve{n}.csv")
            points.append({"actors": n, "img_per_s": r, "s": dt})
            print(points[-1], flush=True)
    finally:
        first.close()
    return {"curve": points, "gpus_per_worker": gpus}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=64, help="image and model input size (px)")
    ap.add_argument("--backbone", default="tiny_cnn")
    ap.add_argument("--workers", default=None, help="comma-separated actor counts: a scaling curve instead")
    ap.add_argument("--gpus-per-worker", type=float, default=0.0)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    info = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = export(a.backbone, a.size, tmp)
        t0 = time.perf_counter()
        make_images(tmp / "images", a.images, a.size)
        print(f"{a.images} images in {time.perf_counter() - t0:.1f} s", flush=True)
        if a.workers:
            result = curve(model, tmp / "images", tmp, [int(w) for w in a.workers.split(",")], a.gpus_per_worker)
        else:
            result = side_by_side(model, tmp / "images", tmp, a.gpus_per_worker)
    result = {"what": "files → CSV rows through the edge runner: local ONNX Runtime vs --engine ray (local cluster)",
              "images": a.images, "size": a.size, "backbone": a.backbone, **result, "machine": info,
              "ray": __import__("ray").__version__,
              "loadavg_end": os.getloadavg()}
    suffix = "_curve" if a.workers else ""
    out = a.out or REPO / "benchmarks" / "results" / f"ray_{device_tag(info)}{suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
