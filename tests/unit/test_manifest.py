"""Manifest validation names the offending row and path; write/load round-trips; the hash is stable."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from inspection.core.errors import ManifestError
from inspection.core.files import file_sha256
from inspection.data.manifest import Manifest, load_manifest, manifest_hash, write_manifest


@pytest.fixture
def dataset(tmp_path: Path) -> Manifest:
    """Two classes x 3 tiny PNGs under tmp_path/images; rows in CSV order a/0..a/2, b/0..b/2 (CSV rows 2-7)."""
    root = tmp_path / "images"
    records = []
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            img = np.full((8, 8), 40 * i + (100 if cls == "b" else 0), np.uint8)
            cv2.imwrite(str(root / cls / f"{i}.png"), img)
            rel = f"{cls}/{i}.png"
            records.append(
                {
                    "path": rel,
                    "label": cls,
                    "split": ("train", "val", "test")[i],
                    "sha256": file_sha256(root / rel),
                    "meta_line": f"L{i}",
                }
            )
    return Manifest("tiny", ["a", "b"], pd.DataFrame(records), root, ["a"], {"source": "test"})


def _reload(m: Manifest, tmp_path: Path, rows: pd.DataFrame | None = None) -> Manifest:
    csv = write_manifest(m if rows is None else m.with_rows(rows), tmp_path / "ds" / "manifest.csv")
    return load_manifest(csv)


def _append(m: Manifest, **row: str) -> pd.DataFrame:
    base = {"path": "a/0.png", "label": "a", "split": "train", "sha256": "0" * 64, "meta_line": ""}
    return pd.concat([m.rows, pd.DataFrame([{**base, **row}])], ignore_index=True)


def test_round_trip(dataset: Manifest, tmp_path: Path) -> None:
    back = _reload(dataset, tmp_path)
    assert back.name == "tiny" and back.classes == ["a", "b"] and back.ok_classes == ["a"]
    assert back.task == "okng" and back.info == {"source": "test"}
    assert back.image_root.resolve() == dataset.image_root.resolve()
    cols = ["path", "label", "split", "sha256", "meta_line"]
    pd.testing.assert_frame_equal(back.rows[cols], dataset.rows[cols].astype(str), check_dtype=False)
    meta = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert meta["image_root"] == "../images"  # stored relative, so the folder can move as a whole


def test_manifest_hash_stable(dataset: Manifest, tmp_path: Path) -> None:
    h = manifest_hash(dataset)
    assert len(h) == 16
    shuffled = dataset.with_rows(dataset.rows.sample(frac=1.0, random_state=1))
    assert manifest_hash(shuffled) == h  # row order does not matter
    assert manifest_hash(_reload(dataset, tmp_path)) == h  # survives a write/load
    no_meta = dataset.with_rows(dataset.rows.drop(columns=["meta_line"]))
    assert manifest_hash(no_meta) == h  # metadata is not part of the labelled version
    relabelled = dataset.rows.copy()
    relabelled.loc[0, "label"] = "b"
    assert manifest_hash(dataset.with_rows(relabelled)) != h


def test_missing_file_names_row(dataset: Manifest, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"image files not found: row 8 \(a/missing\.png\)"):
        _reload(dataset, tmp_path, _append(dataset, path="a/missing.png"))


def test_missing_file_ignored_without_check(dataset: Manifest, tmp_path: Path) -> None:
    csv = write_manifest(
        dataset.with_rows(_append(dataset, path="a/missing.png")), tmp_path / "ds" / "manifest.csv"
    )
    assert len(load_manifest(csv, check_files=False).rows) == 7


def test_unknown_label_names_row(dataset: Manifest, tmp_path: Path) -> None:
    rows = dataset.rows.copy()
    rows.loc[4, "label"] = "zzz"
    with pytest.raises(ManifestError, match=r"unknown labels \['zzz'\]: row 6 \(b/1\.png\)"):
        _reload(dataset, tmp_path, rows)


def test_duplicate_path_names_both_rows(dataset: Manifest, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"duplicate paths: row 3 \(a/1\.png\), row 8 \(a/1\.png\)"):
        _reload(dataset, tmp_path, _append(dataset, path="a/1.png"))


def test_path_escaping_root_names_row(dataset: Manifest, tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "outside.png"), np.zeros((4, 4), np.uint8))  # exists: only the escape is wrong
    with pytest.raises(ManifestError, match=r"escape the dataset root .*: row 8 \(\.\./outside\.png\)"):
        _reload(dataset, tmp_path, _append(dataset, path="../outside.png"))


def test_empty_class_named(dataset: Manifest, tmp_path: Path) -> None:
    m = Manifest("tiny", ["a", "b", "c"], dataset.rows, dataset.image_root)
    with pytest.raises(ManifestError, match=r"classes with no images: \['c'\]"):
        _reload(m, tmp_path)


def test_bad_split_names_row(dataset: Manifest, tmp_path: Path) -> None:
    rows = dataset.rows.copy()
    rows.loc[2, "split"] = "dev"
    with pytest.raises(ManifestError, match=r"split must be one of .*: row 4 \(a/2\.png\)"):
        _reload(dataset, tmp_path, rows)


def test_labeler_unknown_label_names_row(dataset: Manifest, tmp_path: Path) -> None:
    rows = dataset.rows.copy()
    rows["labeler_alice"] = ["a", "", "a", "b", "bee", ""]  # gaps are fine, "bee" is not a class
    with pytest.raises(
        ManifestError, match=r"labeler_alice has labels outside the classes: row 6 \(b/1\.png\)"
    ):
        _reload(dataset, tmp_path, rows)


def test_labeler_gaps_are_valid(dataset: Manifest, tmp_path: Path) -> None:
    rows = dataset.rows.copy()
    rows["labeler_alice"] = ["a", "", "a", "b", "", ""]
    assert _reload(dataset, tmp_path, rows).labeler_columns() == ["labeler_alice"]


def test_missing_column_and_bad_ok_class(dataset: Manifest, tmp_path: Path) -> None:
    csv = write_manifest(dataset, tmp_path / "ds" / "manifest.csv")
    dataset.rows.drop(columns=["sha256"]).to_csv(csv, index=False)  # a hand-edited CSV
    with pytest.raises(ManifestError, match=r"missing columns \['sha256'\]"):
        load_manifest(csv)
    m = Manifest("tiny", ["a", "b"], dataset.rows, dataset.image_root, ["good"])
    with pytest.raises(ManifestError, match=r"ok_classes \['good'\]"):
        _reload(m, tmp_path)


def test_missing_manifest_or_dataset_json(dataset: Manifest, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest not found"):
        load_manifest(tmp_path / "nope.csv")
    csv = write_manifest(dataset, tmp_path / "ds" / "manifest.csv")
    (tmp_path / "ds" / "dataset.json").unlink()
    with pytest.raises(ManifestError, match="dataset.json"):
        load_manifest(csv)
