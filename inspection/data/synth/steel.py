"""Synthetic hot-rolled steel strip defects in the six NEU classes, drawn on a textured grayscale background."""

from __future__ import annotations

import cv2
import numpy as np

from inspection.data.synth.common import (
    SynthKind,
    ellipse_mask,
    gaussian_dots,
    random_walk,
    smooth_noise,
    soften,
    stroke_mask,
    to_uint8,
)

CLASSES = ("crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches")


def _background(rng: np.random.Generator, s: int) -> np.ndarray:
    """Metal texture: random base brightness, horizontal rolling streaks, slow shading and fine grain."""
    img = np.full((s, s), rng.uniform(95.0, 165.0), np.float32)
    # Streaks: noise that varies fast across rows and slowly along them (the rolling direction is horizontal).
    streaks = rng.standard_normal((s, max(2, s // 12))).astype(np.float32)
    streaks = cv2.resize(streaks, (s, s), interpolation=cv2.INTER_LINEAR)
    img += streaks * rng.uniform(3.0, 7.0)
    img += smooth_noise(rng, (s, s), s / 3) * rng.uniform(4.0, 10.0)
    ramp = np.linspace(-1.0, 1.0, s, dtype=np.float32)
    img += rng.uniform(-8.0, 8.0) * ramp[None, :] + rng.uniform(-5.0, 5.0) * ramp[:, None]
    img += rng.uniform(3.0, 5.5) * rng.standard_normal((s, s), dtype=np.float32)
    return img


def _scratches(rng: np.random.Generator, s: int, sev: float) -> np.ndarray:
    """1-3 long thin straight-ish lines, bright or dark, any direction."""
    u = s / 64
    lines = []
    angle0 = rng.uniform(0, np.pi)
    for _ in range(int(rng.integers(1, 4))):
        ang = angle0 + rng.normal(0, 0.15)
        length = s * rng.uniform(0.45, 0.7 + 0.4 * sev)
        c = rng.uniform(0.2 * s, 0.8 * s, 2)
        d = np.array([np.cos(ang), np.sin(ang)]) * length / 2
        bend = np.array([-d[1], d[0]]) / max(1e-6, np.linalg.norm(d)) * rng.normal(0, 1.5 * u)
        lines.append(np.stack([c - d, c + bend, c + d]))
    mask = stroke_mask((s, s), lines, thickness=round(u), blur=0.3 * u)
    sign = float(rng.choice([-1.0, 1.0]))
    return sign * (14.0 + 50.0 * sev) * mask


def _inclusion(rng: np.random.Generator, s: int, sev: float) -> np.ndarray:
    """1-4 small dark blobs elongated along the rolling direction; at low severity they shrink toward pits."""
    u = s / 64
    n = int(rng.integers(1, 6))
    xy = rng.uniform(0.2 * s, 0.8 * s, 2) + rng.normal(0, 0.15 * s, (n, 2))
    half_len = u * rng.uniform(1.5, 2.5 + 6.0 * sev, (n, 1))
    half_w = u * rng.uniform(0.8, 1.2 + 1.0 * sev, (n, 1))
    # gain 2.5 clips each core flat (within ~1.35 sigma): solid inclusions rather than soft smudges.
    mask = gaussian_dots((s, s), xy, np.hstack([half_len, half_w]) * 0.8, gain=2.5)
    return -(20.0 + 45.0 * sev) * mask


def _pitted_surface(rng: np.random.Generator, s: int, sev: float) -> np.ndarray:
    """Many small round dark pits, in a loose cluster; at low severity only a handful remain."""
    u = s / 64
    n = int(3 + 45 * sev)
    spread = s * rng.uniform(0.15, 0.35)
    xy = rng.uniform(0.25 * s, 0.75 * s, 2) + rng.normal(0, spread, (n, 2))
    r = u * rng.uniform(0.5, 1.1, (n, 1))
    mask = gaussian_dots((s, s), xy, np.hstack([r * rng.uniform(1.0, 1.4, (n, 1)), r]))
    return -(16.0 + 45.0 * sev) * mask


def _patches(rng: np.random.Generator, s: int, sev: float) -> np.ndarray:
    """Large irregular soft-edged regions, darker (mostly) or lighter than the surface."""
    field = smooth_noise(rng, (s, s), s / 4)
    thresh = np.quantile(field, rng.uniform(0.55, 0.8))
    mask = soften((field > thresh).astype(np.float32), s / 40)
    # Mottled interior, as real patches are not flat.
    mask *= 0.75 + 0.25 * np.clip(smooth_noise(rng, (s, s), s / 16), -1, 1)
    sign = -1.0 if rng.random() < 0.75 else 1.0
    return sign * (12.0 + 40.0 * sev) * mask


def _crazing(rng: np.random.Generator, s: int, sev: float) -> np.ndarray:
    """A network of fine short wiggly dark cracks spread over the surface, loosely aligned with rolling."""
    u = s / 64
    n = int(14 + 26 * sev)
    cracks = []
    for _ in range(n):
        start = tuple(rng.uniform(0, s, 2))
        ang = rng.normal(0, 0.5) + (np.pi if rng.random() < 0.5 else 0.0)
        # Weak crazing = few short dashes, which is where it meets faint rolled-in scale.
        steps = int(rng.integers(2, 4 + round(3 * sev)))
        cracks.append(random_walk(rng, start, ang, steps, u * rng.uniform(1.5, 3.0), 0.7))
    mask = stroke_mask((s, s), cracks, thickness=1, blur=0.25 * u)
    return -(9.0 + 34.0 * sev) * mask


def _rolled_in_scale(rng: np.random.Generator, s: int, sev: float) -> np.ndarray:
    """Scattered flaky scale: short dark horizontal flakes, each with a bright lip above it (pressed-in oxide)."""
    u = s / 64
    n = int(10 + 22 * sev)
    blobs = []
    for _ in range(n):
        half_len = u * rng.uniform(1.5, 3.0 + 2.5 * sev)
        blobs.append((rng.uniform(0, s), rng.uniform(0, s), half_len, u * rng.uniform(0.5, 0.9 + 0.5 * sev), rng.normal(0, 8)))
    dark = ellipse_mask((s, s), blobs, blur=0.4 * u)
    lip = np.roll(dark, -max(1, round(u)), axis=0) - dark
    amp = 12.0 + 38.0 * sev
    return -amp * dark + 0.6 * amp * np.clip(lip, 0, 1)


_DEFECTS = {
    "crazing": _crazing,
    "inclusion": _inclusion,
    "patches": _patches,
    "pitted_surface": _pitted_surface,
    "rolled-in_scale": _rolled_in_scale,
    "scratches": _scratches,
}


def render_steel(label: str, rng: np.random.Generator, size: int, severity: float) -> np.ndarray:
    """One uint8 HxW grayscale steel image with a `label` defect of the given severity."""
    img = _background(rng, size) + _DEFECTS[label](rng, size, severity)
    return to_uint8(img)


# Faint crazing (a few short dashes) meets faint rolled-in scale (a few small flakes); a faint inclusion (small
# dark blobs) meets pitted surface (a handful of dark pits). Scratches and patches have no look-alike here.
STEEL = SynthKind(classes=CLASSES, ok_classes=(), render=render_steel,
                  lookalike_pairs=(("crazing", "rolled-in_scale"), ("inclusion", "pitted_surface")))
