"""Metrics computed from per-image records, so checkpoints, ONNX files and the edge runner are scored alike."""

from __future__ import annotations

import numpy as np

from inspection.core.postprocess import Thresholds, ng_probability
from inspection.core.results import ResultRecord, records_to_arrays


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Rows = truth, columns = prediction."""
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def per_class_scores(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 per class (0 where undefined)."""
    tp = np.diag(cm).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / cm.sum(axis=0))
        recall = np.nan_to_num(tp / cm.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return precision, recall, f1


def auroc(y_pos: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum statistic (ties get average ranks)."""
    y_pos = np.asarray(y_pos, bool)
    n_pos, n_neg = int(y_pos.sum()), int((~y_pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score), float)
    s = np.asarray(score)[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def bootstrap_ci(values: np.ndarray, stat, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of `stat` over resampled rows (how sure is this number?)."""
    rng = np.random.default_rng(seed)
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    stats = [stat(values[rng.integers(0, n, n)]) for _ in range(n_boot)]
    return float(np.nanpercentile(stats, 2.5)), float(np.nanpercentile(stats, 97.5))


def okng_metrics(y: np.ndarray, probs: np.ndarray, class_names: list[str], thresholds: Thresholds) -> dict:
    """OK/NG decision quality: AUROC of p(NG), escape rate (defective called OK), overkill (good called NG)."""
    ok_idx = [class_names.index(c) for c in thresholds.ok_classes]
    defective = ~np.isin(y, ok_idx)
    p_ng = ng_probability(probs, class_names, thresholds.ok_classes)
    called_ng = p_ng >= thresholds.ng
    called_ok = p_ng < thresholds.ok
    n_def, n_good = int(defective.sum()), int((~defective).sum())
    both = np.stack([defective, p_ng], axis=1)
    lo, hi = bootstrap_ci(both, lambda b: auroc(b[:, 0].astype(bool), b[:, 1]))
    return {
        "auroc": auroc(defective, p_ng),
        "auroc_ci95": [lo, hi],
        "escape_rate": float((defective & called_ok).sum() / n_def) if n_def else float("nan"),
        "overkill_rate": float((~defective & called_ng).sum() / n_good) if n_good else float("nan"),
        "review_rate": float((~called_ng & ~called_ok).mean()) if len(y) else float("nan"),
        "n_defective": n_def,
        "n_good": n_good,
        "threshold_ng": thresholds.ng,
        "threshold_ok": thresholds.ok,
    }


def compute_metrics(
    records: list[ResultRecord], class_names: list[str], thresholds: Thresholds | None = None
) -> dict:
    """Accuracy, macro-F1 (with bootstrap 95% CI), per-class P/R/F1, confusion matrix; OK/NG metrics if defined."""
    y, probs = records_to_arrays(records, class_names)
    n = len(class_names)
    pred = probs.argmax(axis=1) if len(y) else np.zeros(0, np.int64)
    cm = confusion_matrix(y, pred, n)
    precision, recall, f1 = per_class_scores(cm)
    pairs = np.stack([y, pred], axis=1)

    def macro_f1(b: np.ndarray) -> float:
        return float(per_class_scores(confusion_matrix(b[:, 0], b[:, 1], n))[2].mean())

    out = {
        "n": int(len(y)),
        "n_errors": sum(1 for r in records if r.error is not None),
        "accuracy": float((pred == y).mean()) if len(y) else float("nan"),
        "accuracy_ci95": list(bootstrap_ci(pairs, lambda b: float((b[:, 0] == b[:, 1]).mean()))),
        "macro_f1": float(f1.mean()),
        "macro_f1_ci95": list(bootstrap_ci(pairs, macro_f1)),
        "class_names": list(class_names),
        "per_class": {
            c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                "support": int(cm[i].sum())}
            for i, c in enumerate(class_names)
        },
        "confusion_matrix": cm.tolist(),
    }
    if thresholds is not None and thresholds.ok_classes:
        out["okng"] = okng_metrics(y, probs, class_names, thresholds)
    return out
