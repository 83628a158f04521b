"""What drift compares: the rows of a run (evaluate's predictions.csv, or an inspect CSV/JSONL) as numbers.

Every run gives the predicted class and its confidence; inspect rows add the verdict and p_ng; predictions.csv
and a `--manifest` add true labels. Image statistics (mean, contrast, sharpness) come from the row's columns when
the run has them, else from the image files (`--image-stats`), read once and shrunk to 256 px.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from inspection.core.errors import ImageDecodeError, InspectionError
from inspection.core.image import read_image
from inspection.data.manifest import Manifest
from inspection.evaluation.slices_table import match_paths, read_predictions

IMAGE_STATS = ("img_mean", "img_contrast", "img_sharpness")


def load_run(path: str | Path, manifest: Manifest | None = None, ok_classes: list[str] | None = None) -> pd.DataFrame:
    """Scored rows of a run (errors dropped): predicted, confidence, [verdict, p_ng, label, p_<class>...]."""
    df = read_predictions(path)
    err = df["error"].astype(str) if "error" in df else pd.Series("", index=df.index)
    df = df[(err == "") & (df["predicted"].astype(str) != "")].reset_index(drop=True)
    if df.empty:
        raise InspectionError(f"{path}: no scored rows (every row is an error)")
    df["confidence"] = pd.to_numeric(df.get("confidence"), errors="coerce")
    ok = list(ok_classes or (manifest.ok_classes if manifest else []))
    if "p_ng" in df:
        df["p_ng"] = pd.to_numeric(df["p_ng"], errors="coerce")
    elif ok and all(f"p_{c}" in df for c in ok):
        df["p_ng"] = 1 - sum(pd.to_numeric(df[f"p_{c}"], errors="coerce") for c in ok)
    if manifest is not None and "label" not in df:
        rel = match_paths(df["path"].astype(str).tolist(), manifest)
        labels = manifest.rows.set_index("path")["label"]
        df["label"] = [labels.get(r, "") if r else "" for r in rel]
    for c in IMAGE_STATS:
        if c in df:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def image_stats(gray: np.ndarray, size: int = 256) -> tuple[float, float, float]:
    """Mean brightness, contrast (pixel SD) and sharpness (log variance of the Laplacian) of a grayscale image."""
    h, w = gray.shape
    if max(h, w) > size:
        s = size / max(h, w)
        gray = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    g = gray.astype(np.float32)
    return float(g.mean()), float(g.std()), float(np.log(cv2.Laplacian(g, cv2.CV_32F).var() + 1e-6))


def _stats_of(path: str) -> tuple[float, float, float]:
    try:
        return image_stats(read_image(path, channels=1)[:, :, 0])
    except ImageDecodeError:
        return float("nan"), float("nan"), float("nan")


def add_image_stats(df: pd.DataFrame, root: Path | None = None) -> None:
    """Fill img_mean / img_contrast / img_sharpness from the files (paths relative to `root` when not absolute)."""
    if all(c in df for c in IMAGE_STATS):
        return
    paths = [str(p if Path(p).is_absolute() or root is None else root / p) for p in df["path"].astype(str)]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # cv2 releases the GIL
        stats = np.array(list(pool.map(_stats_of, paths)), float).reshape(-1, 3)
    if np.isnan(stats[:, 0]).all():
        raise InspectionError(f"--image-stats: none of the {len(paths)} images could be read (e.g. {paths[0]})")
    for k, c in enumerate(IMAGE_STATS):
        df[c] = stats[:, k]
