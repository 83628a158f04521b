"""Splits are deterministic, stratified, grouped (duplicates never straddle) and cover every class."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from inspection.data.splits import kfold_assign, stratified_group_split


def _data(sizes: dict[str, int], dup_every: int = 0) -> tuple[list[str], list[str]]:
    """Labels and groups; with dup_every=k every k-th item repeats the previous item's group (a duplicate)."""
    labels, groups = [], []
    for lab, n in sizes.items():
        for i in range(n):
            labels.append(lab)
            groups.append(groups[-1] if dup_every and i % dup_every == 1 else f"{lab}-{i}")
    return labels, groups


def _by_group(groups: list[str], assigned: list) -> dict[str, set]:
    seen: dict[str, set] = defaultdict(set)
    for g, s in zip(groups, assigned, strict=True):
        seen[g].add(s)
    return seen


def test_deterministic_and_seed_dependent() -> None:
    labels, groups = _data({"a": 50, "b": 30})
    first = stratified_group_split(labels, groups, seed=3)
    assert stratified_group_split(labels, groups, seed=3) == first
    assert stratified_group_split(labels, groups, seed=4) != first


def test_input_order_does_not_matter() -> None:
    labels, groups = _data({"a": 40, "b": 25}, dup_every=5)
    split = dict(zip(groups, stratified_group_split(labels, groups, seed=1), strict=True))
    order = list(range(len(labels)))
    random.Random(0).shuffle(order)
    shuffled = stratified_group_split([labels[i] for i in order], [groups[i] for i in order], seed=1)
    assert all(split[groups[i]] == s for i, s in zip(order, shuffled, strict=True))


def test_stratified_proportions() -> None:
    labels, groups = _data({"a": 100, "b": 50, "c": 300})
    split = stratified_group_split(labels, groups, fractions=(0.6, 0.2, 0.2), seed=0)
    counts = Counter(zip(labels, split, strict=True))
    for lab, n in {"a": 100, "b": 50, "c": 300}.items():
        assert counts[lab, "train"] == round(0.6 * n)
        assert abs(counts[lab, "val"] - 0.2 * n) <= 1 and abs(counts[lab, "test"] - 0.2 * n) <= 1


def test_groups_never_straddle_splits() -> None:
    labels, groups = _data({"a": 60, "b": 61, "c": 17}, dup_every=3)
    split = stratified_group_split(labels, groups, seed=7)
    assert all(len(s) == 1 for s in _by_group(groups, split).values())


def test_every_class_in_every_split() -> None:
    sizes = {"tiny": 3, "small": 5, "odd": 9, "big": 200}
    labels, groups = _data(sizes)
    for seed in range(5):
        split = stratified_group_split(labels, groups, seed=seed)
        present = set(zip(labels, split, strict=True))
        assert all((lab, s) in present for lab in sizes for s in ("train", "val", "test"))


def test_zero_fraction_split_stays_empty() -> None:
    labels, groups = _data({"a": 20, "b": 7})
    assert "val" not in stratified_group_split(labels, groups, fractions=(0.8, 0.0, 0.2))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_group_split(["a"], ["g"], fractions=(0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="same length"):
        stratified_group_split(["a", "b"], ["g"])
    with pytest.raises(ValueError, match="k must be"):
        kfold_assign(["a"], ["g"], k=1)


def test_kfold_balanced_grouped_deterministic() -> None:
    labels, groups = _data({"a": 50, "b": 23, "c": 10}, dup_every=4)
    folds = kfold_assign(labels, groups, k=5, seed=2)
    assert folds == kfold_assign(labels, groups, k=5, seed=2)
    assert set(folds) == set(range(5))
    assert all(len(f) == 1 for f in _by_group(groups, folds).values())
    # Stratified: each class's groups are dealt round-robin, so per-class fold sizes differ by at most one group.
    for lab in ("a", "b", "c"):
        group_fold = {g: f for g, f, lab2 in zip(groups, folds, labels, strict=True) if lab2 == lab}
        per_fold = Counter(group_fold.values())
        assert max(per_fold.values()) - min(per_fold.get(k, 0) for k in range(5)) <= 1
    # Classes continue the deal where the previous one stopped, so fold sizes (in groups) differ by at most one.
    groups_per_fold = Counter(next(iter(f)) for f in _by_group(groups, folds).values())
    assert max(groups_per_fold.values()) - min(groups_per_fold.values()) <= 1
