"""Synthetic pill images (MVTec-like): a cream elliptical pill with red speckles and an imprint, plus small defects."""

from __future__ import annotations

import cv2
import numpy as np

from inspection.data.synth.common import (
    SynthKind,
    ellipse_mask,
    random_walk,
    smooth_noise,
    stroke_mask,
    to_uint8,
)

CLASSES = ("good", "crack", "contamination", "color", "scratch", "faulty_imprint")
IMPRINT_RGB = np.array([120.0, 40.0, 35.0], np.float32)  # dark red-brown ink
SPECKLE_RGB = np.array([200.0, 70.0, 60.0], np.float32)


class _Pill:
    """Geometry of one pill in its own axis-aligned frame (before the pose rotation)."""

    def __init__(self, rng: np.random.Generator, s: int):
        self.s = s
        self.cx = s / 2 + rng.normal(0, 0.02 * s)
        self.cy = s / 2 + rng.normal(0, 0.02 * s)
        self.a = s * rng.uniform(0.38, 0.42)  # half-length
        self.b = s * rng.uniform(0.23, 0.26)  # half-width
        self.angle = rng.normal(0, 5.0)  # pose jitter, degrees

    def inside(self, rng: np.random.Generator, margin: float = 0.8) -> np.ndarray:
        """A random point, uniform over the area, inside the ellipse shrunk by `margin`."""
        r = margin * np.sqrt(rng.random())
        t = rng.uniform(0, 2 * np.pi)
        return np.array([self.cx + r * self.a * np.cos(t), self.cy + r * self.b * np.sin(t)])

    def radius(self) -> np.ndarray:
        """Normalised elliptical radius per pixel (1 on the outline)."""
        y, x = np.ogrid[0 : self.s, 0 : self.s]
        y, x = y.astype(np.float32), x.astype(np.float32)
        return np.sqrt(((x - self.cx) / self.a) ** 2 + ((y - self.cy) / self.b) ** 2)


