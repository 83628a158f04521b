"""CPU inference benchmark: torch eager vs ORT fp32 vs ORT int8 (resnet18), end-to-end `inspect`, RSS scaling.

    .venv/bin/python scripts/bench_inference.py [--size 200 --channels 1] [--folder ../shared/data/neu-det/IMAGES]
        [--checkpoint model.pt --data manifest.csv]   # also measures the int8 accuracy delta through the gate

Writes benchmarks/results/inference_cpu.json. Timings interleave the engines in rounds and report medians, so
a busy machine slows every engine alike; the load average before and after is recorded with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inspection.core.postprocess import Thresholds  # noqa: E402
from inspection.core.preprocess import PreprocessSpec  # noqa: E402
from inspection.edge.providers import available_cpus  # noqa: E402
from inspection.edge.sources import walk_images  # noqa: E402
from inspection.export.onnx_export import (  # noqa: E402
    UInt8Classifier,
    card_from_checkpoint,
    export_onnx,
    set_metadata,
)
from inspection.export.quantize import quantize_int8  # noqa: E402
from inspection.models.checkpoint import LoadedModel  # noqa: E402
from inspection.models.factory import create_backbone  # noqa: E402

NEU_CLASSES = ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"]


def machine_info() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "cpus_available": available_cpus(),
            "cpu_model": "", "torch": torch.__version__, "onnxruntime": ort.__version__,
            "ort_providers": ort.get_available_providers(), "gpu": None, "loadavg_start": os.getloadavg()}
    try:
        info["cpu_model"] = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if "model name" in ln)
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _timer(fn, batch: int, min_s: float) -> float:
    """Images per second of fn() (one batch per call), over at least min_s seconds and 2 calls."""
    n, t0 = 0, time.perf_counter()
    while n < 2 or time.perf_counter() - t0 < min_s:
        fn()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def bench_engines(engines: dict, batch: int, rounds: int, min_s: float) -> dict:
    """Interleave engines round by round; median img/s per engine."""
    for fn in engines.values():
        fn()  # warm-up (allocations, graph optimisation, oneDNN primitive cache)
    samples: dict[str, list[float]] = {k: [] for k in engines}
    for _ in range(rounds):
        for name, fn in engines.items():
            samples[name].append(_timer(fn, batch, min_s))
    return {k: round(statistics.median(v), 2) for k, v in samples.items()}


# The child reports its own VmHWM: ru_maxrss from wait4 would include the forked copy of this (torch-laden)
# parent from before exec, and exec resets VmHWM.
_CHILD = ("import sys; from inspection.edge.cli import main; rc = main(sys.argv[1:]); "
          "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')]; "
          "print('PEAK', hwm[0].split()[1] if hwm else -1, file=sys.stderr); sys.exit(rc)")


def run_inspect(model: Path, source: str, out: Path, batch: int) -> dict:
    """`inspect` (the edge CLI) in a fresh interpreter; its throughput and peak resident memory."""
    cmd = [sys.executable, "-c", _CHILD, str(model), source, "--out", str(out), "--device", "cpu",
           "--batch-size", str(batch), "--quiet", "--overwrite"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"inspect failed ({proc.returncode}): {proc.stderr[-2000:]}")
    m = re.search(r"inspected (\d+) images .* ([\d.]+) img/s", proc.stderr)
    peak_kib = int(re.search(r"PEAK (-?\d+)", proc.stderr).group(1))
    return {"images": int(m.group(1)), "img_per_s": float(m.group(2)), "wall_s_incl_startup": round(wall, 2),
            "peak_rss_mib": round(peak_kib / 1024, 1) if peak_kib > 0 else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--size", type=int, default=200, help="input size (NEU images are 200x200 gray)")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--folder", default=str(REPO.parent / "shared" / "data" / "neu-det" / "IMAGES"))
    ap.add_argument("--checkpoint", default=None, help="trained checkpoint: measure the int8 accuracy delta")
    ap.add_argument("--data", default=None, help="manifest.csv for --checkpoint (val: gate, train: calibration)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=1.5, help="per engine per round")
    ap.add_argument("--threads", type=int, default=available_cpus(), help="torch and ORT intra-op threads")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "inference_cpu.json"))
    a = ap.parse_args()
    t_start = time.perf_counter()
    torch.set_num_threads(a.threads)
    result: dict = {"machine": machine_info(), "config": vars(a)}
    images = [os.path.abspath(p) for p in walk_images(a.folder)] if os.path.isdir(a.folder) else []
    spec = PreprocessSpec(a.size, a.size, a.channels, mean=(0.5,) * a.channels, std=(0.25,) * a.channels)

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        net = create_backbone(a.backbone, len(NEU_CLASSES), a.channels).eval()
        model = LoadedModel(net, NEU_CLASSES, spec, Thresholds(), a.backbone)
        fp32 = export_onnx(model, tmp / "fp32").onnx_path
        calib = images[:: max(1, len(images) // 64)][:64] if images else []
        if not calib:  # no real images: calibrate on noise (speed only)
            import cv2

            for i in range(16):
                calib.append(str(tmp / f"noise_{i}.png"))
                cv2.imwrite(calib[-1], np.random.default_rng(i).integers(0, 256, (a.size, a.size), np.uint8))
        int8 = tmp / "int8.onnx"
        quantize_int8(fp32, int8, calib)
        # The int8 file carries the fp32 card: restamp it with precision int8 for `inspect` and the report.
        onnx.save(set_metadata(onnx.load(str(int8)), card_from_checkpoint(model, None, "int8", "bench")), str(int8))

        sessions = {}
        for threads in sorted({a.threads, 1}, reverse=True):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            for k, p in (("ort_fp32", fp32), ("ort_int8", int8)):
                sessions[f"{k}_{threads}t"] = ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
        wrapper = UInt8Classifier(net, spec).eval()
        speed = {}
        for batch in (1, 32):
            x = np.random.default_rng(batch).integers(0, 256, (batch, a.size, a.size, a.channels), np.uint8)
            xt = torch.from_numpy(x)

            def eager(xt=xt, threads=a.threads):
                torch.set_num_threads(threads)
                with torch.inference_mode():
                    wrapper(xt)

            # Every engine at N threads and at 1 thread (OpenMP/ORT spin-waits collapse on a busy box); ratios use
            # each engine's better setting, so none is handicapped by a thread count.
            engines = {f"torch_eager_{a.threads}t": eager}
            if a.threads != 1:
                engines["torch_eager_1t"] = lambda xt=xt: eager(xt, 1)
            for k, s in sessions.items():
                engines[k] = lambda s=s, x=x: s.run(None, {"pixels": x})
            r = bench_engines(engines, batch, a.rounds, a.min_seconds)
            for k in ("torch_eager", "ort_fp32", "ort_int8"):
                r[k] = max(v for name, v in r.items() if name.startswith(k + "_"))
            r["ort_fp32_vs_torch"] = round(r["ort_fp32"] / r["torch_eager"], 2)
            r["ort_int8_vs_ort_fp32"] = round(r["ort_int8"] / r["ort_fp32"], 2)
            r["ort_int8_vs_torch"] = round(r["ort_int8"] / r["torch_eager"], 2)
            speed[f"batch_{batch}"] = r
            print(f"batch {batch}: {r}", flush=True)
        result["throughput_img_per_s"] = speed
        result["targets"] = {"ort_fp32_vs_torch_ge_1.5": speed["batch_1"]["ort_fp32_vs_torch"] >= 1.5,
                             "int8_vs_fp32_batch1_ge_2.5": speed["batch_1"]["ort_int8_vs_ort_fp32"] >= 2.5}

        if a.checkpoint and a.data:
            from inspection.export.gated_export import export_model

            rep = export_model(a.checkpoint, tmp / "gated", "int8", a.data)
            result["int8_accuracy"] = rep.gate.to_dict() if rep.gate else {"error": rep.to_text()}
        else:
            result["int8_accuracy"] = "not measured (pass --checkpoint and --data)"

        if images:
            lst1, lst10 = tmp / "list_1x.txt", tmp / "list_10x.txt"
            lst1.write_text("\n".join(images) + "\n")
            lst10.write_text(("\n".join(images) + "\n") * 10)
            e2e = {}
            for name, model_path in (("resnet18_int8", int8), ("resnet18_fp32", fp32)):
                e2e[name] = run_inspect(model_path, str(a.folder), tmp / f"{name}.csv", 32)
                print(f"inspect {name}: {e2e[name]}", flush=True)
            # RSS scaling is about the runner, not the network: a 64 px tiny_cnn keeps the 10x run (18,000
            # decodes + resizes) short.
            tiny_spec = PreprocessSpec(64, 64, a.channels, mean=spec.mean, std=spec.std)
            tiny = LoadedModel(create_backbone("tiny_cnn", len(NEU_CLASSES), a.channels).eval(), NEU_CLASSES,
                               tiny_spec, Thresholds(), "tiny_cnn_64px")
            tiny_onnx = export_onnx(tiny, tmp / "tiny").onnx_path
            e2e["rss_1x"] = run_inspect(tiny_onnx, str(lst1), tmp / "r1.csv", 32)
            e2e["rss_10x"] = run_inspect(tiny_onnx, str(lst10), tmp / "r10.csv", 32)
            e2e["rss_10x_over_1x"] = round(e2e["rss_10x"]["peak_rss_mib"] / e2e["rss_1x"]["peak_rss_mib"], 3)
            print(f"rss: 1x {e2e['rss_1x']} 10x {e2e['rss_10x']}", flush=True)
            result["inspect_end_to_end"] = e2e
        else:
            result["inspect_end_to_end"] = f"not measured: {a.folder} not found"

    result["machine"]["loadavg_end"] = os.getloadavg()
    result["total_s"] = round(time.perf_counter() - t_start, 1)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} in {result['total_s']} s")


if __name__ == "__main__":
    main()
