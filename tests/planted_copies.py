"""Augmented copies planted in a generated class folder: what downloaded defect sets are full of."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np


def _shift(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.warpAffine(img, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REFLECT)


def _jpeg(img: np.ndarray, quality: int = 70) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def _bright(img: np.ndarray, delta: int = 15) -> np.ndarray:
    return np.clip(img.astype(np.int16) + delta, 0, 255).astype(np.uint8)


# Each copy kind, for 96 px images: flips and turns, a 2 px shift (2% of the side), brightness, JPEG (q 70).
AUGMENTATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hflip": lambda im: im[:, ::-1].copy(),
    "vflip": lambda im: im[::-1].copy(),
    "rot90": lambda im: np.rot90(im).copy(),
    "shift": lambda im: _shift(im, 2, 1),
    "bright": _bright,
    "jpeg": _jpeg,
    "mixed": lambda im: _jpeg(_bright(_shift(im[:, ::-1].copy(), 1, 1), -12), 80),
}


def texture(rng: np.random.Generator, size: int = 96, defect: bool = False) -> np.ndarray:
    """A distinct gray surface: smooth random relief (σ 4 px) plus sensor noise; `defect` adds a dark scratch."""
    f = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 4.0)
    img = 128 + 40 * (f - f.mean()) / (f.std() + 1e-6) + rng.normal(0, 3, f.shape)
    if defect:
        y0, y1 = rng.integers(0, size, 2)
        cv2.line(img, (0, int(y0)), (size - 1, int(y1)), 40.0, 2)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_folder(root: Path, per_class: int = 12, copied: int = 0, seed: int = 0) -> dict[str, list[str]]:
    """Distinct images as <root>/<ok|ng>/img_<i>.png; the first `copied` of each class get one copy per
    augmentation (copy_<i>_<kind>.png). Returns {original rel path: [its copies' rel paths]}."""
    rng = np.random.default_rng(seed)
    copies: dict[str, list[str]] = {}
    for label in ("ok", "ng"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = texture(rng, defect=label == "ng")
            rel = f"{label}/img_{i}.png"
            cv2.imwrite(str(root / rel), img)
            if i < copied:
                copies[rel] = []
                for kind, aug in AUGMENTATIONS.items():
                    crel = f"{label}/copy_{i}_{kind}.png"
                    cv2.imwrite(str(root / crel), aug(img))
                    copies[rel].append(crel)
    return copies


def pill(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """One unit of a look-alike product: the same bright tablet in the same pose, its own fine speckles."""
    img = np.full((size, size), 30, np.float32)
    cv2.ellipse(img, (size // 2, size // 2), (int(size * 0.4), int(size * 0.28)), 0, 0, 360, 200.0, -1)
    for _ in range(40):
        x, y = rng.integers(int(size * 0.15), int(size * 0.85)), rng.integers(int(size * 0.3), int(size * 0.7))
        cv2.circle(img, (int(x), int(y)), 1, 150.0, -1)
    return np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
