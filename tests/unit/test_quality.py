"""Image-quality flags fire on deliberately degraded images (blur, gain, crop, copies) and not on clean ones."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from inspection.core.files import file_sha256
from inspection.curation.quality import cut_fraction, dhash, hamming_pairs, quality_flags
from inspection.curation.simulate import BAD_KINDS, degrade_image
from inspection.data.manifest import Manifest
from inspection.data.synth import generate_dataset


def _add(m: Manifest, rel: str, img: np.ndarray, split: str = "train") -> None:
    path = m.image_root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    row = {"path": rel, "label": m.classes[0], "split": split, "sha256": file_sha256(path)}
    m.rows = pd.concat([m.rows, pd.DataFrame([row])], ignore_index=True)


@pytest.fixture(scope="module")
def degraded(tmp_path_factory) -> tuple[Manifest, pd.DataFrame]:
    m = generate_dataset("steel", tmp_path_factory.mktemp("q"), n_per_class=10, size=64, seed=2)
    m.rows = m.rows.drop(columns=["meta_severity"])
    src = cv2.imread(str(m.image_root / m.rows.loc[0, "path"]), cv2.IMREAD_GRAYSCALE)
    f = src.astype(np.float32)
    _add(m, "bad/blur.png", cv2.GaussianBlur(src, (0, 0), 2.5))
    _add(m, "bad/under.png", np.clip(f * 0.12, 0, 255).astype(np.uint8))
    _add(m, "bad/over.png", np.clip(f * 2.5 + 60, 0, 255).astype(np.uint8))
    cut = src.copy()
    cut[:, :28] = 0  # the left 44% of the frame missing
    _add(m, "bad/cut.png", cut)
    other = m.rows[m.rows["split"] == "test"].iloc[0]
    test_img = cv2.imread(str(m.image_root / other["path"]), cv2.IMREAD_GRAYSCALE)
    _add(m, "bad/exact_copy_of_test.png", test_img)
    noisy = np.clip(test_img.astype(np.int16) + np.random.default_rng(0).integers(-2, 3, test_img.shape), 0, 255)
    _add(m, "bad/near_copy_of_test.png", noisy.astype(np.uint8))
    q = quality_flags(m).set_index("path")
    return m, q


@pytest.mark.parametrize("path,flag", [("bad/blur.png", "blur"), ("bad/under.png", "underexposed"),
                                       ("bad/over.png", "overexposed"), ("bad/cut.png", "cutoff")])
def test_each_flag_fires_on_its_degraded_image(degraded, path, flag):
    _, q = degraded
    assert flag in q.loc[path, "flags"].split(";"), q.loc[path].to_dict()


def test_clean_images_carry_no_quality_flags(degraded):
    m, q = degraded
    clean = [p for p in q.index if not p.startswith("bad/")]
    flagged = {p: q.loc[p, "flags"] for p in clean if q.loc[p, "flags"] and "duplicate" not in q.loc[p, "flags"]}
    assert not flagged


def test_duplicates_of_test_images_are_leaks(degraded):
    m, q = degraded
    exact = q.loc["bad/exact_copy_of_test.png"]
    assert {"exact_duplicate", "duplicate_of_test"} <= set(exact["flags"].split(";"))
    near = q.loc["bad/near_copy_of_test.png"]
    assert {"near_duplicate", "near_duplicate_of_test"} <= set(near["flags"].split(";"))
    # The test original is reported as a duplicate too, but a test image is never a leak of itself.
    original = q.loc[exact["exact_dup_of"].split(";")[0]]
    assert "exact_duplicate" in original["flags"] and "duplicate_of_test" not in original["flags"]


def test_simulated_bad_acquisitions_are_flagged(tmp_path):
    m = generate_dataset("pill", tmp_path, n_per_class=8, size=64, seed=0)
    rng = np.random.default_rng(0)
    for i, kind in enumerate(BAD_KINDS):
        img = cv2.cvtColor(cv2.imread(str(m.image_root / m.rows.loc[i * 3, "path"])), cv2.COLOR_BGR2RGB)
        _add(m, f"bad/{kind}.png", cv2.cvtColor(degrade_image(img, kind, rng), cv2.COLOR_RGB2BGR))
    q = quality_flags(m).set_index("path")
    for kind in BAD_KINDS:
        assert kind in q.loc[f"bad/{kind}.png", "flags"], (kind, q.loc[f"bad/{kind}.png"].to_dict())
    clean = q[~q.index.str.startswith("bad/")]
    assert not clean["flags"].str.contains("blur|exposed|cutoff").any(), clean[clean["flags"] != ""]["flags"]


def test_cut_fraction_and_dhash_basics():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (50, 40), dtype=np.uint8)
    assert cut_fraction(img) == 0.0
    img[:20] = 0
    assert cut_fraction(img) == pytest.approx(0.4)
    a = dhash(img)
    assert dhash(np.clip(img.astype(int) + 1, 0, 255).astype(np.uint8)) == a  # brightness-invariant
    pairs = hamming_pairs(np.array([a, a ^ 0b1, a ^ 0xFFFF], dtype=np.uint64), max_dist=2)
    assert pairs == [(0, 1, 1)]


def test_unreadable_image_is_flagged(degraded, tmp_path):
    m, _ = degraded
    m2 = m.with_rows(m.rows.copy())
    p = Path(m.image_root / "bad/broken.png")
    p.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    m2.rows = pd.concat([m2.rows, pd.DataFrame([{"path": "bad/broken.png", "label": m.classes[0], "split": "train",
                                                 "sha256": "x"}])], ignore_index=True)
    q = quality_flags(m2).set_index("path")
    assert q.loc["bad/broken.png", "flags"] == "unreadable"
