"""Image-quality flags: blur, under/over-exposure, cut-off frames, exact and near duplicates.

Thresholds are relative to the dataset itself (robust z-scores around the median), because "sharp" and "bright"
mean different things for a steel strip and a pill: an image is flagged when it is an outlier among its peers.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from inspection.core.errors import ImageDecodeError
from inspection.core.image import read_image
from inspection.data.manifest import Manifest
from inspection.data.near_duplicates import dhash, hamming_pairs

QUALITY_FLAGS = ("blur", "underexposed", "overexposed", "cutoff", "unreadable")
DUPLICATE_FLAGS = ("exact_duplicate", "near_duplicate", "duplicate_of_test", "near_duplicate_of_test")


@dataclass
class QualityConfig:
    """Thresholds for the quality flags (z-scores are robust: median and MAD of the dataset)."""

    # Blur: log variance of the Laplacian this far below the dataset's 5th percentile (1.5 = 4.5x less detail
    # than the dullest 5% of the images). A percentile, not a z-score: textures of different classes make the
    # distribution multi-modal (NEU inclusion is 50x smoother than crazing), and a blurred copy falls below all.
    blur_margin: float = 1.5
    blur_percentile: float = 5.0
    exposure_z: float = 3.0  # log mean brightness this many robust SDs from the median → under/over
    clip_fraction: float = 0.5  # or this share of pixels clipped (≤ 5 / ≥ 250) more than the median image
    cutoff_fraction: float = 0.25  # a flat band from one edge covering this share more than the median image
    flat_std: float = 1.5  # a row/column with a pixel SD below this carries no signal (JPEG-black ~ 0.5)
    near_dup_hamming: int = 2  # dHash (64 bit) distance counted as a near-duplicate
    min_hash_bits: int = 12  # hashes with fewer (or more than 64 - this) set bits are an illumination gradient,
    #                          not an identity (textures like steel strips): they are not compared
    analysis_size: int = 256  # larger images are shrunk first: speed, and comparable Laplacian scales


def _shrink(gray: np.ndarray, size: int) -> np.ndarray:
    h, w = gray.shape
    if max(h, w) <= size:
        return gray
    s = size / max(h, w)
    return cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _flat_run(line_std: np.ndarray, line_mean: np.ndarray, flat_std: float) -> int:
    """Lines from the edge inward that are flat and of the same level as the edge line (a band, not a gradient)."""
    n = 0
    for s, m in zip(line_std, line_mean):
        if s >= flat_std or abs(m - line_mean[0]) > 4 * flat_std:
            break
        n += 1
    return n


def cut_fraction(gray: np.ndarray, flat_std: float = 1.5) -> float:
    """Share of the image taken by the widest featureless band along one edge (a frame cut off by the sensor)."""
    g = gray.astype(np.float32)
    h, w = g.shape
    rows_s, rows_m, cols_s, cols_m = g.std(1), g.mean(1), g.std(0), g.mean(0)
    return max(
        _flat_run(rows_s, rows_m, flat_std) / h, _flat_run(rows_s[::-1], rows_m[::-1], flat_std) / h,
        _flat_run(cols_s, cols_m, flat_std) / w, _flat_run(cols_s[::-1], cols_m[::-1], flat_std) / w,
    )


def image_stats(gray: np.ndarray, cfg: QualityConfig) -> dict:
    """Raw measurements of one grayscale uint8 image (flags need the dataset's distribution on top)."""
    g = _shrink(gray, cfg.analysis_size)
    lap = cv2.Laplacian(g.astype(np.float32), cv2.CV_32F)
    return {
        "sharpness": float(np.log(lap.var() + 1e-6)),
        "brightness": float(g.mean()),
        "dark_frac": float((g <= 5).mean()),
        "bright_frac": float((g >= 250).mean()),
        "cut_fraction": cut_fraction(g, cfg.flat_std),
        "dhash": dhash(gray),
    }


def robust_z(x: np.ndarray, floor: float) -> np.ndarray:
    """(x - median) / (1.4826 MAD), the MAD floored so that a very uniform dataset does not flag noise."""
    med = np.nanmedian(x)
    mad = 1.4826 * np.nanmedian(np.abs(x - med))
    return (x - med) / max(mad, floor)


def _load_gray(path) -> np.ndarray | None:
    try:
        return read_image(path, channels=1)[:, :, 0]
    except ImageDecodeError:
        return None


def quality_flags(manifest: Manifest, cfg: QualityConfig | None = None) -> pd.DataFrame:
    """One row per manifest row: measurements, robust z-scores, duplicate links and `flags` (";"-joined)."""
    cfg = cfg or QualityConfig()
    rows = manifest.rows
    paths = [manifest.abspath(p) for p in rows["path"]]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # cv2 releases the GIL
        grays = list(pool.map(_load_gray, paths))
    empty = {"sharpness": np.nan, "brightness": np.nan, "dark_frac": np.nan, "bright_frac": np.nan,
             "cut_fraction": np.nan, "dhash": 0}
    stats = pd.DataFrame([image_stats(g, cfg) if g is not None else empty for g in grays])
    df = pd.DataFrame({"path": rows["path"].to_numpy(), "split": rows["split"].to_numpy()})
    df = pd.concat([df, stats], axis=1)
    df["blur_z"] = robust_z(df["sharpness"].to_numpy(), floor=0.25)
    blur_below = np.nanpercentile(df["sharpness"], cfg.blur_percentile) - cfg.blur_margin
    df["exposure_z"] = robust_z(np.log(df["brightness"].to_numpy() + 1.0), floor=0.1)
    flags: list[list[str]] = [[] if g is not None else ["unreadable"] for g in grays]
    ok = np.array([g is not None for g in grays])
    med = df[["dark_frac", "bright_frac", "cut_fraction"]].median()
    for i in np.nonzero(ok)[0]:
        r = df.iloc[i]
        if r["sharpness"] < blur_below:
            flags[i].append("blur")
        if r["exposure_z"] < -cfg.exposure_z or r["dark_frac"] - med["dark_frac"] > cfg.clip_fraction:
            flags[i].append("underexposed")
        if r["exposure_z"] > cfg.exposure_z or r["bright_frac"] - med["bright_frac"] > cfg.clip_fraction:
            flags[i].append("overexposed")
        if r["cut_fraction"] - med["cut_fraction"] > cfg.cutoff_fraction:
            flags[i].append("cutoff")
    bits = np.array([int(h).bit_count() for h in df["dhash"]])
    hashable = ok & (bits >= cfg.min_hash_bits) & (bits <= 64 - cfg.min_hash_bits)
    _link_duplicates(df, rows["sha256"].to_numpy(), hashable, flags, cfg.near_dup_hamming)
    df["dhash"] = [f"{h:016x}" for h in df["dhash"]]
    df["flags"] = [";".join(dict.fromkeys(f)) for f in flags]
    return df


def _link_duplicates(df: pd.DataFrame, sha: np.ndarray, hashable: np.ndarray, flags: list[list[str]],
                     max_dist: int) -> None:
    """Fill exact_dup_of / near_dup_of and add duplicate flags (a train/val copy of a test image is a leak).

    Near duplicates are candidates only: on textures (steel strips) distinct neighbouring frames can hash alike.
    """
    split = df["split"].to_numpy()
    paths = df["path"].to_numpy()
    exact: dict[int, list[str]] = {}
    near: dict[int, list[str]] = {}
    for _, idx in pd.Series(range(len(sha))).groupby(sha):
        idx = idx.tolist()
        for i in idx if len(idx) > 1 else []:
            exact[i] = [paths[j] for j in idx if j != i]
    ok_idx = np.nonzero(hashable)[0]
    hashes = df["dhash"].to_numpy()[ok_idx].astype(np.uint64)
    for a, b, _ in hamming_pairs(hashes, max_dist):
        i, j = int(ok_idx[a]), int(ok_idx[b])
        if paths[j] in exact.get(i, []):
            continue  # byte-identical: already reported as exact
        near.setdefault(i, []).append(paths[j])
        near.setdefault(j, []).append(paths[i])
    for links, flag, leak in ((exact, "exact_duplicate", "duplicate_of_test"),
                              (near, "near_duplicate", "near_duplicate_of_test")):
        for i, others in links.items():
            flags[i].append(flag)
            other_splits = set(split[np.isin(paths, others)])
            if split[i] != "test" and "test" in other_splits:
                flags[i].append(leak)
    df["exact_dup_of"] = [";".join(exact.get(i, [])) for i in range(len(df))]
    df["near_dup_of"] = [";".join(near.get(i, [])[:5]) for i in range(len(df))]
