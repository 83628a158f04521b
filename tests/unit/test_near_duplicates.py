"""Near-duplicates: planted augmented copies are found, grouped at import, reported and regrouped by validate;
distinct images are not; look-alike products are not mistaken for copies; hashes are cached."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from planted_copies import AUGMENTATIONS, pill, texture, write_folder
from typer.testing import CliRunner

from inspection.cli.data_cmds import data_app
from inspection.data.importers import import_folder
from inspection.data.leak_check import leak_check, manifest_clusters, regroup, straddling_clusters
from inspection.data.manifest import load_manifest
from inspection.data.near_duplicates import (
    CACHE_NAME,
    NearDupConfig,
    cluster_labels,
    dhash,
    find_clusters,
    gray_hashes,
    hash_distance,
)
from inspection.evaluation.compare_report import render_markdown

LIMIT = NearDupConfig().max_distance


@pytest.mark.parametrize("kind", sorted(AUGMENTATIONS))
def test_every_planted_copy_is_within_the_threshold_and_distinct_images_far_beyond(kind: str) -> None:
    rng = np.random.default_rng(1)
    imgs = [texture(rng, defect=i % 2 == 1) for i in range(12)]
    hashes = [gray_hashes(im) for im in imgs]
    for im, h in zip(imgs, hashes):
        assert hash_distance(h, gray_hashes(AUGMENTATIONS[kind](im))) <= LIMIT
    distinct = min(hash_distance(hashes[i], hashes[j]) for i in range(12) for j in range(i + 1, 12))
    assert distinct > 2 * LIMIT


def test_illumination_is_not_identity() -> None:
    """Two different textures under the same strong light gradient (NEU's trap for the 64-bit dHash) differ."""
    rng = np.random.default_rng(2)
    ramp = np.linspace(-60, 60, 96, dtype=np.float32)[None, :]
    a, b = (np.clip(texture(rng).astype(np.float32) * 0.1 + 100 + ramp, 0, 255).astype(np.uint8) for _ in range(2))
    assert (dhash(a) ^ dhash(b)).bit_count() <= 2  # the audit's 64-bit form sees only the ramp: "near-duplicate"
    assert hash_distance(gray_hashes(a), gray_hashes(b)) > 2 * LIMIT


def test_union_find_is_order_free() -> None:
    assert cluster_labels(6, [(4, 5), (0, 2), (2, 4)]).tolist() == [0, 1, 0, 3, 0, 0]
    assert cluster_labels(6, [(2, 4), (5, 4), (2, 0)]).tolist() == [0, 1, 0, 3, 0, 0]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("planted")
    return root, write_folder(root, per_class=12, copied=3)


def _cluster_splits(m, copies: dict[str, list[str]]) -> list[set[str]]:
    split = m.rows.set_index("path")["split"]
    return [{split[p] for p in [orig, *cs]} for orig, cs in copies.items()]


def test_import_keeps_each_planted_cluster_in_one_split(planted, tmp_path: Path) -> None:
    src, copies = planted
    m = import_folder(src, tmp_path / "ds", copy=False)
    assert all(len(s) == 1 for s in _cluster_splits(m, copies))
    assert sorted(map(sorted, m.info["near_duplicates"]["clusters"])) == sorted(sorted([o, *c]) for o, c in copies.items())
    assert {"train", "val", "test"} == set(m.rows["split"]) and leak_check(m).near_duplicates_of_test == 0
    again = import_folder(src, tmp_path / "again", copy=False)
    assert again.rows["split"].tolist() == m.rows["split"].tolist()  # deterministic
    # The old behaviour (byte-identical grouping only) scatters the copies: what this feature fixes.
    old = import_folder(src, tmp_path / "old", copy=False, near_dup=None)
    assert any(len(s) > 1 for s in _cluster_splits(old, copies))


def test_distinct_images_are_never_grouped(tmp_path: Path) -> None:
    write_folder(tmp_path / "src", per_class=20, copied=0, seed=3)
    m = import_folder(tmp_path / "src", tmp_path / "ds", copy=False)
    assert m.info["near_duplicates"]["clusters"] == []
    assert leak_check(m).near_duplicates_of_test == 0


def _leaked(src: Path, out: Path, copies: dict[str, list[str]]):
    """The planted set split as if at random: every cluster has members in train, val and test."""
    m = import_folder(src, out, copy=False, near_dup=None)
    rows = m.rows.set_index("path")
    for orig, cs in copies.items():
        for k, p in enumerate([orig, *cs]):
            rows.loc[p, "split"] = ("test", "train", "val")[k % 3]
    return m.with_rows(rows.reset_index())


def test_leak_check_counts_train_val_copies_of_test(planted, tmp_path: Path) -> None:
    src, copies = planted
    m = _leaked(src, tmp_path / "ds", copies)
    check = leak_check(m)
    n_tv = sum(len(cs) + 1 - sum(1 for k in range(len(cs) + 1) if k % 3 == 0) for cs in copies.values())
    assert check.near_duplicates_of_test == n_tv and len(check.examples) == 3
    assert "near-duplicates of test" in check.message("here") and check.record()["max_distance"] == LIMIT
    r = regroup(m, manifest_clusters(m))
    assert not straddling_clusters(r.manifest, manifest_clusters(r.manifest))
    test_before = m.split("test")[["path", "label", "sha256"]].reset_index(drop=True)
    assert r.manifest.split("test")[["path", "label", "sha256"]].reset_index(drop=True).equals(test_before)
    assert len(r.dropped) == n_tv and leak_check(r.manifest).near_duplicates_of_test == 0


def test_validate_reports_straddling_clusters_and_regroup_fixes_them(planted, tmp_path: Path) -> None:
    from inspection.data.manifest import write_manifest

    src, copies = planted
    csv = tmp_path / "ds" / "manifest.csv"
    m = _leaked(src, tmp_path / "ds", copies)
    rows = m.rows.set_index("path")
    first = next(iter(copies))
    rows.loc[[first, *copies[first]], "split"] = ["train", "val"] * 4  # one train/val-only cluster
    write_manifest(m.with_rows(rows.reset_index()), csv)
    runner = CliRunner()
    r = runner.invoke(data_app, ["validate", str(csv)])
    assert r.exit_code == 0, r.output
    assert f"{len(copies)} near-duplicate cluster(s)" in r.output and "--regroup" in r.output
    r = runner.invoke(data_app, ["validate", str(csv), "--regroup"])
    assert r.exit_code == 0 and "regrouped" in r.output, r.output
    fixed = load_manifest(csv)
    assert fixed.rows.set_index("path").loc[[first, *copies[first]], "split"].nunique() == 1
    assert pd.Series(fixed.info["regrouped"]["dropped_near_test"]).isin(m.rows["path"]).all()
    r = runner.invoke(data_app, ["validate", str(csv)])
    assert "no cluster straddles splits" in r.output, r.output


def test_lookalike_products_are_told_apart_on_the_fine_grid(tmp_path: Path) -> None:
    """Tablets in one pose link everything on the coarse grid; the 32 x 32 grid separates units and keeps copies."""
    rng = np.random.default_rng(4)
    paths, expected = [], []
    for i in range(16):
        img = pill(rng)
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), img)
        if i < 2:  # copies of two units (the fine grid's tolerance: flips, turns, brightness, flip+shift+JPEG 80)
            expected.append([len(paths) - 1])
            for kind in ("hflip", "rot90", "bright", "mixed"):
                paths.append(tmp_path / f"{i}_{kind}.png")
                cv2.imwrite(str(paths[-1]), AUGMENTATIONS[kind](img))
                expected[-1].append(len(paths) - 1)
    shas = [f"sha{i}" for i in range(len(paths))]
    # The coarse grid links them all (else no second look): blind on the fine grid too, nothing is grouped
    blind = find_clusters(paths, shas, NearDupConfig(fine_max_distance=32 * 32))
    assert blind.lookalike == len(paths) and blind.groups() == []
    c = find_clusters(paths, shas)
    assert c.lookalike == 0 and c.groups() == expected


