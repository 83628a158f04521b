"""PNG plots people look at: confusion matrices and training curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on training boxes or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from inspection.core.class_labels import legend, short_labels  # noqa: E402


def plot_confusion(cm: list[list[int]] | np.ndarray, class_names: list[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix with raw counts in the cells."""
    cm = np.asarray(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    size = max(4.0, 0.7 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    short = short_labels(class_names, 24)  # long names numbered, never cut; the full names under the plot
    ticks = [short[str(c)] for c in class_names]
    ax.set_xticks(range(len(class_names)), ticks, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), ticks)
    ax.set_xlabel("\n".join(["predicted", *legend(short)]))  # the legend sits under the axis, inside the layout
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title or "confusion matrix (row-normalised colour, counts in cells)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_training_curves(history: list[dict], path: str | Path) -> Path | None:
    """Loss and validation accuracy per epoch from a list of {epoch, train_loss, val_loss, val_acc} dicts."""
    if not history:
        return None
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key in ("train_loss", "val_loss"):
        vals = [h.get(key) for h in history]
        if any(v is not None for v in vals):
            a1.plot(ep, [np.nan if v is None else v for v in vals], marker="o", label=key)
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.legend()
    for key in ("val_acc", "val_macro_f1"):
        vals = [h.get(key) for h in history]
        if any(v is not None for v in vals):
            a2.plot(ep, [np.nan if v is None else v for v in vals], marker="o", label=key)
    a2.set_xlabel("epoch")
    a2.set_ylim(0, 1.02)
    if a2.get_lines():
        a2.legend()
    else:  # trained without a validation split (e.g. the audit's cross-validation folds)
        a2.text(0.5, 0.5, "no validation split", ha="center", va="center", transform=a2.transAxes)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
