"""Statistics for slice analysis: bootstrap intervals, the slice-vs-rest test, multiple-comparison corrections.

Everything is vectorised over bootstrap draws so that a few hundred slices × 1,000 draws stay well under a second.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import fisher_exact

CORRECTIONS = ("bh", "holm")


def proportion_ci(k: int, n: int, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of k/n (resampling n Bernoulli rows = a binomial draw)."""
    if n == 0:
        return float("nan"), float("nan")
    draws = np.random.default_rng(seed).binomial(n, k / n, n_boot) / n
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def gap_ci(k_in: int, n_in: int, k_out: int, n_out: int, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of k_in/n_in − k_out/n_out (slice and rest resampled independently)."""
    if n_in == 0 or n_out == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    d = rng.binomial(n_in, k_in / n_in, n_boot) / n_in - rng.binomial(n_out, k_out / n_out, n_boot) / n_out
    return float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))


def macro_f1_boot(y: np.ndarray, pred: np.ndarray, n_classes: int, n_boot: int = 1000,
                  seed: int = 0) -> tuple[float, float, float]:
    """Macro-F1 over the classes present in `y` or `pred`, with its 95% bootstrap interval (vectorised)."""
    n = len(y)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    codes = np.asarray(y, np.int64) * n_classes + np.asarray(pred, np.int64)
    present = np.zeros(n_classes, bool)
    present[np.unique(y)] = True
    present[np.unique(pred)] = True

    def f1(cms: np.ndarray) -> np.ndarray:  # cms: B x C x C → B macro-F1 values
        tp = np.diagonal(cms, axis1=1, axis2=2).astype(float)
        col, row = cms.sum(axis=1), cms.sum(axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.nan_to_num(2 * tp / (col + row))
        return f[:, present].mean(axis=1)

    point = f1(np.bincount(codes, minlength=n_classes**2).reshape(1, n_classes, n_classes))[0]
    idx = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    flat = codes[idx] + (np.arange(n_boot)[:, None] * n_classes**2)
    cms = np.bincount(flat.ravel(), minlength=n_boot * n_classes**2).reshape(n_boot, n_classes, n_classes)
    boots = f1(cms)
    return float(point), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def worse_than_rest_p(k_in: int, n_in: int, k_out: int, n_out: int) -> float:
    """One-sided Fisher exact p-value that the slice's error rate exceeds the rest's (k = errors, n = rows)."""
    if n_in == 0 or n_out == 0:
        return 1.0
    table = [[k_in, n_in - k_in], [k_out, n_out - k_out]]
    return float(fisher_exact(table, alternative="greater")[1])


def adjust_pvalues(p: np.ndarray, method: str = "bh") -> np.ndarray:
    """Benjamini-Hochberg (false discovery rate) or Holm (family-wise error) adjusted p-values."""
    p = np.asarray(p, float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order]
    if method == "bh":
        adj = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    elif method == "holm":
        adj = np.maximum.accumulate(ranked * (m - np.arange(m)))
    else:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {method!r}")
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out
