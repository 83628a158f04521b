"""Training's one decode pass: every unreadable image is named at once, not one per rerun."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inspection.core.errors import ManifestError
from inspection.core.preprocess import PreprocessSpec
from inspection.data.image_cache import load_resized

SPEC = PreprocessSpec(16, 16, channels=1, mean=(0.5,), std=(0.25,))


def test_all_bad_images_are_listed_together(tmp_path) -> None:
    paths = []
    for i in range(6):
        p = tmp_path / f"img_{i}.png"
        cv2.imwrite(str(p), np.full((20, 24), 40 * i, np.uint8))
        paths.append(p)
    (tmp_path / "img_1.png").write_bytes(b"")
    (tmp_path / "img_4.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ManifestError, match=r"2 image\(s\) cannot be decoded") as e:
        load_resized(paths, SPEC, workers=2)
    assert "img_1.png" in str(e.value) and "img_4.png" in str(e.value) and "img_0.png" not in str(e.value)
    good = load_resized([paths[0], paths[5]], SPEC)
    assert good.shape == (2, 16, 16, 1) and good[1].mean() == pytest.approx(200, abs=1)
