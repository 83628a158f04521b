"""Shared pieces of the synthetic generators: smooth noise, soft masks, stroke drawing and a contact-sheet preview."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# A renderer draws one image of `label` at `size` px with the given severity (0 = clean, 1 = obvious).
Renderer = Callable[[str, np.random.Generator, int, float], np.ndarray]


@dataclass(frozen=True)
class SynthKind:
    """One synthetic dataset family: its classes, which of them are OK, and how to draw an image."""

    classes: tuple[str, ...]
    ok_classes: tuple[str, ...]
    render: Renderer
    # Class pairs drawn alike on purpose where the defect is faint: what a human labeler confuses (recorded in the
    # manifest's info; the labelling simulation takes its confusable pairs from here).
    lookalike_pairs: tuple[tuple[str, str], ...] = ()


def draw_severity(rng: np.random.Generator) -> float:
    """Per-image defect strength in [0.05, 1]; skewed high so most images are clear and a tail is ambiguous."""
    return float(np.clip(rng.beta(2.0, 1.2), 0.05, 1.0))


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Zero-mean, unit-ish std value noise whose features are about `cell` px wide (bicubic-upsampled grid)."""
    h, w = shape
    gh, gw = max(2, round(h / cell) + 1), max(2, round(w / cell) + 1)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def stroke_mask(
    shape: tuple[int, int],
    polylines: Sequence[np.ndarray],
    thickness: int = 1,
    blur: float = 0.0,
) -> np.ndarray:
    """Float mask in [0, 1] with antialiased polylines (points as float xy, drawn with 4-bit sub-pixel precision)."""
    canvas = np.zeros(shape, np.uint8)
    pts = [np.round(np.asarray(p, np.float64) * 16).astype(np.int32) for p in polylines]
    cv2.polylines(canvas, pts, False, 255, max(1, thickness), cv2.LINE_AA, shift=4)
    mask = canvas.astype(np.float32) / 255.0
    return soften(mask, blur)


def ellipse_mask(
    shape: tuple[int, int],
    blobs: Sequence[tuple[float, float, float, float, float]],
    blur: float = 0.0,
) -> np.ndarray:
    """Float mask in [0, 1] of filled ellipses given as (cx, cy, half_len, half_width, angle_deg)."""
    canvas = np.zeros(shape, np.uint8)
    for cx, cy, a, b, ang in blobs:
        center = (round(cx * 16), round(cy * 16))
        axes = (max(1, round(a * 16)), max(1, round(b * 16)))
        cv2.ellipse(canvas, center, axes, ang, 0, 360, 255, -1, cv2.LINE_AA, shift=4)
    return soften(canvas.astype(np.float32) / 255.0, blur)


def gaussian_dots(shape: tuple[int, int], xy: np.ndarray, sigma_xy: np.ndarray, gain: float = 1.6) -> np.ndarray:
    """Float mask in [0, 1] of round-ish soft dots (tiny cv2 ellipses alias into crosses, Gaussians do not)."""
    h, w = shape
    xs, ys = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    gx = np.exp(-0.5 * ((xs[None, :] - xy[:, :1]) / sigma_xy[:, :1]) ** 2)
    gy = np.exp(-0.5 * ((ys[None, :] - xy[:, 1:2]) / sigma_xy[:, 1:2]) ** 2)
    return np.clip(gain * np.einsum("ni,nj->ij", gy, gx), 0, 1).astype(np.float32)


def soften(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with a sigma in pixels; a no-op for sigma ≤ 0."""
    if sigma <= 0:
        return mask
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def random_walk(
    rng: np.random.Generator,
    start: tuple[float, float],
    angle: float,
    steps: int,
    step_len: float,
    turn: float,
) -> np.ndarray:
    """Polyline from `start` whose heading changes by N(0, turn) radians each step: cracks, wiggly lines."""
    pts = [np.asarray(start, np.float64)]
    for _ in range(steps):
        angle += rng.normal(0.0, turn)
        pts.append(pts[-1] + step_len * np.array([np.cos(angle), np.sin(angle)]))
    return np.stack(pts)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round and clip a float image to uint8."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_contact_sheet(
    images_by_class: dict[str, list[np.ndarray]],
    path: str | Path,
    cell: int = 96,
) -> Path:
    """Save a grid (one row per class, label on the left) of RGB or gray uint8 images, for eyeballing a generator."""
    label_w = 130
    n_cols = max(len(v) for v in images_by_class.values())
    sheet = np.full((cell * len(images_by_class), label_w + cell * n_cols, 3), 255, np.uint8)
    for r, (name, imgs) in enumerate(images_by_class.items()):
        cv2.putText(sheet, name, (4, r * cell + cell // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        for c, img in enumerate(imgs):
            rgb = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if img.ndim == 2 or img.shape[2] == 1 else img
            tile = cv2.resize(rgb, (cell - 2, cell - 2), interpolation=cv2.INTER_NEAREST)
            y, x = r * cell + 1, label_w + c * cell + 1
            sheet[y : y + cell - 2, x : x + cell - 2] = tile
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out
