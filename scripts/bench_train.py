"""Training throughput: our Lightning fit vs a bare PyTorch loop, same model/precision/batch/data, side by side.

python scripts/bench_train.py [--epochs 40 --batch 128 --size 200 --backbone resnet18]
Both arms train on NEU's train split with per-epoch validation; the bare loop keeps uint8 images on the GPU.
Writes benchmarks/results/train_throughput_<device>.json (img/s, fit seconds, ratio; target ratio ≥ 0.9).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inspection.core.preprocess import PreprocessSpec  # noqa: E402
from inspection.data.augment import AugmentConfig  # noqa: E402
from inspection.data.datamodule import DataConfig  # noqa: E402
from inspection.data.gpu_augment import augment_batch  # noqa: E402
from inspection.data.image_cache import load_resized  # noqa: E402
from inspection.data.importers import import_neu  # noqa: E402
from inspection.data.manifest import load_manifest  # noqa: E402
from inspection.evaluation.machine import device_tag, machine_info  # noqa: E402
from inspection.models.factory import create_backbone  # noqa: E402
from inspection.models.normalize import Normalize  # noqa: E402
from inspection.training.fit import ModelConfig, OptimConfig, TrainerConfig, fit_classifier  # noqa: E402


def bare_loop(manifest_csv: Path, spec: PreprocessSpec, a: argparse.Namespace, dev: str) -> dict:
    """The reference: a plain loop with everything on the device, nothing overlapped or abstracted."""
    m = load_manifest(manifest_csv)
    idx = {c: i for i, c in enumerate(m.classes)}
    parts = {s: m.split(s) for s in ("train", "val")}
    imgs = {s: torch.from_numpy(load_resized([m.abspath(p) for p in d["path"]], spec)).to(dev) for s, d in parts.items()}
    ys = {s: torch.tensor(d["label"].map(idx).to_numpy(), device=dev) for s, d in parts.items()}
    torch.manual_seed(0)
    net = create_backbone(a.backbone, len(m.classes), spec.channels).to(dev)
    cl = dev == "cuda"
    if cl:
        net = net.to(memory_format=torch.channels_last)
    norm = Normalize(spec, channels_last=cl).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=5e-4)
    n = len(ys["train"])
    steps = n // a.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps * a.epochs, pct_start=0.2)
    aug = AugmentConfig(shift=0.1, brightness=0.0, contrast=0.0)
    amp = torch.autocast(dev, dtype=torch.bfloat16, enabled=cl)
    if cl:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(a.epochs):
        net.train()
        perm = torch.randperm(n, device=dev)
        for s in range(steps):
            b = perm[s * a.batch : (s + 1) * a.batch]
            with amp:
                loss = F.cross_entropy(net(augment_batch(norm(imgs["train"][b]), aug)).float(), ys["train"][b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad(), amp:
            acc = (net(norm(imgs["val"])).argmax(1) == ys["val"]).float().mean().item()
    if cl:
        torch.cuda.synchronize()
    secs = time.perf_counter() - start
    return {"fit_seconds": secs, "img_per_s": steps * a.batch * a.epochs / secs, "val_accuracy": acc}


def lightning_fit(manifest_csv: Path, spec: PreprocessSpec, a: argparse.Namespace, dev: str, work: Path) -> dict:
    # Batched augmentation on the training device, as the bare loop does (on a CPU box that device is the CPU).
    data = DataConfig(str(manifest_csv), spec, batch_size=a.batch, num_workers=a.workers, augment_on="gpu",
                      augment=AugmentConfig(shift=0.1, brightness=0.0, contrast=0.0))
    tr = TrainerConfig(max_epochs=a.epochs, accelerator="gpu" if dev == "cuda" else "cpu",
                       precision="bf16-mixed" if dev == "cuda" else "32-true", channels_last=dev == "cuda",
                       enable_progress_bar=False, log_every_n_steps=50)
    start = time.perf_counter()
    res = fit_classifier(data, ModelConfig(a.backbone), OptimConfig(lr=a.lr, weight_decay=5e-4), tr, work,
                         seed=0, evaluate_splits=("val",))
    total = time.perf_counter() - start
    n = len(load_manifest(manifest_csv).split("train"))
    steps = n // a.batch
    # fit_seconds: Trainer.fit alone (what the bare loop's timer covers); total adds model.pt, curves and the
    # file-based validation evaluation that `inspection train` also does.
    return {"fit_seconds": res.fit_seconds, "img_per_s": steps * a.batch * a.epochs / res.fit_seconds,
            "val_accuracy": res.val_metrics["accuracy"], "fit_classifier_total_seconds": total,
            "best_epoch": res.best_epoch, "data_path": "device-resident batches (data.device_cache)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--keep", type=Path, default=None, help="keep the Lightning run (model.pt) in this folder")
    a = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    info = machine_info()
    spec = PreprocessSpec(a.size, a.size, 1, (0.5,), (0.25,))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        import_neu(a.shared / "neu-det", work / "neu", copy=False)
        csv = work / "neu/manifest.csv"
        bare = bare_loop(csv, spec, a, dev)
        print("bare", json.dumps(bare), flush=True)
        pl_ = lightning_fit(csv, spec, a, dev, a.keep or work / "pl")
        print("lightning", json.dumps(pl_), flush=True)
    res = {"backbone": a.backbone, "epochs": a.epochs, "batch": a.batch, "size": a.size, "device": dev,
           "bare_loop": bare, "lightning": pl_, "ratio_img_per_s": pl_["img_per_s"] / bare["img_per_s"],
           "ratio_fit_time": pl_["fit_seconds"] / bare["fit_seconds"],
           "targets": {"ratio_img_per_s": ">= 0.9", "ratio_fit_time": "<= 1.25"}, "machine": info}
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"train_throughput_{device_tag(info)}.json"
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {path}: ratio img/s {res['ratio_img_per_s']:.2f}, fit time ×{res['ratio_fit_time']:.2f}")


if __name__ == "__main__":
    main()
