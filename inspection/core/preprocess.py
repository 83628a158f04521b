"""The one preprocessing definition: resize policy + normalisation, used by training eval, export and edge."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np


@dataclass(frozen=True)
class PreprocessSpec:
    """How raw uint8 pixels become model input. Travels with the model (checkpoint and model card)."""

    height: int
    width: int
    channels: int = 3  # 1 = grayscale, 3 = RGB
    mean: tuple[float, ...] = field(default=(0.5, 0.5, 0.5))
    std: tuple[float, ...] = field(default=(0.25, 0.25, 0.25))
    # "stretch": resize to height x width ignoring aspect; "letterbox": keep aspect, pad with `pad_value`.
    resize: str = "stretch"
    pad_value: int = 0

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.resize not in ("stretch", "letterbox"):
            raise ValueError(f"resize must be 'stretch' or 'letterbox', got {self.resize!r}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            # Accept a 3-tuple for grayscale by taking its first value: configs often share defaults.
            object.__setattr__(self, "mean", tuple(self.mean[: self.channels]))
            object.__setattr__(self, "std", tuple(self.std[: self.channels]))
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"size must be positive, got {self.height}x{self.width}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessSpec:
        keys = {"height", "width", "channels", "mean", "std", "resize", "pad_value"}
        unknown = set(d) - keys
        if unknown:
            raise ValueError(f"unknown preprocess keys: {sorted(unknown)}")
        return cls(**{k: (tuple(v) if k in ("mean", "std") else v) for k, v in d.items()})


def _match_channels(img: np.ndarray, channels: int) -> np.ndarray:
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == channels:
        return img
    if channels == 1:
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[:, :, None]
    return np.repeat(img, 3, axis=2)


def resize_image(img: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Resize a uint8 HxWxC (or HxW) image to spec's size and channel count; returns uint8 HxWxC."""
    if img.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels, got {img.dtype}")
    img = _match_channels(img, spec.channels)
    h, w = img.shape[:2]
    if (h, w) == (spec.height, spec.width):
        return np.ascontiguousarray(img)
    # INTER_AREA when shrinking avoids aliasing of fine defects (scratches); linear when enlarging.
    interp = cv2.INTER_AREA if h * w > spec.height * spec.width else cv2.INTER_LINEAR
    if spec.resize == "stretch":
        out = cv2.resize(img, (spec.width, spec.height), interpolation=interp)
    else:
        scale = min(spec.height / h, spec.width / w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        small = cv2.resize(img, (nw, nh), interpolation=interp)
        out = np.full((spec.height, spec.width, img.shape[2]), spec.pad_value, np.uint8)
        top, left = (spec.height - nh) // 2, (spec.width - nw) // 2
        out[top : top + nh, left : left + nw] = small.reshape(nh, nw, -1)
    return np.ascontiguousarray(out.reshape(spec.height, spec.width, spec.channels))


def normalize(batch_hwc_u8: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """uint8 (N)HWC → float32 (N)CHW, (x/255 - mean) / std: the numpy reference for torch-free callers.

    models.normalize.Normalize runs these ops in this order in training, evaluation, the torch engine and the
    exported graph; tests hold the two equal."""
    x = batch_hwc_u8.astype(np.float32) * (1.0 / 255.0)
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def preprocess(img: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Decoded uint8 image → float32 CHW model input (resize then normalise)."""
    return normalize(resize_image(img, spec), spec)


def decode_model_input(data: bytes, path: str, spec: PreprocessSpec, max_pixels: int | None = None) -> np.ndarray:
    """Encoded bytes → uint8 pixels at the model's size: the one bytes→pixels step of every reader.

    `max_pixels`: a tighter decompression-bomb limit than core.image.MAX_PIXELS (the HTTP service sets one)."""
    # local: image.py is independent of preprocessing
    from inspection.core.image import decode_image

    return resize_image(decode_image(data, path, spec.channels, max_pixels), spec)


def load_model_input(path, spec: PreprocessSpec) -> np.ndarray:
    """Read + decode a file and resize it for the model: the one file→pixels path of evaluation, edge and cache."""
    from inspection.core.image import read_encoded

    return decode_model_input(read_encoded(path), str(path), spec)
