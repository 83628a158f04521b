"""Parity gate: the exported model run through the edge runner must match the training-side evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from inspection.core.results import ResultRecord
from inspection.edge.inspector import OnnxInspector
from inspection.evaluation.predict import predict_files
from inspection.models.checkpoint import LoadedModel

FP32_TOLERANCE = 1e-4


@dataclass
class ParityReport:
    """How closely two predictors agree on the same files."""

    n: int
    max_abs_diff: float
    agreement: float  # fraction of images with the same top-1 class
    n_top1_diff: int
    tolerance: float | None  # None: only top-1 agreement is reported (fp16/int8 go through the accuracy gate)
    passed: bool
    problems: list[str] = field(default_factory=list)
    worst_path: str | None = None
    map_max_abs_diff: float | None = None  # defect-map models: max |Δ| over every map pixel (same tolerance)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_text(self) -> str:
        tol = f" (limit {self.tolerance:g})" if self.tolerance is not None else ""
        verdict = ("PASSED" if self.passed else "FAILED") if self.tolerance is not None else "(informational)"
        head = (f"parity {verdict} on {self.n} images: max |dp| = "
                f"{self.max_abs_diff:.2e}{tol}, top-1 agreement {self.agreement:.2%} ({self.n_top1_diff} differ)")
        if self.map_max_abs_diff is not None:
            head += f"; defect map max |d| = {self.map_max_abs_diff:.2e}"
        return "\n".join([head, *(f"  - {p}" for p in self.problems[:10])])


def predict_files_edge(inspector: OnnxInspector, paths: Sequence[str | Path], labels: Sequence[str] | None = None,
                       batch_size: int = 32, workers: int | None = None) -> list[ResultRecord]:
    """Run files through the edge batch runner (decode → resize → ONNX) and return ResultRecords in input order."""
    label_of = {str(p): (labels[i] if labels else None) for i, p in enumerate(paths)}
    records = []
    for batch in inspector.iter_results([str(p) for p in paths], batch_size, workers):
        for r in batch:
            meta = {"runtime": "onnxruntime", "model_hash": inspector.model_hash}
            if r.defect_map is not None:
                meta["defect_map"] = r.defect_map
            records.append(ResultRecord(r.path, r.probs, label_of[r.path], error=r.error, meta=meta))
    return records


def compare_records(reference: list[ResultRecord], candidate: list[ResultRecord],
                    tolerance: float | None = FP32_TOLERANCE) -> ParityReport:
    """Compare two record lists for the same paths: max |Δp|, top-1 agreement, and error mismatches."""
    ref = {r.path: r for r in reference}
    problems: list[str] = []
    diffs, same, worst, worst_d = [], [], None, -1.0
    map_diffs: list[float] = []
    for c in candidate:
        r = ref.get(c.path)
        if r is None:
            problems.append(f"{c.path}: not in the reference predictions")
            continue
        if (r.error is None) != (c.error is None):
            problems.append(f"{c.path}: reference error {r.error!r} vs candidate error {c.error!r}")
            continue
        if r.error is not None:
            continue
        d = float(np.max(np.abs(np.asarray(r.probs, np.float64) - np.asarray(c.probs, np.float64))))
        diffs.append(d)
        if ("defect_map" in r.meta) != ("defect_map" in c.meta):
            problems.append(f"{c.path}: only one side has a defect map")
        elif "defect_map" in r.meta:
            map_diffs.append(float(np.max(np.abs(np.asarray(r.meta["defect_map"], np.float64)
                                                 - np.asarray(c.meta["defect_map"], np.float64)))))
        same.append(int(np.argmax(r.probs)) == int(np.argmax(c.probs)))
        if d > worst_d:
            worst, worst_d = c.path, d
    n = len(diffs)
    max_diff = max(diffs) if diffs else 0.0
    n_diff = int(n - sum(same))
    if n == 0:
        problems.append("no image could be compared")
    if n_diff and tolerance is not None:  # fp16/int8 may flip a few: their accuracy gate decides
        problems.append(f"{n_diff} top-1 decisions differ")
    if tolerance is not None and max_diff > tolerance:
        problems.append(f"max |dp| {max_diff:.2e} > {tolerance:g} (worst: {worst})")
    map_max = max(map_diffs) if map_diffs else None
    if tolerance is not None and map_max is not None and map_max > tolerance:
        problems.append(f"defect map max |d| {map_max:.2e} > {tolerance:g}")
    passed = not problems
    return ParityReport(n, max_diff, (sum(same) / n) if n else 0.0, n_diff, tolerance, passed, problems, worst,
                        map_max)


def card_mismatch(inspector: OnnxInspector, model: LoadedModel) -> list[str]:
    """Differences in the decision configuration (classes, preprocessing, thresholds) between a checkpoint and an
    exported model's card: an edited card (e.g. every class made OK) fails here even when the numbers agree."""
    problems = []
    if list(inspector.class_names) != list(model.class_names):
        problems.append(f"class names differ: checkpoint {model.class_names} vs ONNX {inspector.class_names}")
    if inspector.spec != model.spec:
        # Caught even where the numbers happen to agree (e.g. letterbox vs stretch on square images).
        problems.append(f"preprocessing differs: checkpoint {model.spec} vs ONNX card {inspector.spec}")
    ours, theirs = model.thresholds.to_dict(), inspector.card.thresholds.to_dict()
    for key in ours:
        if ours[key] != theirs[key]:
            problems.append(f"thresholds.{key} differs: checkpoint {ours[key]!r} vs ONNX card {theirs[key]!r}")
    return problems


def check_parity(inspector: OnnxInspector, model: LoadedModel, paths: Sequence[str | Path],
                 tolerance: float | None = FP32_TOLERANCE, batch_size: int = 32) -> ParityReport:
    """Edge runner vs `evaluation.predict.predict_files` on real image files."""
    mismatch = card_mismatch(inspector, model)
    if any(m.startswith("class names") for m in mismatch):
        return ParityReport(0, float("inf"), 0.0, 0, tolerance, False, mismatch)
    reference = predict_files(model, list(paths), batch_size=batch_size)
    candidate = predict_files_edge(inspector, paths, batch_size=batch_size)
    return add_problems(compare_records(reference, candidate, tolerance), mismatch)


def add_problems(report: ParityReport, problems: list[str]) -> ParityReport:
    """Append problems found outside the numbers (card mismatches); any problem fails the report."""
    report.problems[:0] = problems  # first: the report shows at most 10 problems
    report.passed = report.passed and not problems
    return report
