"""`inspection export`: checkpoint → fp32 ONNX → parity gate → optional fp16/int8 + accuracy gate → model.onnx."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import onnx

from inspection.core.errors import InspectionError
from inspection.core.files import atomic_write_text
from inspection.core.model_card import ModelCard
from inspection.edge.inspector import OnnxInspector
from inspection.evaluation.degenerate import degenerate_warnings, warning_text
from inspection.evaluation.metrics import compute_metrics
from inspection.evaluation.predict import predict_files
from inspection.export.onnx_export import (
    ExportedModel,
    build_onnx_graph,
    card_from_checkpoint,
    write_exported,
)
from inspection.export.parity import (
    FP32_TOLERANCE,
    ParityReport,
    add_problems,
    card_mismatch,
    compare_records,
    predict_files_edge,
)
from inspection.export.quantize import GateReport, convert_fp16, precision_gate, quantize_int8
from inspection.export.verify import EvalImages, load_eval_images, summarize_metrics
from inspection.models.checkpoint import load_checkpoint

log = logging.getLogger("inspection.export")
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class ExportReport:
    """What was exported, which gates ran, and whether the result was accepted (written as model.onnx)."""

    precision: str
    accepted: bool
    exported: ExportedModel | None = None
    parity: ParityReport | None = None
    gate: GateReport | None = None
    rejected_dir: Path | None = None
    notes: list[str] = field(default_factory=list)

    def to_text(self) -> str:
        lines = []
        if self.parity:
            lines.append(self.parity.to_text())
        if self.gate:
            lines.append(self.gate.to_text())
        lines += [f"note: {n}" for n in self.notes]
        if self.accepted and self.exported:
            lines.append(f"exported {self.precision}: {self.exported.onnx_path} + {self.exported.card_path.name}")
        else:
            where = f" (candidate kept for inspection in {self.rejected_dir})" if self.rejected_dir else ""
            lines.append(f"{self.precision} export REJECTED: nothing written as model.onnx{where}")
        return "\n".join(lines)


def _warn_degenerate(report: ExportReport, card: ModelCard, metrics: dict, where: str) -> None:
    """A model that answers one class for everything passes parity and a gate against itself: say so loudly."""
    warnings = degenerate_warnings(metrics)
    if warnings:
        log.warning("%s", warning_text(warnings, where, loud=False))
        report.notes.append(warning_text(warnings, where))
        card.metrics["warnings"] = warnings


def _default_data(model_extra: dict) -> str | None:
    manifest = model_extra.get("dataset", {}).get("manifest")
    return manifest if manifest and Path(manifest).exists() else None


def _val_images(data: str | None, class_names: list[str], limit: int | None) -> EvalImages | None:
    return load_eval_images(data, class_names, "val", limit) if data else None


def export_model(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, precision: str = "fp32",
                 data: str | os.PathLike | None = None, parity_limit: int | None = 256,
                 calibration_limit: int = 128, gate_limit: int | None = None, device: str = "cpu",
                 override_gate: str = "") -> ExportReport:
    """Export, then gate: fp32 parity ≤ 1e-4 with identical top-1; fp16/int8 accuracy/recall limits vs fp32.

    `override_gate`: a reason to ship a fp16/int8 candidate the accuracy gate rejects; it is recorded in the card
    (metrics.gate.override, with the failed checks). The parity gate cannot be overridden.
    """
    if precision not in PRECISIONS:
        raise InspectionError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    model = load_checkpoint(checkpoint)
    data = str(data) if data else _default_data(model.extra)
    report = ExportReport(precision, accepted=False)
    if data is None:
        if precision != "fp32":
            raise InspectionError(f"{precision} export needs labelled data (--data MANIFEST.csv) for the gate")
        report.notes.append("no --data and no manifest in the checkpoint: parity gate NOT run")
        log.warning("no validation data: exporting without the parity gate")
    proto, exporter = build_onnx_graph(model)
    card = card_from_checkpoint(model, checkpoint, "fp32", exporter)
    card.metrics = {"checkpoint": dict(model.extra.get("metrics", {}))} if model.extra.get("metrics") else {}
    with tempfile.TemporaryDirectory(prefix="inspection-export-") as tmp:
        fp32 = write_exported(proto, card, tmp, "fp32")
        val = _val_images(data, model.class_names, parity_limit)
        if val is not None:
            inspector = OnnxInspector(fp32.onnx_path, device="cpu")
            reference = predict_files(model, val.paths, val.labels)
            edge = predict_files_edge(inspector, val.paths, val.labels)
            report.parity = add_problems(compare_records(reference, edge, FP32_TOLERANCE), card_mismatch(inspector, model))
            card.metrics["parity"] = report.parity.to_dict() | {"data": val.source}
            if not report.parity.passed:
                return report
            if val.labels:
                full = compute_metrics(edge, card.class_names, card.thresholds)
                card.metrics["exported"] = summarize_metrics(full)
                card.metrics["exported"]["data"] = val.source
                _warn_degenerate(report, card, full, val.source)
        if precision == "fp32":
            report.exported = write_exported(proto, card, out_dir)
            report.accepted = True
            return report
        return _lower_precision(report, model, fp32, card, Path(tmp), Path(out_dir), data, calibration_limit,
                                gate_limit, device, override_gate)


def _lower_precision(report: ExportReport, model, fp32: ExportedModel, card: ModelCard, tmp: Path, out_dir: Path,
                     data: str, calibration_limit: int, gate_limit: int | None, device: str,
                     override_gate: str = "") -> ExportReport:
    precision = report.precision
    gate_set = _val_images(data, model.class_names, gate_limit)
    if not gate_set.labels:
        raise InspectionError(f"{data}: {precision} needs labelled validation images for the accuracy gate")
    candidate_path = tmp / f"{precision}.onnx"
    if precision == "fp16":
        convert_fp16(fp32.onnx_path, candidate_path)
    else:
        if not str(data).endswith(".csv"):
            raise InspectionError("int8 calibration needs a manifest (--data MANIFEST.csv) with a train split")
        calib = load_eval_images(data, model.class_names, "train", calibration_limit)
        quantize_int8(fp32.onnx_path, candidate_path, calib.paths)
        card.lineage["calibration"] = {"data": calib.source, "n_images": len(calib.paths), "method": "minmax",
                                       "format": "QDQ", "per_channel": True}
    reference = predict_files(model, gate_set.paths, gate_set.labels)
    inspector = OnnxInspector(candidate_path, device=device)
    candidate = predict_files_edge(inspector, gate_set.paths, gate_set.labels)
    report.gate = precision_gate(reference, candidate, model.class_names, precision, model.thresholds)
    if not report.gate.passed and override_gate.strip():
        report.gate.override = override_gate.strip()
        log.warning("%s gate FAILED and was overridden (%s): %s", precision, report.gate.override,
                    "; ".join(report.gate.reasons))
    lowp_card = replace(card, precision=precision, lineage=dict(card.lineage), metrics=dict(card.metrics))
    lowp_card.metrics["gate"] = report.gate.to_dict() | {"data": gate_set.source}
    full = compute_metrics(candidate, card.class_names, card.thresholds)
    lowp_card.metrics["exported"] = summarize_metrics(full)
    lowp_card.metrics.pop("warnings", None)  # the fp32 model's, if any: this card speaks for the candidate
    _warn_degenerate(report, lowp_card, full, gate_set.source)
    proto = onnx.load(str(candidate_path))
    if report.gate.passed or report.gate.override:
        report.exported = write_exported(proto, lowp_card, out_dir)
        report.accepted = True
    else:
        report.rejected_dir = out_dir / f"rejected-{precision}"
        write_exported(proto, lowp_card, report.rejected_dir)
        atomic_write_text(report.rejected_dir / "gate.json", json.dumps(report.gate.to_dict(), indent=2) + "\n")
    return report
