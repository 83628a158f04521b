"""Train-time augmentation (albumentations) on uint8 pixels; it runs before the shared normalisation, never instead."""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Which label-preserving transforms to apply. Defaults suit surface defects (orientation carries no label)."""

    hflip: bool = True
    vflip: bool = True
    rotate90: bool = False
    shift: float = 0.1  # max translation as a fraction of size (shifted crops)
    scale: float = 0.0  # max zoom in/out fraction
    brightness: float = 0.1
    contrast: float = 0.1
    enabled: bool = True


def build_augment(cfg: AugmentConfig) -> A.Compose | None:
    """An albumentations pipeline for uint8 HxWxC arrays; None when augmentation is off."""
    if not cfg.enabled:
        return None
    ops: list = []
    if cfg.hflip:
        ops.append(A.HorizontalFlip(p=0.5))
    if cfg.vflip:
        ops.append(A.VerticalFlip(p=0.5))
    if cfg.rotate90:
        ops.append(A.RandomRotate90(p=0.5))
    if cfg.shift > 0 or cfg.scale > 0:
        ops.append(
            A.Affine(
                translate_percent={"x": (-cfg.shift, cfg.shift), "y": (-cfg.shift, cfg.shift)},
                scale=(1 - cfg.scale, 1 + cfg.scale),
                border_mode=cv2.BORDER_REFLECT_101,
                p=0.8,
            )
        )
    if cfg.brightness > 0 or cfg.contrast > 0:
        ops.append(A.RandomBrightnessContrast(cfg.brightness, cfg.contrast, p=0.5))
    return A.Compose(ops) if ops else None


def apply_augment(pipeline: A.Compose | None, img: np.ndarray, mask: np.ndarray | None = None):
    """Augment one uint8 HxWxC image, keeping the channel axis (albumentations may drop it for gray).

    With a mask (HxW): (image, mask), the mask moved by the same geometric transforms and untouched by the
    photometric ones."""
    if pipeline is None:
        return img if mask is None else (img, mask)
    out = pipeline(image=img) if mask is None else pipeline(image=img, mask=mask)
    image = out["image"] if out["image"].ndim == 3 else out["image"][:, :, None]
    return image if mask is None else (image, out["mask"])
