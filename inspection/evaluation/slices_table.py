"""The table slice analysis works on: one row per scored image, predictions joined with the manifest.

Inputs are `inspection evaluate`'s predictions.csv (path, label, predicted, p_<class>...) or an `inspect` output
(CSV or JSONL: path, verdict, predicted, p_ng...). Paths are matched to manifest rows by their absolute path, then
by the manifest's relative path as a suffix, then by a unique file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from inspection.core.errors import InspectionError
from inspection.data.manifest import META_PREFIX, Manifest
from inspection.edge.writers import read_rows

QUALITY_BINS = ("sharpness", "brightness")  # quality.csv measurements cut into tertiles
MAX_LEVELS = 30  # a meta column with more distinct values is binned (numbers) or left out (free text)


@dataclass
class SliceTable:
    """Scored rows (`rows`: path, label, predicted, correct [, defective, escape, overkill]) + slicing columns."""

    rows: pd.DataFrame
    features: list[str]  # columns of `rows` that define slices
    classes: list[str]
    task: str  # "okng" or "multiclass"
    dropped: int  # rows without a prediction (unreadable images)
    source_index: np.ndarray  # row of the predictions file each scored row came from (aligns embeddings)


def read_predictions(path: str | Path) -> pd.DataFrame:
    """predictions.csv of evaluate, or an inspect CSV/JSONL, as a DataFrame of strings."""
    p = Path(path)
    if not p.is_file():
        raise InspectionError(f"{p}: predictions not found")
    if p.suffix.lower() == ".jsonl":
        df = pd.DataFrame(list(read_rows(p)))
        df = df.drop(columns=[c for c in ("top_k",) if c in df]).astype(object).where(df.notna(), "").astype(str)
    else:
        try:
            df = pd.read_csv(p, dtype=str, keep_default_na=False)
        except Exception as e:  # pandas raises many types for a broken CSV
            raise InspectionError(f"{p}: cannot parse CSV ({e})") from None
    missing = [c for c in ("path", "predicted") if c not in df.columns]
    if missing:
        raise InspectionError(f"{p}: missing columns {missing} (expected evaluate's predictions.csv or an "
                              "inspect output)")
    if df.empty:
        raise InspectionError(f"{p}: no rows")
    return df


def match_paths(refs: list[str], manifest: Manifest) -> list[str | None]:
    """Manifest path (relative) for each prediction path, or None."""
    known = manifest.rows["path"].astype(str).tolist()
    by_abs = {str(manifest.abspath(k).resolve()): k for k in known}
    by_name: dict[str, list[str]] = {}
    for k in known:
        by_name.setdefault(PurePosixPath(k).name, []).append(k)
    out: list[str | None] = []
    for ref in refs:
        ref = ref.replace("\\", "/")
        hit = by_abs.get(str(Path(ref).resolve())) if ref else None
        if hit is None:
            cands = by_name.get(PurePosixPath(ref).name, [])
            suffix = [k for k in cands if ref == k or ref.endswith("/" + k)]
            hit = max(suffix, key=len) if suffix else (cands[0] if len(cands) == 1 else None)
        out.append(hit)
    return out


def _binned(values: pd.Series, name: str) -> pd.Series:
    """Tertiles of a numeric column as low / mid / high (blank where missing)."""
    x = pd.to_numeric(values, errors="coerce")
    if x.notna().sum() < 3 or x.nunique() < 3:
        return values.astype(str)
    lo, hi = np.nanpercentile(x, [100 / 3, 200 / 3])
    lab = np.where(x <= lo, f"low (≤{lo:.3g})", np.where(x <= hi, "mid", f"high (>{hi:.3g})"))
    return pd.Series(np.where(x.isna(), "", lab), index=values.index)


def build_table(pred: pd.DataFrame, manifest: Manifest, source: str, quality: pd.DataFrame | None = None,
                ng_threshold: float = 0.5) -> SliceTable:
    """Join predictions with the manifest (labels, meta_*) and the audit's quality.csv → a SliceTable."""
    rel = match_paths(pred["path"].astype(str).tolist(), manifest)
    unmatched = [p for p, r in zip(pred["path"], rel) if r is None]
    if unmatched:
        raise InspectionError(f"{source}: {len(unmatched)} path(s) match no row of manifest {manifest.name}, "
                              f"e.g. {unmatched[:3]}")
    err = pred["error"].astype(str) if "error" in pred else pd.Series("", index=pred.index)
    ok = ((err == "") & (pred["predicted"].astype(str) != "")).to_numpy()
    m = manifest.rows.set_index("path").loc[[r for r, k in zip(rel, ok) if k]]
    p = pred[ok].reset_index(drop=True)
    rows = pd.DataFrame({"path": m.index.to_numpy(), "label": m["label"].to_numpy(),
                         "predicted": p["predicted"].astype(str).to_numpy()})
    unknown = sorted(set(rows["predicted"]) - set(manifest.classes))
    if unknown:
        raise InspectionError(f"{source}: predicted classes {unknown} are not the manifest's {manifest.classes}")
    rows["correct"] = rows["label"] == rows["predicted"]
    if manifest.ok_classes:
        rows["defective"] = ~rows["label"].isin(manifest.ok_classes)
        if "verdict" in p:  # inspect rows: the deployed decision, REVIEW counted as neither
            called_ok, called_ng = (p["verdict"] == "OK").to_numpy(), (p["verdict"] == "NG").to_numpy()
        else:
            p_ng = 1 - sum(pd.to_numeric(p[f"p_{c}"]).to_numpy() for c in manifest.ok_classes) \
                if all(f"p_{c}" in p for c in manifest.ok_classes) else \
                (~p["predicted"].isin(manifest.ok_classes)).to_numpy(float)
            called_ng = p_ng >= ng_threshold
            called_ok = ~called_ng
        rows["escape"] = rows["defective"] & called_ok
        rows["overkill"] = ~rows["defective"] & called_ng
    features = ["class"]
    rows["class"] = rows["label"]
    for c in sorted(c for c in m.columns if c.startswith(META_PREFIX)):
        col = m[c].astype(str).reset_index(drop=True)
        if col.nunique() > MAX_LEVELS:
            if pd.to_numeric(col.replace("", np.nan), errors="coerce").notna().mean() < 0.9:
                continue  # free text or ids: no slice to speak of
            col = _binned(col.replace("", np.nan), c)
        if col.nunique() > 1:
            rows[c] = col.to_numpy()
            features.append(c)
    if quality is not None:
        features += _quality_features(rows, quality, source)
    return SliceTable(rows, features, list(manifest.classes), manifest.task, int((~ok).sum()),
                      np.nonzero(ok)[0])


