"""Near-duplicates across the splits of a manifest: the train/val → test leak check, and regrouping a manifest.

A train or val image that is a near-copy of a test image (a flipped, shifted, re-encoded or brightened version)
makes the test score a memory test. `leak_check` counts them (train, evaluate and compare record the count as
`leak_check: {near_duplicates_of_test: n}`); `straddling_clusters` lists the clusters that span splits, and
`regroup` moves train/val members so that none does, never touching the test split.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from inspection.data.manifest import Manifest, manifest_hash
from inspection.data.near_duplicates import Clusters, NearDupConfig, find_clusters

log = logging.getLogger(__name__)


def manifest_clusters(manifest: Manifest, cfg: NearDupConfig | None = None,
                      cache_dir: str | os.PathLike | None = None) -> Clusters:
    """Near-duplicate clusters over every row of the manifest (hashes cached by content in cache_dir)."""
    rows = manifest.rows
    return find_clusters([manifest.abspath(p) for p in rows["path"]], rows["sha256"].tolist(), cfg, cache_dir)


def straddling_clusters(manifest: Manifest, clusters: Clusters) -> list[list[int]]:
    """Row indices of every cluster whose members lie in more than one split."""
    split = manifest.rows["split"].to_numpy()
    return [g for g in clusters.groups() if len(set(split[g])) > 1]


@dataclass
class LeakCheck:
    """Train/val images with a near-duplicate (or byte-identical copy) in the test split."""

    near_duplicates_of_test: int
    max_distance: int
    examples: list[tuple[str, str]] = field(default_factory=list)  # (train/val path, a test path), a few
    lookalike_images: int = 0

    def record(self) -> dict:
        """What metrics.json and the model card keep (`unchecked_lookalike`: images the hash cannot vouch for)."""
        return {"near_duplicates_of_test": self.near_duplicates_of_test, "max_distance": self.max_distance,
                "unchecked_lookalike": self.lookalike_images}

    def message(self, where: str) -> str:
        """The warning a person reads (empty when there is no leak)."""
        if not self.near_duplicates_of_test:
            return ""
        shown = "; ".join(f"{a} ~ {b}" for a, b in self.examples)
        return (f"{where}: {self.near_duplicates_of_test} train/val image(s) are near-duplicates of test images — "
                f"test scores overstate what the model does on new images (e.g. {shown}). `inspection data "
                "validate MANIFEST --regroup` moves them out of train/val.")


def leak_check(manifest: Manifest, cfg: NearDupConfig | None = None, cache_dir: str | os.PathLike | None = None,
               n_examples: int = 3) -> LeakCheck:
    """Count train/val rows that share a near-duplicate cluster with a test row."""
    cfg = cfg or NearDupConfig()
    rows = manifest.rows
    split = rows["split"].to_numpy()
    paths = rows["path"].to_numpy()
    if not (split == "test").any() or (split == "test").all():
        return LeakCheck(0, cfg.max_distance)
    clusters = manifest_clusters(manifest, cfg, cache_dir)
    leaked: list[tuple[str, str]] = []
    for g in clusters.groups():
        tests = [i for i in g if split[i] == "test"]
        if tests:
            leaked += [(str(paths[i]), str(paths[tests[0]])) for i in g if split[i] != "test"]
    return LeakCheck(len(leaked), cfg.max_distance, leaked[:n_examples], clusters.lookalike)


_CHECKED: dict[tuple, LeakCheck] = {}  # (manifest version, image root, config, cache) → its check


def warn_if_leaked(manifest: Manifest, where: str, cfg: NearDupConfig | None = None,
                   cache_dir: str | os.PathLike | None = None) -> LeakCheck:
    """leak_check, logging a warning with the count and examples when the test split is leaked.

    The result is kept per labelled version for the life of the process: compare trains every arm and seed on the
    same few manifests, and the hashing and pair search need not be redone for each run."""
    key = (manifest_hash(manifest), str(manifest.image_root), cfg or NearDupConfig(), str(cache_dir))
    check = _CHECKED.get(key)
    if check is None:
        check = _CHECKED[key] = leak_check(manifest, cfg, cache_dir)
    if check.near_duplicates_of_test:
        log.warning(check.message(where))
    if check.lookalike_images:
        log.warning("%s: %d images look alike (one product, same pose): the near-duplicate check cannot tell copies "
                    "from distinct units among them, so they were not checked", where, check.lookalike_images)
    return check


@dataclass
class Regrouped:
    """What `regroup` changed: rows moved between train and val, and train/val rows dropped as copies of test."""

    manifest: Manifest
    moved: list[tuple[str, str, str]]  # (path, from split, to split)
    dropped: list[str]  # train/val copies of test images (the test split stays as it is)


def regroup(manifest: Manifest, clusters: Clusters) -> Regrouped:
    """Put every straddling cluster in one split without touching test: a cluster with test members loses its
    train/val members (they are dropped from the manifest); a train/val cluster goes to its majority split."""
    rows = manifest.rows.copy()
    split = rows["split"].to_numpy().copy()
    paths = rows["path"].to_numpy()
    moved, drop = [], []
    for g in straddling_clusters(manifest, clusters):
        here = split[g]
        if (here == "test").any():
            drop += [i for i in g if split[i] != "test"]
            continue
        target = "train" if (here == "train").sum() >= (here == "val").sum() else "val"
        for i in g:
            if split[i] != target:
                moved.append((str(paths[i]), str(split[i]), target))
                split[i] = target
    rows["split"] = split
    keep = np.ones(len(rows), bool)
    keep[drop] = False
    dropped = sorted(str(p) for p in paths[~keep])
    info = {"regrouped": {"moved": len(moved), "dropped_near_test": dropped}}
    return Regrouped(manifest.with_rows(rows[keep], **info), moved, dropped)
