"""End-to-end batch inspection throughput (files → CSV) per engine, side by side in one run.

python scripts/bench_gpu_inspect.py --checkpoint model.pt [--manifest data/neu/manifest.csv] [--repeat 10]
Engines: a naive serial loop (read → decode → model → CSV, nothing overlapped), the torch engine
(nvJPEG on the GPU, fp16, channels_last; optionally torch.compile) and ONNX Runtime on the CPU. Also the
model-only ceiling and the verdict agreement between engines. Writes benchmarks/results/inspect_<device>.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inspect_variants import SHM_VARIANTS, VARIANTS, engine_variants, run_engine  # noqa: E402

from inspection.core.preprocess import load_model_input  # noqa: E402
from inspection.edge.inspector import OnnxInspector  # noqa: E402
from inspection.engines.torch_engine import TorchInspector  # noqa: E402
from inspection.evaluation.machine import device_tag, machine_info  # noqa: E402
from inspection.export import export_model  # noqa: E402


def naive_loop(engine: TorchInspector, paths: list[str], out: Path, batch: int) -> float:
    """Serial reference: read and decode a batch on one thread, run the model, write rows; nothing overlaps."""
    start = time.perf_counter()
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        for i in range(0, len(paths), batch):
            chunk = paths[i : i + batch]
            pix = np.stack([load_model_input(p, engine.spec) for p in chunk])
            probs = engine.predict(pix)
            for p, pr in zip(chunk, probs):
                w.writerow([p, engine.class_names[int(pr.argmax())], f"{pr.max():.6f}"])
    return len(paths) / (time.perf_counter() - start)


def model_only(engine: TorchInspector, batch: int, iters: int = 30) -> float:
    """Ceiling: the network alone on a resident uint8 batch."""
    s = engine.spec
    x = torch.randint(0, 255, (batch, s.height, s.width, s.channels), dtype=torch.uint8, device=engine.device)
    for _ in range(3):
        engine.predict_tensor(x)
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        engine.predict_tensor(x)
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - t)


def read_ceilings(files: list[str], workers: int, spec, tag: str = "") -> dict:
    """Reading the files' bytes alone, img/s: pathlib vs os-level reads, threads vs processes (the GIL's share)."""
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
    from multiprocessing import get_context

    from inspection.core.file_chunks import read_chunk
    from inspection.core.image import read_encoded

    res: dict = {}
    t = time.perf_counter()
    for p in files:
        Path(p).read_bytes()
    res[f"read{tag}_pathlib_1_thread"] = len(files) / (time.perf_counter() - t)
    t = time.perf_counter()
    for p in files:
        read_encoded(p)
    res[f"read{tag}_os_1_thread"] = len(files) / (time.perf_counter() - t)
    for n in sorted({1, 2, 4, workers}):  # reading is GIL-bound: more threads can be slower
        with ThreadPoolExecutor(n) as pool:
            t = time.perf_counter()
            list(pool.map(read_encoded, files, chunksize=64))
            res[f"read{tag}_{n}_threads"] = len(files) / (time.perf_counter() - t)
    for n in sorted({4, 8, workers}):
        with ProcessPoolExecutor(n, mp_context=get_context("spawn")) as pool:
            list(pool.map(read_chunk, [files[:8]] * n, [spec] * n, [True] * n))  # start the processes
            parts = [files[i : i + 64] for i in range(0, len(files), 64)]
            t = time.perf_counter()
            list(pool.map(read_chunk, parts, [spec] * len(parts), [True] * len(parts)))
            res[f"read{tag}_{n}_processes"] = len(files) / (time.perf_counter() - t)
    return res


def stage_ceilings(engine: TorchInspector, files: list[str], batch: int, workers: int) -> dict:
    """Each stage alone, img/s: where the end-to-end time goes (read, CPU decode in threads, nvJPEG, rows)."""
    from concurrent.futures import ThreadPoolExecutor

    from inspection.core.image import read_encoded
    from inspection.core.postprocess import postprocess
    from inspection.core.results import ImageResult
    from inspection.edge.runner import to_row
    from inspection.edge.writers import ResultWriter

    res = read_ceilings(files, workers, engine.spec)
    datas = [read_encoded(p) for p in files]
    with ThreadPoolExecutor(workers) as pool:
        t = time.perf_counter()
        list(pool.map(lambda p: load_model_input(p, engine.spec), files))
        res["read_cpu_decode_threads"] = len(files) / (time.perf_counter() - t)
    if engine.device.type == "cuda":
        from torchvision.io import ImageReadMode, decode_jpeg

        for mode in ("GRAY", "UNCHANGED"):
            tens = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
            decode_jpeg(tens[:batch], mode=getattr(ImageReadMode, mode), device="cuda")
            torch.cuda.synchronize()
            t, cpu = time.perf_counter(), time.thread_time()
            for i in range(0, len(tens), batch):
                decode_jpeg(tens[i : i + batch], mode=getattr(ImageReadMode, mode), device="cuda")
            torch.cuda.synchronize()
            wall = time.perf_counter() - t
            res[f"nvjpeg_decode_{mode.lower()}"] = len(tens) / wall
            # near 1: the calling thread's CPU did the (Huffman) work — the hardware decoder was not used
            res[f"nvjpeg_decode_{mode.lower()}_cpu_share"] = (time.thread_time() - cpu) / wall
    probs = np.random.default_rng(0).dirichlet(np.ones(len(engine.class_names)), batch).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp, ResultWriter(Path(tmp) / "rows.csv", 3) as w:
        t = time.perf_counter()
        for i in range(0, len(files), batch):
            verdicts = postprocess(probs, engine.class_names, engine.thresholds)
            w.write_rows([to_row(ImageResult(p, pr, v), engine.class_names, 3, "x")
                          for p, pr, v in zip(files[i : i + batch], probs, verdicts)])
        res["postprocess_and_rows"] = len(files) / (time.perf_counter() - t)
    return res


def rows_by_path(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {r["path"]: r for r in csv.DictReader(f)}


def shm_copy(files: list[str]) -> list[str] | None:
    """The same files in RAM (/dev/shm): separates the storage's share of reading from Python's."""
    import shutil

    root = Path("/dev/shm/inspection-bench")
    try:
        root.mkdir(parents=True, exist_ok=True)
        return [str(shutil.copyfile(p, root / Path(p).name)) for p in files]
    except OSError as e:
        print(f"no /dev/shm copy: {e}", flush=True)
        return None


def agreement(a_csv: Path, b_csv: Path) -> dict:
    """Verdicts and top-1 of two engines' rows on the files both inspected."""
    a_rows, b_rows = rows_by_path(a_csv), rows_by_path(b_csv)
    common = [p for p in b_rows if p in a_rows]
    return {
        "n": len(common),
        "verdict_agree": float(np.mean([a_rows[p]["verdict"] == b_rows[p]["verdict"] for p in common])),
        "predicted_agree": float(np.mean([a_rows[p]["predicted"] == b_rows[p]["predicted"] for p in common])),
        "max_abs_confidence_diff": float(max(abs(float(a_rows[p]["confidence"]) - float(b_rows[p]["confidence"]))
                                             for p in common)),
    }