def _quality_features(rows: pd.DataFrame, quality: pd.DataFrame, source: str) -> list[str]:
    """Add q_sharpness / q_brightness tertiles and one q_<flag> yes/no column per quality flag present."""
    if "path" not in quality.columns:
        raise InspectionError("quality.csv: needs a 'path' column (the audit's quality.csv)")
    q = quality.drop_duplicates("path").set_index("path").reindex(rows["path"])
    if q.index.isin(quality["path"]).mean() < 0.5:
        raise InspectionError(f"quality.csv: most paths of {source} are missing from it (another dataset?)")
    added = []
    for c in QUALITY_BINS:
        if c in q.columns:
            rows[f"q_{c}"] = _binned(q[c].reset_index(drop=True), c).to_numpy()
            added.append(f"q_{c}")
    flags = q["flags"].fillna("").astype(str).str.split(";") if "flags" in q.columns else None
    for f in sorted({f for fl in (flags if flags is not None else []) for f in fl} - {""}):
        rows[f"q_{f}"] = np.where(flags.map(lambda fl, f=f: f in fl).to_numpy(), "yes", "no")
        added.append(f"q_{f}")
    return added


def add_clusters(table: SliceTable, embeddings: np.ndarray, k: int, seed: int = 0, source: str = "",
                 per_row: bool = False) -> None:
    """k-means clusters of the model's own embeddings as `cluster`; rows aligned with the predictions file, or
    with the table's rows when `per_row`."""
    from sklearn.cluster import KMeans

    emb = np.asarray(embeddings, np.float64)
    need = len(table.rows) if per_row else int(table.source_index.max(initial=0)) + 1
    if emb.ndim != 2 or len(emb) < need:
        raise InspectionError(f"{source}: embeddings of shape {emb.shape} do not cover the predictions' rows "
                              "(one row per predictions row, in the same order)")
    x = emb[: len(table.rows)] if per_row else emb[table.source_index]
    x = np.where(np.isnan(x), np.nanmean(x, axis=0), x)  # an unreadable image: the average features
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    k = max(2, min(k, len(x) // 10))
    lab = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
    table.rows["cluster"] = [f"c{i}" for i in lab]
    table.features.append("cluster")
