"""Run comparison arms (baseline / model-centric / data-centric / oracle) × seeds on one gold test split.

Library code: each arm is a manifest plus training overrides; the runs are trained by arm_runner (with a
`train_fn` the CLI supplies, as it owns Hydra); this module reads them back: summaries, paired deltas, flips.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from inspection.data.manifest import load_manifest

ARM_ORDER = ("baseline", "model_centric", "data_centric", "oracle")
# Two-sided 95% Student t quantiles for n-1 degrees of freedom (seeds are few).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


@dataclass
class Arm:
    """One arm: what it trains on and how."""

    name: str
    manifest: Path
    overrides: list[str] = field(default_factory=list)
    note: str = ""


def assert_same_test_split(arms: list[Arm]) -> int:
    """The gold test split must be identical (path, label, sha256) in every arm; returns its size."""
    ref = None
    for arm in arms:
        test = load_manifest(arm.manifest).split("test")[["path", "label", "sha256"]].sort_values("path")
        test = test.reset_index(drop=True)
        if ref is None:
            ref = test
        elif not ref.equals(test):
            raise ValueError(f"arm {arm.name}: its test split differs from {arms[0].name}'s — comparison invalid")
    return 0 if ref is None else len(ref)


def mean_ci(values: list[float]) -> dict:
    """Mean, standard deviation and 95% t-interval half-width over seeds."""
    v = np.asarray(values, float)
    n = len(v)
    sd = float(v.std(ddof=1)) if n > 1 else 0.0
    half = _T95.get(n - 1, 1.96) * sd / math.sqrt(n) if n > 1 else float("nan")
    return {"mean": float(v.mean()), "std": sd, "ci95": half, "n": n, "values": [float(x) for x in v]}


def _load_metrics(run: Path) -> dict:
    return json.loads((run / "eval_test" / "metrics.json").read_text())


def _predictions(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "eval_test" / "predictions.csv", dtype=str, keep_default_na=False)


def arm_summary(runs: list[Path]) -> dict:
    """Accuracy/macro-F1 with CI over seeds, per-class recall means, OK/NG escape/overkill when present."""
    ms = [_load_metrics(r) for r in runs]
    out = {"accuracy": mean_ci([m["accuracy"] for m in ms]), "macro_f1": mean_ci([m["macro_f1"] for m in ms]),
           "per_class_recall": {c: float(np.mean([m["per_class"][c]["recall"] for m in ms]))
                                for c in ms[0]["per_class"]},
           "runs": [str(r) for r in runs]}
    if all("okng" in m for m in ms):
        for key in ("auroc", "escape_rate", "overkill_rate"):
            out[key] = mean_ci([m["okng"][key] for m in ms])
    return out


def paired_delta(baseline: list[Path], other: list[Path], metric: str = "accuracy") -> dict:
    """`other` minus `baseline` per seed (runs paired by seed, same order), with the 95% t-interval of the mean.

    Pairing removes the seed-to-seed spread both arms share (same initialisation, same batches), so the interval
    is about the difference itself; with identical runs it is exactly 0 ± 0.
    """
    if len(baseline) != len(other):
        raise ValueError(f"paired delta needs the same seeds in both arms: {len(baseline)} vs {len(other)} runs")
    return mean_ci([_load_metrics(o)[metric] - _load_metrics(b)[metric] for b, o in zip(baseline, other)])


def majority_predictions(runs: list[Path]) -> pd.DataFrame:
    """Per test image: the label, the most frequent predicted class over seeds, and how many seeds were right."""
    frames = [_predictions(r)[["path", "label", "predicted"]] for r in runs]
    merged = frames[0].rename(columns={"predicted": "p0"})
    for i, f in enumerate(frames[1:], 1):
        merged = merged.merge(f[["path", "predicted"]].rename(columns={"predicted": f"p{i}"}), on="path")
    cols = [f"p{i}" for i in range(len(frames))]
    merged["predicted"] = merged[cols].mode(axis=1)[0]
    merged["n_correct"] = sum((merged[c] == merged["label"]).astype(int) for c in cols)
    return merged[["path", "label", "predicted", "n_correct"]]


def flipped_verdicts(baseline: list[Path], other: list[Path]) -> pd.DataFrame:
    """Test images whose majority verdict changed from wrong to right (fixed) or right to wrong (broken)."""
    a, b = majority_predictions(baseline), majority_predictions(other)
    m = a.merge(b, on=["path", "label"], suffixes=("_baseline", "_other"))
    right_a, right_b = m["predicted_baseline"] == m["label"], m["predicted_other"] == m["label"]
    m["change"] = np.where(~right_a & right_b, "fixed", np.where(right_a & ~right_b, "broken", ""))
    return m[m["change"] != ""].reset_index(drop=True)