def ort_gpu_engines(tmp: Path, a: argparse.Namespace) -> dict:
    """ONNX Runtime on the GPU (CUDA, then TensorRT) where this ORT build has the provider, on every file, fp32
    and fp16 models; agreement with the torch engine's rows. Readers decode on the CPU (the edge runner)."""
    import onnxruntime as ort

    res: dict = {"ort_providers_available": ort.get_available_providers()}
    wanted = [d for d, p in (("cuda", "CUDAExecutionProvider"), ("tensorrt", "TensorrtExecutionProvider"))
              if p in res["ort_providers_available"]]
    if not wanted:
        return res
    rep16 = export_model(a.checkpoint, tmp / "onnx16", "fp16", data=a.manifest, device="cuda")
    res["export_fp16_accepted"] = rep16.accepted
    for device in wanted:
        for prec, folder in (("fp32", tmp / "onnx"), ("fp16", tmp / "onnx16")):
            key = f"ort_{device}_{prec}"
            try:
                eng = OnnxInspector(next(folder.glob("*.onnx")), device=device, require_gpu=True)
                run_engine(eng, tmp / "once.txt", tmp / "warm.csv", a.batch, a.workers)  # engine build, warm-up
                res[key] = run_engine(eng, tmp / "all.txt", tmp / f"{key}.csv", a.batch, a.workers)
                res[key]["agreement_with_torch"] = agreement(tmp / "torch.csv", tmp / f"{key}.csv")
            except Exception as e:  # a provider that lists but does not run: record why, time the rest
                res[key] = {"error": f"{type(e).__name__}: {e}"}
            print(key, json.dumps(res[key], default=str), flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--manifest", type=Path, default=None, help="labelled data for the export parity gate")
    ap.add_argument("--folder", type=Path, default=REPO.parent / "shared/data/neu-det/IMAGES")
    ap.add_argument("--repeat", type=int, default=10, help="list every file this many times (steady state)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--shm", action="store_true", help="also read a copy of the files in /dev/shm (storage's share)")
    ap.add_argument("--variants-on-cpu", action="store_true", help="run the engine variants without a GPU too "
                    "(a dry run of this script with a small model)")
    ap.add_argument("--ort-limit", type=int, default=1800, help="files for the (slow) ONNX Runtime CPU engine")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    a = ap.parse_args()
    info = machine_info()
    files = sorted(str(p) for p in a.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    res: dict = {"files": len(files), "repeat": a.repeat, "batch": a.batch, "machine": info}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "all.txt").write_text("\n".join(files * a.repeat) + "\n")
        (tmp / "once.txt").write_text("\n".join(files[: a.ort_limit]) + "\n")
        rep = export_model(a.checkpoint, tmp / "onnx", "fp32", data=a.manifest)
        res["export_parity"] = rep.parity.to_dict() if rep.parity else None
        torch_engine = TorchInspector(a.checkpoint, device="auto", precision="fp16")
        res["model_only_img_per_s"] = model_only(torch_engine, a.batch)
        res["stage_img_per_s"] = stage_ceilings(torch_engine, files * min(a.repeat, 3), a.batch, a.workers or 16)
        print("stages", json.dumps(res["stage_img_per_s"]), flush=True)
        res["naive_serial_img_per_s"] = naive_loop(torch_engine, files * min(a.repeat, 2), tmp / "naive.csv", a.batch)
        res["torch_engine"] = run_engine(torch_engine, tmp / "all.txt", tmp / "torch.csv", a.batch, a.workers)
        print("torch_engine", json.dumps(res["torch_engine"]), flush=True)
        if torch_engine.device.type == "cuda" or a.variants_on_cpu:
            res["torch_engine_variants"] = engine_variants(a.checkpoint, tmp / "all.txt", tmp / "v.csv", a.batch,
                                                           VARIANTS)
            shm = shm_copy(files) if a.shm else None
            if shm:
                (tmp / "shm.txt").write_text("\n".join(shm * a.repeat) + "\n")
                res["shm"] = read_ceilings(shm * min(a.repeat, 3), a.workers or 16, torch_engine.spec, "_shm")
                res["shm"]["variants"] = engine_variants(a.checkpoint, tmp / "shm.txt", tmp / "v.csv", a.batch,
                                                         SHM_VARIANTS)
                print("shm", json.dumps(res["shm"]), flush=True)
        if a.compile and torch_engine.device.type == "cuda":
            compiled = TorchInspector(a.checkpoint, device="cuda", precision="fp16", compile=True)
            run_engine(compiled, tmp / "once.txt", tmp / "warm.csv", a.batch, a.workers)  # compile + autotune
            res["torch_engine_compiled"] = run_engine(compiled, tmp / "all.txt", tmp / "tc.csv", a.batch, a.workers)
        ort = OnnxInspector(next((tmp / "onnx").glob("*.onnx")), device="cpu")
        res["ort_cpu"] = run_engine(ort, tmp / "once.txt", tmp / "ort.csv", min(a.batch, 32), a.workers)
        res["agreement_torch_vs_ort"] = agreement(tmp / "torch.csv", tmp / "ort.csv")
        res.update(ort_gpu_engines(tmp, a))
    res["ratio_torch_engine_vs_naive"] = res["torch_engine"]["img_per_s"] / res["naive_serial_img_per_s"]
    res["target_img_per_s"] = 15000
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"inspect_{device_tag(info)}.json"
    path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    print(json.dumps({k: v for k, v in res.items() if k != "machine"}, indent=1, default=str))


if __name__ == "__main__":
    main()
