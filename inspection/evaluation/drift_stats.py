"""Two-sample tests for drift: class/verdict mix (chi-square, PSI), scores (KS, normed Wasserstein), vectors (MMD).

Small samples are judged by p-values; from `LARGE_N` rows on, every tiny difference is significant, so (as
Evidently does) effect sizes with fixed thresholds decide instead: PSI ≥ 0.1 for a mix, a Wasserstein distance of
at least 0.1 reference standard deviations for a score.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

LARGE_N = 1000
PSI_DRIFT = 0.1  # 0.1-0.2: moderate shift, > 0.2: large (the credit-scoring rule of thumb)
WASSERSTEIN_DRIFT = 0.1  # in reference standard deviations (Evidently's default)


def psi(ref: np.ndarray, cur: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index of two count vectors over the same categories."""
    p = np.asarray(ref, float) / max(np.sum(ref), 1)
    q = np.asarray(cur, float) / max(np.sum(cur), 1)
    p, q = np.clip(p, eps, None), np.clip(q, eps, None)
    return float(np.sum((q - p) * np.log(q / p)))


def categorical_test(ref: list[str], cur: list[str]) -> dict:
    """Mix of categories: chi-square test of homogeneity (p-value) and PSI (effect size), with the counts."""
    cats = sorted(set(ref) | set(cur))
    rc = np.array([sum(1 for x in ref if x == c) for c in cats])
    cc = np.array([sum(1 for x in cur if x == c) for c in cats])
    if len(cats) < 2 or len(ref) == 0 or len(cur) == 0:
        p = 1.0
    else:
        p = float(chi2_contingency(np.stack([rc, cc]))[1])
    return {"test": "chi-square", "p_value": p, "psi": psi(rc, cc), "categories": cats,
            "reference": (rc / max(rc.sum(), 1)).round(4).tolist(), "current": (cc / max(cc.sum(), 1)).round(4).tolist()}


def numeric_test(ref: np.ndarray, cur: np.ndarray) -> dict:
    """Scores: two-sample KS (p-value) and the Wasserstein distance in reference standard deviations."""
    ref, cur = np.asarray(ref, float), np.asarray(cur, float)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if len(ref) < 2 or len(cur) < 2:
        return {"test": "ks", "p_value": 1.0, "statistic": 0.0, "wasserstein_std": 0.0}
    ks = ks_2samp(ref, cur)
    scale = ref.std() if ref.std() > 0 else 1.0
    return {"test": "ks", "p_value": float(ks.pvalue), "statistic": float(ks.statistic),
            "wasserstein_std": float(wasserstein_distance(ref, cur) / scale),
            "reference_mean": float(ref.mean()), "current_mean": float(cur.mean())}


def mmd_test(ref: np.ndarray, cur: np.ndarray, n_perm: int = 200, max_n: int = 500, seed: int = 0) -> dict:
    """Maximum mean discrepancy (RBF kernel, median-heuristic bandwidth) with a permutation p-value."""
    rng = np.random.default_rng(seed)
    ref = np.asarray(ref, float)[rng.permutation(len(ref))[:max_n]]
    cur = np.asarray(cur, float)[rng.permutation(len(cur))[:max_n]]
    z = np.concatenate([ref, cur])
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    k = np.exp(-d2 / (np.median(d2[d2 > 0]) if (d2 > 0).any() else 1.0))
    n = len(ref)

    def stat(idx: np.ndarray) -> float:
        a, b = idx[:n], idx[n:]
        return k[np.ix_(a, a)].mean() + k[np.ix_(b, b)].mean() - 2 * k[np.ix_(a, b)].mean()

    base = np.arange(len(z))
    observed = stat(base)
    perms = np.array([stat(rng.permutation(base)) for _ in range(n_perm)])
    return {"test": "mmd", "statistic": float(observed), "p_value": float((1 + (perms >= observed).sum()) / (1 + n_perm))}


def drifted(result: dict, n: int, alpha: float) -> bool:
    """The decision for one test: p-value below alpha at small n; effect size over its threshold at large n."""
    if n >= LARGE_N and "psi" in result:
        return result["psi"] >= PSI_DRIFT
    if n >= LARGE_N and "wasserstein_std" in result:
        return result["wasserstein_std"] >= WASSERSTEIN_DRIFT
    return result["p_value"] < alpha