def _blend(img: np.ndarray, mask: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    return img + (rgb - img) * mask[..., None]


def _imprint_mask(rng: np.random.Generator, p: _Pill) -> np.ndarray:
    """The printed "FF" imprint, centred on the pill, as a float mask."""
    s = p.s
    canvas = np.zeros((s, s), np.uint8)
    scale = 0.2 * s / 22.0  # Hershey simplex caps are ~22 px tall at scale 1
    thick = max(1, round(s / 64))
    (tw, th), _ = cv2.getTextSize("FF", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    # Print registration wobbles a little on good pills too, so "misplaced" only counts when it is clearly off.
    jx, jy = rng.normal(0, 0.4 * s / 64, 2)
    org = (round(p.cx - tw / 2 + jx), round(p.cy + th / 2 + jy))
    cv2.putText(canvas, "FF", org, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0


def _fault_imprint(rng: np.random.Generator, p: _Pill, mask: np.ndarray, sev: float) -> np.ndarray:
    """Damage the imprint: partly missing, smeared, doubled or misplaced (amount grows with severity)."""
    s = p.s
    mode = rng.integers(0, 4)
    if mode == 0:  # missing part: erase a vertical band through the glyphs
        ys, xs = np.nonzero(mask > 0.2)
        x0, x1 = xs.min(), xs.max() + 1
        w = max(2, round((x1 - x0) * (0.25 + 0.55 * sev)))
        start = int(rng.integers(x0, max(x0 + 1, x1 - w + 1)))
        out = mask.copy()
        out[:, start : start + w] *= 0.15 * (1 - sev)
        return out
    if mode == 1:  # smear: motion blur along a random direction
        k = max(3, round(s / 64 * (2 + 6 * sev)) | 1)
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        return np.clip(cv2.filter2D(mask, -1, kernel / max(kernel.sum(), 1e-6)) * 1.3, 0, 1)
    shift = s / 64 * (1.5 + 4.0 * sev)
    t = rng.uniform(0, 2 * np.pi)
    m = np.float32([[1, 0, shift * np.cos(t)], [0, 1, shift * np.sin(t)]])
    moved = cv2.warpAffine(mask, m, (s, s))
    if mode == 2:  # double print
        return np.maximum(mask, moved * (0.5 + 0.4 * sev))
    return moved  # misplaced


def _crack(rng: np.random.Generator, p: _Pill, img: np.ndarray, sev: float) -> np.ndarray:
    """A jagged dark fracture line (sharp turns) with a faint bright edge beside it."""
    u = p.s / 64
    start = p.inside(rng, 0.75)
    walk = random_walk(rng, start, rng.uniform(0, 2 * np.pi), int(3 + 5 * sev), u * rng.uniform(2.0, 3.5), 0.9)
    dark = stroke_mask(img.shape[:2], [walk], thickness=round(u), blur=0.2 * u)
    edge = np.clip(np.roll(dark, 1, axis=1) - dark, 0, 1)
    img = _blend(img, dark * (0.45 + 0.5 * sev), np.array([70.0, 55.0, 45.0], np.float32))
    return _blend(img, edge * 0.3, np.array([255.0, 250.0, 240.0], np.float32))


def _scratch(rng: np.random.Generator, p: _Pill, img: np.ndarray, sev: float) -> np.ndarray:
    """A long smooth thin grey line or gentle arc, lower contrast than a crack."""
    u = p.s / 64
    c = p.inside(rng, 0.4)
    t = rng.uniform(0, np.pi)
    half = p.s * rng.uniform(0.12, 0.16 + 0.12 * sev)
    d = np.array([np.cos(t), np.sin(t)]) * half
    bend = np.array([-d[1], d[0]]) / half * rng.normal(0, 2.0 * u)
    line = np.stack([c - d, c - d / 2 + 0.75 * bend, c + bend, c + d / 2 + 0.75 * bend, c + d])
    mask = stroke_mask(img.shape[:2], [line], thickness=round(u), blur=0.3 * u)
    return _blend(img, mask * (0.4 + 0.45 * sev), np.array([125.0, 118.0, 112.0], np.float32))


def _contamination(rng: np.random.Generator, p: _Pill, img: np.ndarray, sev: float) -> np.ndarray:
    """A small irregular foreign-matter blob (dark brown, black or bluish)."""
    u = p.s / 64
    c = p.inside(rng, 0.7)
    blobs = [(*(c + rng.normal(0, 1.2 * u, 2)), u * rng.uniform(1.0, 1.5 + 2.5 * sev),
              u * rng.uniform(0.8, 1.2 + 1.5 * sev), rng.uniform(0, 180)) for _ in range(int(rng.integers(2, 5)))]
    mask = ellipse_mask(img.shape[:2], blobs, blur=0.4 * u)
    palette = np.array([[60, 40, 25], [30, 30, 30], [50, 70, 110], [90, 80, 40]], np.float32)
    return _blend(img, mask * (0.55 + 0.4 * sev), palette[rng.integers(0, len(palette))])


def _color(rng: np.random.Generator, p: _Pill, img: np.ndarray, sev: float) -> np.ndarray:
    """A soft-edged discoloured region (yellowish, pinkish or brownish tint)."""
    u = p.s / 64
    c = p.inside(rng, 0.55)
    r = u * rng.uniform(4.0, 6.0 + 5.0 * sev)
    blob = [(c[0], c[1], r * rng.uniform(1.0, 1.6), r, rng.uniform(0, 180))]
    mask = ellipse_mask(img.shape[:2], blob, blur=1.2 * u)
    mask *= 0.8 + 0.2 * np.clip(smooth_noise(rng, img.shape[:2], 3 * u), -1, 1)
    tints = np.array([[230, 190, 90], [235, 150, 150], [170, 130, 90]], np.float32)
    return _blend(img, mask * (0.25 + 0.4 * sev), tints[rng.integers(0, len(tints))])


_SURFACE_DEFECTS = {"crack": _crack, "scratch": _scratch, "contamination": _contamination, "color": _color}


def render_pill(label: str, rng: np.random.Generator, size: int, severity: float) -> np.ndarray:
    """One uint8 HxWx3 RGB pill image with a `label` defect of the given severity ("good" draws none)."""
    s, u = size, size / 64
    p = _Pill(rng, s)
    base = np.array([240.0, 232.0, 208.0], np.float32) + rng.normal(0, 4, 3).astype(np.float32)
    r = p.radius()
    # Soft 3-D shading toward the rim plus a mild lighting gradient across the pill.
    shade = 1.0 - 0.22 * np.clip(r, 0, 1) ** 4
    t = rng.uniform(0, 2 * np.pi)
    y, x = (g.astype(np.float32) / s - 0.5 for g in np.ogrid[0:s, 0:s])
    shade = shade * (1.0 + rng.uniform(0.03, 0.1) * (float(np.cos(t)) * x + float(np.sin(t)) * y) * 2)
    pill = base[None, None, :] * shade[..., None]
    pill = pill + (smooth_noise(rng, (s, s), 4 * u) * 3.0)[..., None]
    speckles = [(*p.inside(rng, 0.9), u * rng.uniform(0.35, 0.8), u * rng.uniform(0.35, 0.8), 0.0)
                for _ in range(int(rng.integers(25, 45)))]
    pill = _blend(pill, ellipse_mask((s, s), speckles) * rng.uniform(0.45, 0.75), SPECKLE_RGB)
    imprint = _imprint_mask(rng, p)
    if label == "faulty_imprint":
        imprint = _fault_imprint(rng, p, imprint, severity)
    pill = _blend(pill, imprint * 0.85, IMPRINT_RGB)
    if label in _SURFACE_DEFECTS:
        pill = _SURFACE_DEFECTS[label](rng, p, pill, severity)

    bg = np.array([28.0, 30.0, 34.0], np.float32) + rng.normal(0, 3, 3).astype(np.float32)
    bg = bg[None, None, :] + (smooth_noise(rng, (s, s), s / 3) * 4.0)[..., None]
    outline = ellipse_mask((s, s), [(p.cx, p.cy, p.a, p.b, 0.0)], blur=0.4 * u)
    img = _blend(bg, outline, pill)
    # Pose jitter: rotate the whole scene about the pill centre (reflection fills the corners with background).
    rot = cv2.getRotationMatrix2D((p.cx, p.cy), p.angle, 1.0)
    img = cv2.warpAffine(img, rot, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    img = img * rng.uniform(0.92, 1.06) + 2.0 * rng.standard_normal(img.shape, dtype=np.float32)
    return to_uint8(img)


PILL = SynthKind(classes=CLASSES, ok_classes=("good",), render=render_pill)
