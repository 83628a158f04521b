"""Deterministic, stratified, grouped splits: identical images (same content hash) never straddle two splits."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np


def stratified_group_split(
    labels: list[str],
    groups: list[str],
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> list[str]:
    """Assign "train"/"val"/"test" per item.

    Stratified per class (each class split by `fractions`, at least one item per split when the class has ≥ 3
    groups) and grouped (all items sharing a group, e.g. a content hash, go to the same split; a group takes the
    label of its first item). Deterministic for a given seed and input order-independent.
    """
    if len(labels) != len(groups):
        raise ValueError("labels and groups must have the same length")
    if abs(sum(fractions) - 1.0) > 1e-6 or any(f < 0 for f in fractions):
        raise ValueError(f"fractions must be non-negative and sum to 1, got {fractions}")
    group_label: dict[str, str] = {}
    for lab, g in zip(labels, groups):
        group_label.setdefault(g, lab)
    by_class: dict[str, list[str]] = defaultdict(list)
    for g, lab in group_label.items():
        by_class[lab].append(g)
    names = ("train", "val", "test")
    group_split: dict[str, str] = {}
    for lab in sorted(by_class):
        gs = sorted(by_class[lab])  # sort first: independent of input order
        rng = np.random.default_rng([seed, _stable_int(lab)])
        rng.shuffle(gs)
        n = len(gs)
        counts = _allocate(n, fractions)
        start = 0
        for name, k in zip(names, counts):
            for g in gs[start : start + k]:
                group_split[g] = name
            start += k
    return [group_split[g] for g in groups]


def _allocate(n: int, fractions: tuple[float, float, float]) -> list[int]:
    """Largest-remainder allocation, guaranteeing one item per non-zero split when n allows."""
    raw = [f * n for f in fractions]
    counts = [int(np.floor(r)) for r in raw]
    for i in sorted(range(3), key=lambda i: raw[i] - counts[i], reverse=True)[: n - sum(counts)]:
        counts[i] += 1
    for i in range(3):
        if fractions[i] > 0 and counts[i] == 0 and n >= sum(1 for f in fractions if f > 0):
            j = int(np.argmax(counts))
            counts[j] -= 1
            counts[i] += 1
    return counts


def _stable_int(s: str) -> int:
    # Python's hash() is salted per process; splits must be the same in every run.
    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:4], "little")


def kfold_assign(labels: list[str], groups: list[str], k: int, seed: int = 0) -> list[int]:
    """Stratified, grouped k-fold: fold index per item (for out-of-fold predictions and repeated pill splits)."""
    if k < 2:
        raise ValueError("k must be >= 2")
    group_label: dict[str, str] = {}
    for lab, g in zip(labels, groups):
        group_label.setdefault(g, lab)
    by_class: dict[str, list[str]] = defaultdict(list)
    for g, lab in group_label.items():
        by_class[lab].append(g)
    fold_of: dict[str, int] = {}
    offset = 0
    for lab in sorted(by_class):
        gs = sorted(by_class[lab])
        rng = np.random.default_rng([seed, _stable_int(lab)])
        rng.shuffle(gs)
        for i, g in enumerate(gs):
            fold_of[g] = (i + offset) % k
        offset += len(gs)  # rotate so small classes don't all start in fold 0
    return [fold_of[g] for g in groups]
