"""Per-slice deltas between the arms of a compare: where did the data work help, and where not?

Every arm is scored on the same gold test images, so the comparison is paired: per image, the share of an arm's
seeds that got it right, minus the baseline's; averaged over a slice's images, with a 95% bootstrap interval that
resamples images (the seeds stay with their image).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from inspection.core.files import atomic_write_text
from inspection.data.manifest import META_PREFIX, Manifest
from inspection.evaluation.slices_table import MAX_LEVELS, match_paths

DELTA_COLUMNS = ["slice", "arm", "n", "baseline_accuracy", "accuracy", "delta", "delta_lo", "delta_hi"]


def per_image_correct(predictions: list[pd.DataFrame], manifest: Manifest) -> pd.Series:
    """Share of seeds right per test image (index = manifest path), from each seed's predictions.csv."""
    shares = []
    for df in predictions:
        rel = match_paths(df["path"].astype(str).tolist(), manifest)
        labels = manifest.rows.set_index("path")["label"]
        right = [r is not None and p == labels[r] for r, p in zip(rel, df["predicted"].astype(str))]
        shares.append(pd.Series(right, index=[r or f"?{i}" for i, r in enumerate(rel)], dtype=float))
    return pd.concat(shares, axis=1).mean(axis=1)


def slice_deltas(arms: dict[str, list[pd.DataFrame]], manifest: Manifest, baseline: str = "baseline",
                 min_size: int = 10, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (slice, arm): accuracy of the arm and of the baseline, delta with its 95% bootstrap interval."""
    score = {a: per_image_correct(p, manifest) for a, p in arms.items()}
    test = manifest.split("test").set_index("path")
    test = test.loc[test.index.intersection(score[baseline].index)]
    cols = {"class": test["label"].astype(str)}
    cols.update({c: test[c].astype(str) for c in test.columns
                 if c.startswith(META_PREFIX) and 1 < test[c].nunique() <= MAX_LEVELS})
    slices = [("all", np.ones(len(test), bool))]
    slices += [(f"{c}={v}", (s == v).to_numpy()) for c, s in cols.items() for v in sorted(s.unique()) if v != ""]
    rng = np.random.default_rng(seed)
    base = score[baseline].reindex(test.index).to_numpy()
    rows: list[dict] = []
    for name, mask in slices:
        n = int(mask.sum())
        if n < min_size:
            continue
        idx = rng.integers(0, n, (n_boot, n))
        for arm, s in score.items():
            if arm == baseline:
                continue
            d = s.reindex(test.index).to_numpy()[mask] - base[mask]
            boots = d[idx].mean(axis=1)
            rows.append({"slice": name, "arm": arm, "n": n, "baseline_accuracy": float(base[mask].mean()),
                         "accuracy": float(s.reindex(test.index).to_numpy()[mask].mean()), "delta": float(d.mean()),
                         "delta_lo": float(np.percentile(boots, 2.5)), "delta_hi": float(np.percentile(boots, 97.5))})
    return pd.DataFrame(rows, columns=DELTA_COLUMNS)


def slice_deltas_markdown(table: pd.DataFrame, arm: str = "data_centric") -> str:
    """A Markdown table of one arm's deltas, biggest gains first; intervals that exclude 0 in bold."""
    t = table[table["arm"] == arm].sort_values("delta", ascending=False)
    if t.empty:  # a tiny test split: no slice reaches the minimum size
        return f"# Per-slice deltas: {arm} vs baseline\n\nNo slice of the gold test split is large enough to compare.\n"
    lines = [f"# Per-slice deltas: {arm} vs baseline", "",
             "Accuracy on the gold test images of each slice (share of seeds right per image, averaged), and the "
             "paired difference with a 95% bootstrap interval over images.", "",
             "| slice | n | baseline | " + arm + " | delta [95% CI] |", "|---|---|---|---|---|"]
    for r in t.itertuples():
        sure = r.delta_lo > 0 or r.delta_hi < 0
        d = f"{r.delta:+.1%} [{r.delta_lo:+.1%}, {r.delta_hi:+.1%}]"
        lines.append(f"| {r.slice} | {r.n} | {r.baseline_accuracy:.1%} | {r.accuracy:.1%} | "
                     f"{'**' + d + '**' if sure else d} |")
    return "\n".join(lines) + "\n"


def write_slice_deltas(runs: dict[str, list[Path]], manifest: Manifest, out_dir: Path) -> Path:
    """slice_deltas.csv (every arm) + slice_deltas.md (data_centric vs baseline) from the arms' test predictions."""
    preds = {a: [pd.read_csv(r / "eval_test" / "predictions.csv", dtype=str, keep_default_na=False) for r in rs]
             for a, rs in runs.items()}
    table = slice_deltas(preds, manifest)
    atomic_write_text(out_dir / "slice_deltas.csv", table.to_csv(index=False, float_format="%.4f"))
    atomic_write_text(out_dir / "slice_deltas.md", slice_deltas_markdown(table))
    return out_dir / "slice_deltas.md"
