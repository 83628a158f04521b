"""Accuracy benchmarks on the real sets: NEU (gold labels, N seeds) and MVTec pill OK/NG (k-fold CV).

python scripts/bench_accuracy.py neu  [--seeds 3 --epochs 40 --size 200 --backbone resnet18]
python scripts/bench_accuracy.py pill [--folds 5 --epochs 60 --size 256]
Writes benchmarks/results/accuracy_<dataset>_<device>.json. Meant for a GPU; runs (slowly) on CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inspection.core.preprocess import PreprocessSpec  # noqa: E402
from inspection.data.augment import AugmentConfig  # noqa: E402
from inspection.data.datamodule import DataConfig  # noqa: E402
from inspection.data.importers import import_mvtec, import_neu  # noqa: E402
from inspection.data.manifest import load_manifest  # noqa: E402
from inspection.evaluation.machine import device_tag, machine_info  # noqa: E402
from inspection.evaluation.predict import predict_files  # noqa: E402
from inspection.models.checkpoint import load_checkpoint  # noqa: E402
from inspection.training.crossval import escape_at_overkill, summarize_folds, write_fold_manifests  # noqa: E402
from inspection.training.fit import ModelConfig, OptimConfig, TrainerConfig, fit_classifier  # noqa: E402


def trainer_cfg(epochs: int) -> TrainerConfig:
    if torch.cuda.is_available():
        return TrainerConfig(max_epochs=epochs, accelerator="gpu", precision="bf16-mixed", channels_last=True,
                             enable_progress_bar=False)
    return TrainerConfig(max_epochs=epochs, accelerator="cpu", enable_progress_bar=False)


def bench_neu(a: argparse.Namespace, work: Path) -> dict:
    import_neu(a.shared / "neu-det", work / "neu", seed=0, copy=False)
    spec = PreprocessSpec(a.size, a.size, 1, (0.5,), (0.25,))
    data = DataConfig(str(work / "neu/manifest.csv"), spec, batch_size=a.batch, num_workers=2,
                      augment=AugmentConfig(shift=0.1, brightness=0.0, contrast=0.0), cache_dir=str(work / "cache"))
    runs = []
    for seed in range(a.seeds):
        res = fit_classifier(data, ModelConfig(a.backbone), OptimConfig(lr=a.lr, weight_decay=5e-4), trainer_cfg(a.epochs),
                             work / f"neu_seed{seed}", seed=seed, evaluate_splits=("test",))
        runs.append({"seed": seed, "test_accuracy": res.test_metrics["accuracy"],
                     "test_macro_f1": res.test_metrics["macro_f1"], "fit_seconds": round(res.fit_seconds, 2)})
        print(json.dumps(runs[-1]), flush=True)
    accs = [r["test_accuracy"] for r in runs]
    return {"dataset": "neu", "runs": runs, "test_accuracy_mean": statistics.mean(accs),
            "test_accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "fit_seconds_mean": statistics.mean(r["fit_seconds"] for r in runs), "target": 0.99}


def bench_pill(a: argparse.Namespace, work: Path) -> dict:
    import_mvtec(a.shared / "mvtec-pill", work / "pill", seed=0, copy=False)
    m = load_manifest(work / "pill/manifest.csv")
    spec = PreprocessSpec(a.size, a.size, 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    fold_paths = write_fold_manifests(work / "pill/manifest.csv", work / "pill_folds", k=a.folds, seed=0)
    fold_records, folds = [], []
    for i, fp in enumerate(fold_paths):
        data = DataConfig(str(fp), spec, batch_size=min(a.batch, 32), num_workers=2, class_weighting=True,
                          augment=AugmentConfig(rotate90=True, shift=0.05), cache_dir=str(work / "cache"))
        res = fit_classifier(data, ModelConfig(a.backbone), OptimConfig(lr=a.lr, weight_decay=5e-4),
                             trainer_cfg(a.epochs), work / f"pill_fold{i}", seed=i, evaluate_splits=())
        model = load_checkpoint(res.checkpoint)
        fm = load_manifest(fp)
        test = fm.split("test")
        recs = predict_files(model, [fm.abspath(p) for p in test["path"]], list(test["label"]),
                             device="cuda" if torch.cuda.is_available() else "cpu")
        fold_records.append(recs)
        ok = summarize_folds([recs], model.class_names, model.thresholds).pooled["okng"]
        folds.append({"fold": i, "auroc": ok["auroc"], "escape_rate": ok["escape_rate"],
                      "overkill_rate": ok["overkill_rate"], "fit_seconds": round(res.fit_seconds, 2)})
        print(json.dumps(folds[-1]), flush=True)
    cv = summarize_folds(fold_records, m.classes, model.thresholds)
    pooled = cv.pooled
    all_recs = [r for fr in fold_records for r in fr]
    aurocs = [f["auroc"] for f in folds]
    return {"dataset": "mvtec_pill", "k": a.folds, "folds": folds,
            "oof_auroc": pooled["okng"]["auroc"], "oof_auroc_ci95": pooled["okng"]["auroc_ci95"],
            "fold_auroc_mean": statistics.mean(aurocs), "fold_auroc_min": min(aurocs), "fold_auroc_max": max(aurocs),
            "escape_rate_at_0.5": pooled["okng"]["escape_rate"], "overkill_rate_at_0.5": pooled["okng"]["overkill_rate"],
            "at_5pct_overkill": escape_at_overkill(all_recs, m.classes, m.ok_classes, 0.05),
            "per_class_recall": {c: v["recall"] for c, v in pooled["per_class"].items()},
            "defect_type_accuracy": pooled["accuracy"], "target_auroc": 0.99}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=["neu", "pill"])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--work", type=Path, default=None, help="keep manifests and models here (default: a temp dir)")
    a = ap.parse_args()
    a.epochs = a.epochs or (40 if a.dataset == "neu" else 60)
    a.size = a.size or (200 if a.dataset == "neu" else 256)
    info = machine_info()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or Path(tmp)
        res = bench_neu(a, work) if a.dataset == "neu" else bench_pill(a, work)
    res.update({"backbone": a.backbone, "epochs": a.epochs, "size": a.size, "batch": a.batch, "lr": a.lr,
                "wall_seconds": round(time.perf_counter() - start, 1), "machine": info})
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"accuracy_{a.dataset}_{device_tag(info)}.json"
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
