"""Inter-labeler agreement: Cohen's kappa (pairs), Fleiss' kappa, Krippendorff's alpha (nominal), confusion vs consensus.

All statistics take a label matrix: one row per item, one column per labeler, class index or -1 where that labeler
did not label the item (real multi-labeler CSVs have gaps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from inspection.curation.votes import MISSING, label_matrix, majority_codes


def cohen_kappa(a: np.ndarray, b: np.ndarray, n_classes: int) -> tuple[float, int]:
    """Cohen's kappa of two labelers on the items both labelled → (kappa, n items); nan when undefined."""
    a, b = np.asarray(a), np.asarray(b)
    both = (a != MISSING) & (b != MISSING)
    n = int(both.sum())
    if n == 0:
        return float("nan"), 0
    cm = np.zeros((n_classes, n_classes))
    np.add.at(cm, (a[both], b[both]), 1)
    p_o = np.trace(cm) / n
    p_e = float((cm.sum(1) / n) @ (cm.sum(0) / n))
    if p_e == 1.0:  # both labelers used one single class: agreement is not measurable
        return float("nan"), n
    return float((p_o - p_e) / (1 - p_e)), n


def rating_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Label matrix → N x C counts of how many labelers put each item in each class."""
    counts = np.zeros((labels.shape[0], n_classes), np.int64)
    rows, cols = np.nonzero(labels != MISSING)
    np.add.at(counts, (rows, labels[rows, cols]), 1)
    return counts


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from an N x C count table; items may have different numbers of ratings (≥ 2 used)."""
    counts = np.asarray(counts, float)
    n_i = counts.sum(1)
    counts, n_i = counts[n_i >= 2], n_i[n_i >= 2]  # one rating says nothing about agreement
    if len(counts) == 0:
        return float("nan")
    # Per-item agreement, then chance agreement from the pooled class proportions (Fleiss 1971; with a
    # constant number of ratings per item this is exactly the textbook formula).
    p_item = ((counts**2).sum(1) - n_i) / (n_i * (n_i - 1))
    p_bar = float(p_item.mean())
    p_j = counts.sum(0) / n_i.sum()
    p_e = float((p_j**2).sum())
    if p_e == 1.0:
        return float("nan")
    return (p_bar - p_e) / (1 - p_e)


def krippendorff_alpha_nominal(labels: np.ndarray, n_classes: int) -> float:
    """Krippendorff's alpha for nominal data with missing values (coincidence-matrix form)."""
    counts = rating_counts(labels, n_classes).astype(float)
    m_u = counts.sum(1)
    counts, m_u = counts[m_u >= 2], m_u[m_u >= 2]  # units coded once are not pairable
    if len(counts) == 0:
        return float("nan")
    # Coincidences o_ck = sum_u n_uc (n_uk - [c==k]) / (m_u - 1)
    o = (counts[:, :, None] * counts[:, None, :]) / (m_u - 1)[:, None, None]
    o = o.sum(0) - np.diag((counts / (m_u - 1)[:, None]).sum(0))
    n_c = o.sum(1)
    n = n_c.sum()
    d_o = n - np.trace(o)  # observed disagreement (mass off the diagonal)
    d_e = (n**2 - (n_c**2).sum()) / (n - 1)  # expected disagreement
    if d_e == 0:
        return float("nan")
    return float(1 - d_o / d_e)


def confusion_vs_reference(labels: np.ndarray, reference: np.ndarray, n_classes: int) -> np.ndarray:
    """C x C counts of (reference class, labeler's class) over items where both exist."""
    ok = (labels != MISSING) & (reference != MISSING)
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (reference[ok], labels[ok]), 1)
    return cm


@dataclass
class AgreementReport:
    """Agreement of a labeler table: per pair, overall, and each labeler against the majority consensus."""

    labelers: list[str]
    n_items: int  # items with at least two labels
    fleiss_kappa: float
    krippendorff_alpha: float
    pairwise: list[dict] = field(default_factory=list)  # {a, b, kappa, n}
    per_labeler: dict[str, dict] = field(default_factory=dict)  # {n, accuracy_vs_consensus, confusion}

    def to_dict(self) -> dict:
        """JSON-ready (nan → None)."""

        def clean(x):
            return None if isinstance(x, float) and np.isnan(x) else x

        return {
            "labelers": self.labelers, "n_items": self.n_items, "fleiss_kappa": clean(self.fleiss_kappa),
            "krippendorff_alpha": clean(self.krippendorff_alpha),
            "pairwise": [{**p, "kappa": clean(p["kappa"])} for p in self.pairwise],
            "per_labeler": {k: {**v, "accuracy_vs_consensus": clean(v["accuracy_vs_consensus"])}
                            for k, v in self.per_labeler.items()},
        }


def agreement_report(table: pd.DataFrame, classes: Sequence[str]) -> AgreementReport:
    """All agreement statistics for a labeler table (columns = labelers, "" = not labelled)."""

    labels = label_matrix(table, classes)
    c = len(classes)
    names = [str(x) for x in table.columns]
    multi = (labels != MISSING).sum(1) >= 2
    pairwise = []
    for i, j in combinations(range(len(names)), 2):
        k, n = cohen_kappa(labels[:, i], labels[:, j], c)
        pairwise.append({"a": names[i], "b": names[j], "kappa": k, "n": n})
    consensus = majority_codes(labels[multi], c) if multi.any() else np.zeros(0, np.int64)
    per = {}
    for j, name in enumerate(names):
        col = labels[multi, j]
        cm = confusion_vs_reference(col, consensus, c)
        n = int(cm.sum())
        per[name] = {"n": n, "accuracy_vs_consensus": float(np.trace(cm) / n) if n else float("nan"),
                     "confusion": cm.tolist()}
    return AgreementReport(
        labelers=names, n_items=int(multi.sum()), fleiss_kappa=fleiss_kappa(rating_counts(labels, c)),
        krippendorff_alpha=krippendorff_alpha_nominal(labels, c), pairwise=pairwise, per_labeler=per,
    )
