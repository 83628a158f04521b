"""Where the object is in an inspection image (a pill on its tray), so synthetic defects land on it."""

from __future__ import annotations

import cv2
import numpy as np

WORK_SIDE = 128  # px; object masks and structure maps are smooth, so they are computed at most this large
MIN_SEPARATION = 0.9  # Otsu effectiveness: ≥ 0.94 on every MVTec pill, ≤ 0.89 on every NEU steel texture
OBJECT_SHARE = (0.02, 0.95)  # an object smaller or larger than this share of the frame is not believable
MAX_BORDER_SHARE = 0.25  # an "object" covering more of the frame's edge is texture or background


def grey(image: np.ndarray) -> np.ndarray:
    """uint8 HxW luminance of an HxW, HxWx1 or HxWx3 image."""
    if image.ndim == 2 or image.shape[2] == 1:
        return image.reshape(image.shape[:2])
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2GRAY)


def shrink(grey: np.ndarray) -> np.ndarray:
    """The image scaled down (area interpolation) so its longer side is at most WORK_SIDE px."""
    h, w = grey.shape
    f = WORK_SIDE / max(h, w)
    if f >= 1:
        return grey
    return cv2.resize(grey, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _separation(grey: np.ndarray, cls: np.ndarray) -> float:
    """Otsu's effectiveness: between-class over total variance of a two-class split (1 = two flat tones)."""
    x, inside = grey.astype(np.float32), cls > 0
    share, total = float(inside.mean()), float(x.var())
    if share in (0.0, 1.0) or total < 1e-6:
        return 0.0
    return share * (1 - share) * float(x[inside].mean() - x[~inside].mean()) ** 2 / total


def _border_share(mask: np.ndarray) -> float:
    """Fraction of the frame's edge pixels that are set."""
    return float(np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]]).mean())


def object_mask(image: np.ndarray) -> np.ndarray:
    """uint8 HxW {0,1} foreground object (Otsu, largest component, filled); the whole frame if none."""
    g = grey(image)
    h, w = g.shape
    whole = np.ones((h, w), np.uint8)
    small = shrink(g)  # an outline needs no fine detail: find it small, where it costs a fraction
    blurred = cv2.GaussianBlur(small, (0, 0), max(1.0, min(small.shape) / 100))
    _, bright = cv2.threshold(blurred, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # The object is the Otsu class that touches the frame least: a pill on a tray, a part on a belt.
    fg = min((bright, 1 - bright), key=_border_share)
    if _separation(blurred, fg) < MIN_SEPARATION:
        return whole  # no two-tone split (a texture such as steel, or a flat image): every pixel is object
    _, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    comp = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = cv2.drawContours(np.zeros_like(comp), contours, -1, 1, thickness=cv2.FILLED)
    if not OBJECT_SHARE[0] <= filled.mean() <= OBJECT_SHARE[1] or _border_share(filled) > MAX_BORDER_SHARE:
        return whole  # a sliver, or something that fills the frame
    if filled.shape == (h, w):
        return filled
    return (cv2.resize(filled * 255, (w, h), interpolation=cv2.INTER_LINEAR) > 127).astype(np.uint8)
