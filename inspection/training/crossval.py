"""k-fold cross-validation over a manifest: how uncertain are the numbers on small sets (MVTec pill)?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspection.core.errors import ConfigError
from inspection.core.postprocess import Thresholds
from inspection.core.results import ResultRecord
from inspection.data.manifest import Manifest, load_manifest, write_manifest
from inspection.data.splits import kfold_assign
from inspection.evaluation.metrics import compute_metrics


def fold_manifest(manifest: Manifest, folds: list[int], test_fold: int, k: int) -> Manifest:
    """Fold `test_fold` → test, the next fold → val (for checkpoint selection), the rest → train."""
    rows = manifest.rows.copy()
    f = np.asarray(folds)
    rows["split"] = np.where(f == test_fold, "test", np.where(f == (test_fold + 1) % k, "val", "train"))
    return manifest.with_rows(rows, fold=test_fold, k=k)


def write_fold_manifests(manifest_path: str | Path, out_dir: str | Path, k: int = 5, seed: int = 0) -> list[Path]:
    """Write k manifests (same images, rotated splits) beside each other; grouped by content hash."""
    if k < 3:
        raise ConfigError(f"k must be >= 3 (one fold tests, one validates, the rest train), got {k}")
    m = load_manifest(manifest_path)
    folds = kfold_assign(list(m.rows["label"]), list(m.rows["sha256"]), k, seed)
    out = Path(out_dir)
    paths = []
    for i in range(k):
        fm = fold_manifest(m, folds, i, k)
        fm.image_root = m.image_root
        paths.append(write_manifest(fm, out / f"fold{i}" / "manifest.csv"))
    return paths


@dataclass
class CVSummary:
    """Per-fold metrics plus metrics over all out-of-fold predictions."""

    per_fold: list[dict]
    pooled: dict


def summarize_folds(fold_records: list[list[ResultRecord]], class_names: list[str],
                    thresholds: Thresholds | None) -> CVSummary:
    """Score each fold and the pooled out-of-fold predictions with the one metrics function."""
    per = [compute_metrics(r, class_names, thresholds) for r in fold_records]
    pooled = compute_metrics([r for fr in fold_records for r in fr], class_names, thresholds)
    return CVSummary(per, pooled)


def escape_at_overkill(records: list[ResultRecord], class_names: list[str], ok_classes: list[str],
                       overkill: float = 0.05) -> dict:
    """Operating point: the threshold giving at most `overkill` good-called-NG; the escape rate there."""
    ok_idx = [class_names.index(c) for c in ok_classes]
    rows = [r for r in records if r.probs is not None and r.label is not None]
    p_ng = np.array([1 - float(np.asarray(r.probs)[ok_idx].sum()) for r in rows])
    defective = np.array([r.label not in ok_classes for r in rows])
    good_scores = np.sort(p_ng[~defective])
    if len(good_scores) == 0 or defective.sum() == 0:
        return {"threshold": float("nan"), "escape_rate": float("nan"), "overkill_rate": float("nan")}
    # smallest threshold with overkill <= target: above the ceil((1-overkill)*n)-th good score
    k = int(np.ceil((1 - overkill) * len(good_scores))) - 1
    thr = float(np.nextafter(good_scores[min(max(k, 0), len(good_scores) - 1)], 1.0))
    return {"threshold": thr, "escape_rate": float((p_ng[defective] < thr).mean()),
            "overkill_rate": float((p_ng[~defective] >= thr).mean())}
