"""Has the line changed since the reference run? Distribution tests per chunk + a label-free accuracy estimate.

Each chunk of the current run (in time order, `chunk` rows each, or the whole run) is compared with the reference:
the predicted-class mix and the verdict mix (chi-square / PSI), confidence and p_ng (KS / Wasserstein), image
statistics when present (KS / Wasserstein), `emb_*` embedding columns when both runs have them (MMD with a
permutation test). The tests of one chunk share its alpha (Bonferroni), so an unchanged
line raises a false alarm in at most `alpha` of its chunks.

The accuracy estimate is confidence-based performance estimation (CBPE, as NannyML does it): with a calibrated
model, the expected accuracy of a chunk is the mean of its confidences. Confidences are first calibrated on the
reference (isotonic regression of "was the prediction right" on confidence) when the reference has labels. A
chunk whose estimate falls `sigmas` standard errors (and at least `max_drop`) below the reference raises an alarm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from inspection.evaluation.drift_inputs import IMAGE_STATS
from inspection.evaluation.drift_stats import categorical_test, drifted, mmd_test, numeric_test


@dataclass
class DriftConfig:
    """Thresholds of the drift tests."""

    alpha: float = 0.05  # per chunk, over all its tests (Bonferroni)
    chunk: int | None = None  # rows per chunk of the current run, in order; None = the whole run at once
    sigmas: float = 3.0  # CBPE alarm: estimate below reference − sigmas × its standard error ...
    max_drop: float = 0.02  # ... and at least this far below (a tolerated loss of accuracy)


class Calibrator:
    """P(prediction right | confidence): isotonic on the labelled reference, identity without labels."""

    def __init__(self, ref: pd.DataFrame):
        self.fitted = None
        labelled = "label" in ref and (ref["label"].astype(str) != "").all()
        if labelled:
            from sklearn.isotonic import IsotonicRegression

            right = (ref["label"].astype(str) == ref["predicted"].astype(str)).to_numpy(float)
            self.fitted = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(ref["confidence"], right)

    def __call__(self, confidence: pd.Series | np.ndarray) -> np.ndarray:
        c = np.nan_to_num(np.asarray(confidence, float), nan=0.0)
        return self.fitted.predict(c) if self.fitted is not None else c


def true_accuracy(df: pd.DataFrame) -> float | None:
    """Accuracy where every row has a label, else None."""
    if "label" not in df or (df["label"].astype(str) == "").any():
        return None
    return float((df["label"].astype(str) == df["predicted"].astype(str)).mean())


def chunks(cur: pd.DataFrame, size: int | None) -> list[tuple[int, int]]:
    """[start, end) row ranges; a last chunk under half the size joins the one before it."""
    n = len(cur)
    if not size or size >= n:
        return [(0, n)]
    bounds = [(s, min(s + size, n)) for s in range(0, n, size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < size / 2:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def compare_chunk(ref: pd.DataFrame, cur: pd.DataFrame, calib: Calibrator, cfg: DriftConfig) -> dict:
    """Every test that both runs support, the CBPE estimate, and the chunk's verdict."""
    tests = {"predicted": categorical_test(ref["predicted"].astype(str).tolist(), cur["predicted"].astype(str).tolist())}
    if "verdict" in ref and "verdict" in cur:
        tests["verdict"] = categorical_test(ref["verdict"].astype(str).tolist(), cur["verdict"].astype(str).tolist())
    for col in ("confidence", "p_ng", *IMAGE_STATS):
        if col in ref and col in cur and ref[col].notna().any() and cur[col].notna().any():
            tests[col] = numeric_test(ref[col].to_numpy(float), cur[col].to_numpy(float))
    emb = [c for c in ref.columns if c.startswith("emb_") and c in cur.columns]
    if emb:  # an embedding summary per row (e.g. pooled features projected to a few dimensions)
        tests["embedding"] = mmd_test(ref[emb].to_numpy(float), cur[emb].to_numpy(float))
    a = cfg.alpha / len(tests)
    for t in tests.values():
        t["drift"] = drifted(t, len(cur), a)
    c_ref = calib(ref["confidence"])
    expected = float(c_ref.mean())
    se = float(c_ref.std() / np.sqrt(len(cur)))
    estimate = float(calib(cur["confidence"]).mean())
    threshold = expected - max(cfg.sigmas * se, cfg.max_drop)
    perf = {"estimated_accuracy": estimate, "reference_accuracy": expected, "threshold": threshold,
            "drift": estimate < threshold, "true_accuracy": true_accuracy(cur)}
    if perf["true_accuracy"] is not None:
        perf["estimate_error"] = estimate - perf["true_accuracy"]
    reasons = [k for k, t in tests.items() if t["drift"]] + (["estimated accuracy"] if perf["drift"] else [])
    return {"n": len(cur), "tests": tests, "performance": perf, "alpha_per_test": a, "drift": bool(reasons),
            "reasons": reasons}


def run_drift(ref: pd.DataFrame, cur: pd.DataFrame, cfg: DriftConfig | None = None) -> dict:
    """Compare the current run (whole or in chunks) with the reference → a JSON-able report."""
    cfg = cfg or DriftConfig()
    calib = Calibrator(ref)
    out_chunks = []
    for k, (s, e) in enumerate(chunks(cur, cfg.chunk)):
        res = compare_chunk(ref, cur.iloc[s:e].reset_index(drop=True), calib, cfg)
        out_chunks.append({"index": k, "start": s, "end": e, **res})
    return {
        "reference": {"n": len(ref), "accuracy": true_accuracy(ref), "calibrated": calib.fitted is not None},
        "current": {"n": len(cur), "accuracy": true_accuracy(cur)},
        "config": asdict(cfg),
        "chunks": out_chunks,
        "n_drifted_chunks": sum(c["drift"] for c in out_chunks),
        "drift": any(c["drift"] for c in out_chunks),
    }
