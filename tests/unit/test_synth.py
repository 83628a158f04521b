"""Synthetic datasets: byte-identical for the same seed, valid manifests, every class in every split, learnable."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspection.data.manifest import Manifest, load_manifest
from inspection.data.synth import generate_dataset

STEEL_CLASSES = ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"]
PILL_CLASSES = ["good", "crack", "contamination", "color", "scratch", "faulty_imprint"]


def _tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root (manifest, dataset.json, images) by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def steel(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return generate_dataset("steel", tmp_path_factory.mktemp("steel"), n_per_class=10, size=48, seed=3)


@pytest.fixture(scope="module")
def pill(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return generate_dataset("pill", tmp_path_factory.mktemp("pill"), n_per_class=10, size=48, seed=3)


@pytest.mark.parametrize("kind", ["steel", "pill"])
def test_same_arguments_give_identical_bytes(kind: str, tmp_path: Path) -> None:
    a = generate_dataset(kind, tmp_path / "a", n_per_class=4, size=32, seed=7)
    b = generate_dataset(kind, tmp_path / "b", n_per_class=4, size=32, seed=7)
    files_a, files_b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert files_a == files_b
    assert {"manifest.csv", "dataset.json"} <= set(files_a)
    assert a.rows["sha256"].tolist() == b.rows["sha256"].tolist()


def test_different_seed_gives_different_images(tmp_path: Path) -> None:
    a = generate_dataset("steel", tmp_path / "a", n_per_class=4, size=32, seed=0)
    b = generate_dataset("steel", tmp_path / "b", n_per_class=4, size=32, seed=1)
    assert a.rows["path"].tolist() == b.rows["path"].tolist()
    assert not set(a.rows["sha256"]) & set(b.rows["sha256"])


def test_images_are_distinct_within_a_dataset(steel: Manifest, pill: Manifest) -> None:
    for m in (steel, pill):
        assert m.rows["sha256"].is_unique


def test_manifest_loads_and_describes_the_dataset(steel: Manifest, pill: Manifest) -> None:
    for m, classes, ok in ((steel, STEEL_CLASSES, []), (pill, PILL_CLASSES, ["good"])):
        loaded = load_manifest(m.image_root.parent / "manifest.csv")  # validates files, labels, splits
        assert loaded.classes == classes
        assert loaded.ok_classes == ok
        assert loaded.name == m.name
        pairs = {"lookalike_pairs": [["crazing", "rolled-in_scale"], ["inclusion", "pitted_surface"]]} \
            if m.info["kind"] == "steel" else {}
        assert loaded.info == {"source": "synthetic", "kind": m.info["kind"], "seed": 3, "size": 48, "n_per_class": 10,
                               **pairs}
        assert list(loaded.rows.columns) == ["path", "label", "split", "sha256", "meta_severity"]
        assert len(loaded.rows) == 10 * len(classes)
        for path, label in zip(loaded.rows["path"], loaded.rows["label"]):
            assert re.fullmatch(rf"{re.escape(label)}/{re.escape(label)}_\d+\.png", path)
    assert steel.task == "multiclass" and pill.task == "okng"


def test_every_class_in_every_split(steel: Manifest, pill: Manifest) -> None:
    for m in (steel, pill):
        counts = m.rows.groupby(["label", "split"]).size().unstack(fill_value=0)
        assert sorted(counts.index) == sorted(m.classes)
        assert set(counts.columns) == {"train", "val", "test"}
        assert (counts > 0).all().all()
        assert (counts["train"] == 6).all()  # 60 % of 10


def test_severity_recorded_per_image(steel: Manifest, pill: Manifest) -> None:
    loaded = load_manifest(pill.image_root.parent / "manifest.csv")
    assert all(re.fullmatch(r"\d\.\d{1,3}", s) for s in loaded.rows["meta_severity"])  # ≤ 3 decimals in the CSV
    for m in (steel, pill):
        sev = m.rows["meta_severity"].astype(float)
        defect = ~m.rows["label"].isin(m.ok_classes)
        assert sev[defect].between(0.05, 1.0).all()
        assert sev[defect].std() > 0.1  # randomised, so weak (ambiguous) examples exist
        assert (sev[~defect] == 0.0).all()


def test_image_shapes_and_channels(steel: Manifest, pill: Manifest) -> None:
    for _, row in steel.rows.iterrows():
        img = cv2.imread(str(steel.abspath(row["path"])), cv2.IMREAD_UNCHANGED)
        assert img.shape == (48, 48) and img.dtype == np.uint8
    for _, row in pill.rows.iterrows():
        img = cv2.imread(str(pill.abspath(row["path"])), cv2.IMREAD_UNCHANGED)
        assert img.shape == (48, 48, 3) and img.dtype == np.uint8
        # Pill on a dark background: bright centre, dark corners.
        assert img[18:30, 8:40].mean() > 120 > img[:4, :4].mean()


def test_unknown_kind_names_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown.*'wood'.*\['pill', 'steel'\]"):
        generate_dataset("wood", tmp_path)
    assert not (tmp_path / "images").exists()


def _steel_features(img: np.ndarray) -> np.ndarray:
    """Hand-made texture features: residual statistics, gradient directions, dark-blob counts and shapes."""
    x = img.astype(np.float32)
    r = x - cv2.GaussianBlur(x, (0, 0), 4.0)  # defects are local; remove slow shading
    gx, gy = np.abs(np.diff(r, axis=1)).mean(), np.abs(np.diff(r, axis=0)).mean()
    dark = (r < -2.5 * r.std()).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(dark)
    areas, w, h = stats[1:, cv2.CC_STAT_AREA], stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    blob = [n - 1, areas.mean(), (w / h).mean(), areas.max()] if n > 1 else [0, 0, 0, 0]
    big = cv2.GaussianBlur(x, (0, 0), 6.0)
    return np.array([r.std(), *np.percentile(r, [1, 5, 95, 99]), gx, gy, gx / (gy + 1e-6), big.std(), *blob])


def test_steel_is_learnable_by_a_nearest_centroid(tmp_path: Path) -> None:
    m = generate_dataset("steel", tmp_path, n_per_class=30, size=64, seed=0)
    feats = {s: [] for s in ("train", "test")}
    for s in feats:
        df = m.split(s)
        x = np.stack([_steel_features(cv2.imread(str(m.abspath(p)), cv2.IMREAD_GRAYSCALE)) for p in df["path"]])
        feats[s] = (x, df["label"].map(m.classes.index).to_numpy())
    (xtr, ytr), (xte, yte) = feats["train"], feats["test"]
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    centroids = np.stack([xtr[ytr == k].mean(0) for k in range(len(m.classes))])
    pred = np.argmin(((xte[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    acc = (pred == yte).mean()
    assert acc >= 2 / len(m.classes), f"nearest-centroid accuracy {acc:.2f} is not clearly above chance"
