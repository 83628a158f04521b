"""Is a model degenerate? One class predicted for (nearly) every image, or decisions no better than chance.

One function, `degenerate_warnings(metrics)`, reads the dict `evaluation.metrics.compute_metrics` returns, so
train, evaluate, export (the gates) and verify warn on the same grounds. A model that always answers "OK" scores
the OK share as accuracy and passes a gate that only compares it with itself; these checks catch it.
"""

from __future__ import annotations

import math

import numpy as np

ONE_CLASS_SHARE = 0.95  # predicting one class for ≥ this share of the images…
MIN_IMAGES = 10  # …or judging chance is meaningless below this many labelled images
Z = 1.96  # two-sided 95% normal quantile: "within noise"


def _noise(p: float, n: int) -> float:
    """95% half-width of a proportion p measured on n images (at least one image's worth)."""
    return max(Z * math.sqrt(max(p * (1 - p), 0.0) / n), 1.0 / n)


def degenerate_warnings(metrics: dict) -> list[str]:
    """Plain-language reasons this model looks degenerate ([] when none); `metrics` from compute_metrics."""
    cm = np.asarray(metrics.get("confusion_matrix") or [[0]], np.int64)
    names = list(metrics.get("class_names") or [str(i) for i in range(len(cm))])
    n = int(cm.sum())
    if n < MIN_IMAGES or len(names) < 2:
        return []
    out = []
    predicted, truth = cm.sum(axis=0) / n, cm.sum(axis=1) / n
    top = int(predicted.argmax())
    if predicted[top] >= ONE_CLASS_SHARE and predicted[top] > truth[top] + _noise(truth[top], n):
        out.append(f"predicts {names[top]!r} for {predicted[top]:.0%} of {n} images (its true share: "
                   f"{truth[top]:.0%})")
    majority = float(truth.max())
    acc = float(metrics.get("accuracy", float("nan")))
    if majority < 1.0 and acc <= majority + _noise(majority, n):
        out.append(f"accuracy {acc:.1%} is within noise of always answering the most common class "
                   f"({names[int(truth.argmax())]!r}, {majority:.1%})")
    okng = metrics.get("okng")
    if okng and okng.get("n_defective") and okng.get("n_good"):
        lo, hi = (okng.get("auroc_ci95") or [float("nan")] * 2)[:2]
        auc = okng.get("auroc", float("nan"))
        if not math.isnan(auc) and ((lo <= 0.5 <= hi) or auc < 0.5):
            out.append(f"OK/NG AUROC {auc:.3f} (95% CI {lo:.3f}–{hi:.3f}) cannot be told from chance (0.5)")
        if okng.get("escape_rate", 0.0) >= ONE_CLASS_SHARE:
            out.append(f"escape rate {okng['escape_rate']:.0%}: nearly every defective image is called OK")
        if okng.get("overkill_rate", 0.0) >= ONE_CLASS_SHARE:
            out.append(f"overkill rate {okng['overkill_rate']:.0%}: nearly every good image is called NG")
    return out


def warning_text(warnings: list[str], where: str = "", loud: bool = True) -> str:
    """One line for command output, `WARNING: ` first when `loud` (logging adds its own level); '' when fine."""
    if not warnings:
        return ""
    text = f"degenerate model{' on ' + where if where else ''}: " + "; ".join(warnings)
    return f"WARNING: {text}" if loud else text


def okng_line(metrics: dict) -> str:
    """The OK/NG summary: AUROC, escape and overkill rates ('' without OK classes)."""
    o = metrics.get("okng")
    if not o:
        return ""
    nd, ng = (f" of {o['n_defective']} defective", f" of {o['n_good']} good") if "n_good" in o else ("", "")
    return f"OK/NG: AUROC {o['auroc']:.3f}, escape {o['escape_rate']:.1%}{nd}, overkill {o['overkill_rate']:.1%}{ng}"
