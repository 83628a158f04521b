"""Re-check any exported model on a manifest or a folder: parity with its checkpoint and accuracy."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from inspection.core.errors import InspectionError, ManifestError
from inspection.core.files import file_sha256
from inspection.edge.inspector import OnnxInspector
from inspection.edge.sources import walk_images
from inspection.evaluation.degenerate import degenerate_warnings, okng_line, warning_text
from inspection.evaluation.metrics import compute_metrics
from inspection.export.parity import (
    FP32_TOLERANCE,
    ParityReport,
    add_problems,
    card_mismatch,
    compare_records,
    predict_files_edge,
)
from inspection.export.quantize import GateReport, precision_gate
from inspection.models.checkpoint import load_checkpoint

log = logging.getLogger("inspection.export")


@dataclass
class EvalImages:
    """Image files (and labels when known) to check a model on."""

    paths: list[str]
    labels: list[str] | None
    source: str


def _spread(items: list, limit: int | None) -> list:
    """At most `limit` items, evenly spaced: every class of a sorted listing is represented, deterministically."""
    if not limit or len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def _label_from_path(path: str, class_names: list[str]) -> str | None:
    p = Path(path)
    if p.parent.name in class_names:  # class folders: data/<class>/x.png
        return p.parent.name
    stem = p.stem.rsplit("_", 1)[0]  # NEU-style flat names: <class>_<n>.jpg
    return stem if stem in class_names else None


def load_eval_images(data: str | os.PathLike, class_names: list[str], split: str = "val",
                     limit: int | None = None) -> EvalImages:
    """A manifest.csv (rows of `split`) or a folder (labels from class folders or `<class>_<n>` file names)."""
    d = Path(data)
    if d.is_dir():
        paths = list(walk_images(d, lambda skipped: log.warning("%s", skipped)))
        if not paths:
            raise InspectionError(f"{d}: no images found")
        paths = _spread(paths, limit)
        labels = [_label_from_path(p, class_names) for p in paths]
        return EvalImages(paths, labels if all(labels) else None, str(d))
    if d.suffix.lower() != ".csv":
        raise InspectionError(f"{d}: expected a manifest .csv or a folder of images")
    from inspection.data.manifest import load_manifest  # pandas: only needed for manifests

    manifest = load_manifest(d)
    unknown = sorted(set(manifest.classes) - set(class_names))
    if unknown:
        raise ManifestError(f"{d}: classes {unknown} are not classes of the model {class_names}")
    rows = manifest.split(split)
    if rows.empty:
        raise ManifestError(f"{d}: no rows in split {split!r}")
    pairs = _spread(list(zip(rows["path"], rows["label"], strict=True)), limit)
    return EvalImages([str(manifest.abspath(p)) for p, _ in pairs], [lab for _, lab in pairs], f"{d}[{split}]")


def summarize_metrics(m: dict) -> dict:
    """The compact subset of compute_metrics stored in the model card."""
    out = {k: m[k] for k in ("n", "n_errors", "accuracy", "macro_f1") if k in m}
    out["recall"] = {c: v["recall"] for c, v in m.get("per_class", {}).items()}
    if "okng" in m:
        out["okng"] = {k: m["okng"][k] for k in ("auroc", "escape_rate", "overkill_rate", "review_rate")}
    return out


def find_checkpoint(inspector: OnnxInspector, checkpoint: str | os.PathLike | None) -> Path | None:
    """The checkpoint to compare with: the one given, else the card's lineage if it is still there and unchanged."""
    if checkpoint:
        p = Path(checkpoint)
        if not p.is_file():
            raise InspectionError(f"{p}: checkpoint not found")
        return p
    lineage = inspector.card.lineage
    p = Path(lineage.get("checkpoint", "")) if lineage.get("checkpoint") else None
    if p is None or not p.is_file():
        return None
    if lineage.get("checkpoint_sha256") and file_sha256(p) != lineage["checkpoint_sha256"]:
        log.warning("%s changed since export (sha256 differs): parity not checked against it", p)
        return None
    return p


@dataclass
class VerifyReport:
    """Parity (when a checkpoint is known) and accuracy of an exported model on some images."""

    model: str
    precision: str
    data: str
    passed: bool
    parity: ParityReport | None = None
    gate: GateReport | None = None
    metrics: dict | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # evaluation.degenerate: one class for everything, chance

    def to_text(self) -> str:
        lines = [f"verify {self.model} ({self.precision}) on {self.data}: {'PASSED' if self.passed else 'FAILED'}"]
        if self.parity:
            lines.append(self.parity.to_text())
        if self.gate:
            lines.append(self.gate.to_text())
        if self.metrics:
            lines.append(f"accuracy {self.metrics['accuracy']:.2%}, macro-F1 {self.metrics['macro_f1']:.3f} "
                         f"on {self.metrics['n']} labelled images")
            if okng_line(self.metrics):
                lines.append(okng_line(self.metrics))
        if self.warnings:
            lines.append(warning_text(self.warnings))
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def verify_model(model_path: str | os.PathLike, data: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
                 split: str = "val", limit: int | None = None, device: str = "cpu",
                 batch_size: int = 32) -> VerifyReport:
    """fp32: parity ≤ 1e-4 and identical top-1 vs the checkpoint; fp16/int8: the accuracy gate vs the checkpoint."""
    inspector = OnnxInspector(model_path, device=device)
    card = inspector.card
    images = load_eval_images(data, card.class_names, split, limit)
    report = VerifyReport(str(model_path), card.precision, images.source, passed=True)
    candidate = predict_files_edge(inspector, images.paths, images.labels, batch_size)
    overridden = ((card.metrics or {}).get("gate") or {}).get("override")
    if overridden:
        report.notes.append(f"its {card.precision} gate FAILED at export and was overridden: {overridden}")
    if images.labels:
        full = compute_metrics(candidate, card.class_names, card.thresholds)
        report.metrics = summarize_metrics(full)
        report.warnings = degenerate_warnings(full)
        if report.warnings:
            log.warning("%s", warning_text(report.warnings, images.source, loud=False))
    else:
        report.notes.append("images carry no labels: accuracy not measured")
    ckpt = find_checkpoint(inspector, checkpoint)
    if ckpt is None:
        # Without the checkpoint the card's classes, preprocessing and thresholds cannot be checked: an edited card
        # (every class OK, thresholds at 1.0) would pass on accuracy alone, so verify refuses to pass it.
        report.notes.append("no checkpoint (pass --checkpoint): the card's decision configuration (classes, "
                            "preprocessing, thresholds) and parity with training cannot be checked")
        report.passed = False
        return report
    from inspection.evaluation.predict import predict_files

    model = load_checkpoint(ckpt)
    reference = predict_files(model, images.paths, images.labels, batch_size)
    lowp = card.precision != "fp32"
    report.parity = add_problems(compare_records(reference, candidate, None if lowp else FP32_TOLERANCE),
                                 card_mismatch(inspector, model))
    if lowp:
        if images.labels:
            report.gate = precision_gate(reference, candidate, card.class_names, card.precision, card.thresholds)
            report.passed = report.gate.passed and not card_mismatch(inspector, model)
        else:
            report.notes.append(f"{card.precision} needs labelled images for the accuracy gate")
            report.passed = False
    else:
        report.passed = report.parity.passed
    return report
