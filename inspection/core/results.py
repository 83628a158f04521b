"""Per-image outcomes: ImageResult (what an engine yields while inspecting) and ResultRecord (what evaluation
scores, for torch, ONNX and edge outputs alike)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inspection.core.postprocess import Verdict


@dataclass
class ImageResult:
    """One image's outcome in a batch run: probabilities and verdict, or the reason it could not be read."""

    path: str
    probs: np.ndarray | None = None
    verdict: Verdict | None = None
    error: str | None = None
    defect_map: np.ndarray | None = None  # float [h, w] pixel defect probabilities (defect-aware models only)


@dataclass
class ResultRecord:
    """One image's outcome. `label` is the ground truth when known; `probs` follow the model's class order."""

    path: str
    probs: np.ndarray | None
    label: str | None = None
    error: str | None = None
    meta: dict = field(default_factory=dict)


def records_to_arrays(records: list[ResultRecord], class_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Stack labelled, error-free records → (y_true int[N], probs float[N, C])."""
    idx = {c: i for i, c in enumerate(class_names)}
    rows = [r for r in records if r.error is None and r.probs is not None and r.label is not None]
    unknown = sorted({r.label for r in rows if r.label not in idx})
    if unknown:
        raise ValueError(f"labels {unknown} are not model classes {class_names}")
    y = np.array([idx[r.label] for r in rows], np.int64)
    p = np.stack([np.asarray(r.probs, np.float64) for r in rows]) if rows else np.zeros((0, len(class_names)))
    return y, p