def test_hashes_are_cached_by_content(planted, tmp_path: Path) -> None:
    src, copies = planted
    paths = [src / p for p in copies]
    shas = [f"s{i}" for i in range(len(paths))]
    first = find_clusters(paths, shas, cache_dir=tmp_path)
    assert (tmp_path / CACHE_NAME).is_file()
    gone = [tmp_path / "missing" / p.name for p in paths]  # files unreadable now: only the cache can answer
    again = find_clusters(gone, shas, cache_dir=tmp_path)
    assert again.label.tolist() == first.label.tolist()
    assert find_clusters(gone, [f"x{i}" for i in range(len(paths))], cache_dir=tmp_path).label.tolist() == list(
        range(len(paths)))  # unknown content, unreadable file: not linked to anything


def test_compare_report_warns_at_the_top_only_when_leaked() -> None:
    stat = {"mean": 0.9, "ci95": float("nan")}
    arm = {"accuracy": stat, "macro_f1": stat, "per_class_recall": {"ok": 1.0}}
    report = {"dataset": "d", "n_test": 10, "n_seeds": 1, "arms": {"baseline": arm}}
    clean = render_markdown({**report, "leak_check": {"baseline": {"near_duplicates_of_test": 0}}})
    leaked = render_markdown({**report, "leak_check": {"baseline": {"near_duplicates_of_test": 7}}})
    assert "leaked" not in clean
    assert leaked.splitlines()[2].startswith("> **Warning: the test split is leaked.**") and "7" in leaked.splitlines()[2]


def test_cli_import_groups_and_can_turn_grouping_off(planted, tmp_path: Path) -> None:
    src, copies = planted
    runner = CliRunner()
    r = runner.invoke(data_app, ["import", "folder", str(src), "--out", str(tmp_path / "a"), "--no-copy"])
    assert r.exit_code == 0, r.output
    n_img = sum(len(c) + 1 for c in copies.values())
    assert f"near-duplicates: {len(copies)} cluster(s), {n_img} images" in r.output
    r = runner.invoke(data_app, ["import", "folder", str(src), "--out", str(tmp_path / "b"), "--no-copy",
                                 "--near-dup-distance", "-1"])
    assert r.exit_code == 0 and "near-duplicates" not in r.output, r.output
    assert load_manifest(tmp_path / "b" / "manifest.csv").info["near_duplicates"]["max_distance"] is None
