"""Evaluate a checkpoint on a manifest split: metrics.json, predictions.csv and a confusion-matrix PNG."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

from inspection.core.errors import ManifestError
from inspection.core.files import atomic_write_text
from inspection.core.results import ResultRecord
from inspection.data.leak_check import LeakCheck, warn_if_leaked
from inspection.data.manifest import load_manifest
from inspection.data.pixel_targets import SYNTHETIC_CLASS
from inspection.evaluation.degenerate import degenerate_warnings, warning_text
from inspection.evaluation.metrics import compute_metrics
from inspection.evaluation.plots import plot_confusion
from inspection.evaluation.predict import predict_files
from inspection.models.checkpoint import LoadedModel, load_checkpoint

log = logging.getLogger(__name__)


def write_predictions(records: list[ResultRecord], class_names: list[str], path: Path) -> None:
    """One row per image: path, label, predicted, confidence, p_<class>..., error."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "label", "predicted", "confidence", *[f"p_{c}" for c in class_names], "error"])
    for r in records:
        if r.probs is None:
            w.writerow([r.path, r.label, "", "", *[""] * len(class_names), r.error])
        else:
            k = int(r.probs.argmax())
            w.writerow([r.path, r.label, class_names[k], f"{r.probs[k]:.6f}", *[f"{p:.6f}" for p in r.probs], ""])
    atomic_write_text(path, buf.getvalue())


def same_classes(dataset: list[str], model: list[str]) -> bool:
    """The model's classes are the dataset's, or those plus the class synthetic defects got (OK-only data)."""
    return list(model) in (list(dataset), [*dataset, SYNTHETIC_CLASS])


def evaluate_model(
    model: LoadedModel,
    manifest_path: str | Path,
    split: str,
    out_dir: str | Path,
    device: str = "cpu",
    batch_size: int = 64,
    leak: LeakCheck | None = None,
    cache_dir: str | None = None,
) -> dict:
    """Score `model` on one split of a manifest, reading files through the shared core preprocessing.

    `leak`: the train/val → test near-duplicate check when the caller ran it already (training does, once);
    otherwise it runs here and warns when the test split is leaked. metrics.json records it as `leak_check`.
    """
    manifest = load_manifest(manifest_path)
    if not same_classes(manifest.classes, model.class_names):
        raise ManifestError(f"{manifest_path}: classes {manifest.classes} differ from the model's {model.class_names}")
    part = manifest.split(split)
    if part.empty:
        raise ManifestError(f"{manifest_path}: split {split!r} has no rows")
    paths = [manifest.abspath(p) for p in part["path"]]
    records = predict_files(model, paths, list(part["label"]), batch_size=batch_size, device=device)
    unread = [r for r in records if r.error is not None]
    if unread:  # scored without them: say which, not only as a count in metrics.json
        log.warning("%s/%s: %d image(s) could not be read and are not scored: %s%s", manifest.name, split,
                    len(unread), "; ".join(f"{r.path}: {r.error}" for r in unread[:5]),
                    " …" if len(unread) > 5 else "")
    metrics = compute_metrics(records, model.class_names, model.thresholds)
    metrics.update({"split": split, "manifest": str(manifest_path), "backbone": model.backbone})
    leak = leak or warn_if_leaked(manifest, f"{manifest_path}", cache_dir=cache_dir)
    metrics["leak_check"] = {**leak.record(), "examples": [list(e) for e in leak.examples]}
    metrics["warnings"] = degenerate_warnings(metrics)
    if metrics["warnings"]:
        log.warning("%s", warning_text(metrics["warnings"], f"{manifest.name}/{split}", loud=False))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_predictions(records, model.class_names, out / "predictions.csv")
    plot_confusion(metrics["confusion_matrix"], model.class_names, out / "confusion.png",
                   f"{model.backbone} on {manifest.name}/{split}: acc {metrics['accuracy']:.3f}")
    return metrics


def evaluate_checkpoint(checkpoint: str | Path, manifest_path: str | Path, split: str, out_dir: str | Path,
                        device: str = "cpu", batch_size: int = 64, cache_dir: str | None = None) -> dict:
    """evaluate_model on a checkpoint file."""
    return evaluate_model(load_checkpoint(checkpoint), manifest_path, split, out_dir, device, batch_size,
                          cache_dir=cache_dir)
