"""Per-pixel defect maps of a defect-aware model: a summary for result rows (peak, where, how much) and an
overlay for reports. numpy + cv2 only, so the edge runtime and the training side read a map the same way."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

OVERLAY_ALPHA = 0.6  # heat opacity at probability 1: the pixels under a certain defect stay faintly visible
CONTOUR_RGB = (255, 255, 255)  # white reads on every JET colour and on dark product images


@dataclass(frozen=True)
class DefectSummary:
    """One map in four numbers. peak_x / peak_y are fractions [0, 1] of the image width / height.

    Fractions, not pixels, so they hold for the original image whatever the model's input size: the map covers
    the whole model input, and a 'stretch' resize maps the whole image onto it ('letterbox': pad included).
    """

    peak: float  # highest pixel probability
    peak_x: float
    peak_y: float
    area: float  # fraction of map pixels with probability >= the card's threshold


def _check_map(map_hw: np.ndarray) -> np.ndarray:
    m = np.asarray(map_hw, np.float32)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"a defect map must be a non-empty [h, w] array, got shape {list(m.shape)}")
    return m


def summarize_map(map_hw: np.ndarray, threshold: float) -> DefectSummary:
    """[h, w] probabilities → peak, its place (centre of the argmax cell, as fractions), area >= threshold."""
    m = _check_map(map_hw)
    h, w = m.shape
    y, x = divmod(int(np.argmax(m)), w)  # first maximum in row-major order: deterministic on ties
    return DefectSummary(peak=float(m[y, x]), peak_x=(x + 0.5) / w, peak_y=(y + 0.5) / h,
                         area=float(np.count_nonzero(m >= threshold)) / m.size)


def overlay(image_rgb_u8: np.ndarray, map_hw: np.ndarray, threshold: float) -> np.ndarray:
    """The map as a JET heatmap over the image (opacity ∝ probability), the >= threshold region outlined."""
    img = np.asarray(image_rgb_u8)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3)):
        raise ValueError(f"expected a uint8 HxW, HxWx1 or HxWx3 image, got {img.dtype} {list(img.shape)}")
    if img.ndim == 2 or img.shape[2] == 1:
        img = cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2RGB)
    h, w = img.shape[:2]
    m = np.clip(cv2.resize(_check_map(map_hw), (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    heat = cv2.applyColorMap(np.round(m * 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    alpha = (OVERLAY_ALPHA * m)[:, :, None]
    out = np.round(img * (1.0 - alpha) + heat * alpha).astype(np.uint8)
    # The outline follows the resized map, so it matches what the reader sees rather than the coarse cells.
    mask = (m >= threshold).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, CONTOUR_RGB, thickness=max(1, round(min(h, w) / 100)))
    return out
