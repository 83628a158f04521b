"""Synthetic defects cut from the dataset's own OK images (NSA, CutPaste), and an exact mask of the change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from inspection.core.errors import ConfigError
from inspection.data.object_mask import grey, object_mask, shrink

BLENDS = ("poisson", "paste")
ATTEMPTS = 6  # fresh draws before the fallback that always shows
# A draw that changes less of its region than this pasted texture onto like texture: nearly invisible, its
# mask a scatter of pixels rather than a defect, so it is drawn again.
MIN_VISIBLE_SHARE = 0.3
MARGIN = 2  # px kept clear of the frame: seamlessClone raises when its mask reaches the image border
FEATHER_SIGMA = 1.0  # px; CutPaste's edge, soft so the defect is not a trivial 1-px step
MAX_GAIN = 2.0  # the source patch's contrast gain is drawn log-uniformly in [1, MAX_GAIN]
FALLBACK_SHIFT = 64  # most uint8 levels the fallback moves its patch away from the target's colour
MAX_MIN_CHANGE = 100.0  # the fallback's shift, ≥ min(2·min_change + 8, 128), must exceed min_change
POOL = 32  # uniform candidates per structure-weighted draw of a source patch centre
MIN_SIDE = 16  # px; smaller images leave no room for a blob inside the margin


@dataclass(frozen=True)
class AnomalyConfig:
    """How synthetic defects are drawn: size, shape, blending and what counts as a changed pixel."""

    min_area: float = 0.002  # region area / image area, drawn log-uniformly in [min_area, max_area]
    max_area: float = 0.04
    max_aspect: float = 3.0  # patch aspect ratio in [1/max_aspect, max_aspect]
    blend: str = "poisson"  # "poisson" (cv2.seamlessClone, NSA) or "paste" (CutPaste, feathered edge)
    min_change: float = 8.0  # mask = region pixels whose largest channel change exceeds this (uint8)
    inside_object: bool = True  # place the patch on the object (foreground), not the background

    def __post_init__(self) -> None:
        checks = [
            ("min_area", 0.0 < self.min_area <= 0.25, "must be in (0, 0.25]"),
            ("max_area", self.min_area <= self.max_area <= 0.25, "must be in [min_area, 0.25]"),
            ("max_aspect", 1.0 <= self.max_aspect <= 20.0, "must be in [1, 20]"),
            ("blend", self.blend in BLENDS, f"must be one of {', '.join(BLENDS)}"),
            ("min_change", 0.0 <= self.min_change <= MAX_MIN_CHANGE, f"must be in [0, {MAX_MIN_CHANGE:g}]"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(f"AnomalyConfig.{name} {rule}; got {getattr(self, name)!r}")


def _as_bgr(image: np.ndarray, name: str) -> np.ndarray:
    """uint8 HxWx3 copy or view of an HxW, HxWx1 or HxWx3 uint8 image (seamlessClone wants three channels)."""
    channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else 0
    if image.dtype != np.uint8 or channels not in (1, 3) or min(image.shape[:2]) < MIN_SIDE:
        got = f"{image.dtype} {image.shape}"
        raise ValueError(f"{name}: need a uint8 HxW, HxWx1 or HxWx3 image, sides ≥ {MIN_SIDE} px; got {got}")
    image = image.reshape(*image.shape[:2], channels)
    return np.ascontiguousarray(np.repeat(image, 3, axis=2) if channels == 1 else image)


def _shaped_like(bgr: np.ndarray, target: np.ndarray) -> np.ndarray:
    """A 3-channel result in the target's layout (HxW, HxWx1 or HxWx3)."""
    if target.ndim == 2 or target.shape[2] == 1:
        return np.ascontiguousarray(bgr[:, :, 0].reshape(target.shape))
    return bgr


@dataclass(frozen=True)
class _Prepared:
    """One image ready for drawing: 3-channel pixels, object mask, each pixel's depth inside the object."""

    bgr: np.ndarray
    obj: np.ndarray
    depth: np.ndarray  # px to the nearest non-object pixel (huge everywhere for a whole-frame object)


def _prepare(bgr: np.ndarray, inside_object: bool) -> _Prepared:
    """Object mask and depth of a 3-channel image (the whole frame when placement ignores the object)."""
    obj = object_mask(bgr) if inside_object else np.ones(bgr.shape[:2], np.uint8)
    return _Prepared(bgr, obj, cv2.distanceTransform(obj, cv2.DIST_L2, 3))


@dataclass(frozen=True)
class _Draw:
    """One candidate defect inside its box (x0, y0, x1, y1) of the target: region and warped source patch."""

    box: tuple[int, int, int, int]
    region: np.ndarray  # uint8 {0,1}, box-sized, outermost ring 0
    patch: np.ndarray  # uint8 box-sized x3: the source pixels that land on the box

    def under(self, image: np.ndarray) -> np.ndarray:
        """The box's pixels of a full-frame image."""
        x0, y0, x1, y1 = self.box
        return image[y0:y1, x0:x1]


def _pick_point(
    rng: np.random.Generator, candidates: Sequence[np.ndarray], weights: np.ndarray | None = None
) -> tuple[int, int]:
    """A random (x, y) in the first non-empty mask of `candidates`, uniform or favouring high `weights`."""
    for mask in candidates:
        idx = np.flatnonzero(mask)
        if idx.size:
            pool = idx[rng.integers(idx.size, size=POOL)]
            if weights is None:
                i = pool[0]
            else:  # ∝ weight among POOL uniform candidates: near ∝ weight over the mask, and far cheaper
                (h, w), (sh, sw) = mask.shape, weights.shape  # the weights may be a smaller map of the frame
                ys, xs = np.divmod(pool, w)
                p = weights[ys * sh // h, xs * sw // w].astype(np.float64)
                i = pool[rng.choice(POOL, p=p / p.sum())]
            y, x = divmod(int(i), mask.shape[1])
            return x, y
    raise ValueError("no candidate point")  # unreachable: callers end with the whole frame


def _inside(shape: tuple[int, int], inset: float) -> np.ndarray:
    """bool mask of the pixels ≥ `inset` px inside the frame (the central ones if the frame is smaller)."""
    h, w = shape
    keep = np.zeros(shape, bool)
    i, j = min(int(np.ceil(inset)), (h - 1) // 2), min(int(np.ceil(inset)), (w - 1) // 2)
    keep[i : h - i, j : w - j] = True
    return keep


def _structure(bgr: np.ndarray) -> np.ndarray:
    """float32 map (≤ WORK_SIDE px) of gradient energy: print, speckles, shading; floored so plain can win."""
    small = shrink(grey(bgr)).astype(np.float32)
    energy = np.abs(cv2.Sobel(small, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(small, cv2.CV_32F, 0, 1))
    energy = cv2.GaussianBlur(energy, (0, 0), max(1.0, min(small.shape) / 64))
    return energy + 0.1 * float(energy.mean()) + 1e-6


def _semi_axes(rng: np.random.Generator, cfg: AnomalyConfig, h: int, w: int) -> tuple[float, float]:
    """Semi-axes (a, b) of the ellipse a blob is drawn in: log-uniform area and aspect ratio."""
    area = np.exp(rng.uniform(np.log(cfg.min_area), np.log(cfg.max_area))) * h * w
    aspect = np.exp(rng.uniform(-np.log(cfg.max_aspect), np.log(cfg.max_aspect)))
    # Blob radii are 0.75-1.0 of the ellipse's (mean r² ≈ 0.77): scaled so the blob has `area`.
    a, b = np.sqrt(area * aspect / (np.pi * 0.77)), np.sqrt(area / (aspect * np.pi * 0.77))
    cap = (min(h, w) - 2 * MARGIN - 4) / 2
    return float(np.clip(a, 0.5, cap)), float(np.clip(b, 0.5, cap))


def _blob(
    rng: np.random.Generator, centre: tuple[int, int], a: float, b: float, shape: tuple[int, int]
) -> np.ndarray:
    """uint8 {0,1} irregular blob: a smooth random polygon around `centre` inside a rotated a×b ellipse."""
    k = int(rng.integers(6, 11))
    t = (np.arange(k) + rng.uniform(-0.3, 0.3, k)) * (2 * np.pi / k)
    r, phi = rng.uniform(0.75, 1.0, k), rng.uniform(0, np.pi)
    x, y = a * r * np.cos(t), b * r * np.sin(t)
    c, s = np.cos(phi), np.sin(phi)
    pts = np.stack([centre[0] + x * c - y * s, centre[1] + x * s + y * c], axis=1)
    canvas = np.zeros(shape, np.uint8)
    cv2.fillPoly(canvas, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    # Blur + threshold rounds the polygon's corners: irregular yet smooth, like a stain or a chip.
    blob = (cv2.GaussianBlur(canvas, (0, 0), max(0.5, 0.25 * min(a, b))) > 127).astype(np.uint8)
    blob[centre[1], centre[0]] = 1  # the blur can erase a sliver of a blob; keep at least its centre
    return blob


def _warp_patch(
    rng: np.random.Generator,
    src: _Prepared,
    weights: np.ndarray,
    centre: tuple[int, int],
    extent: float,
    shape: tuple[int, int],
) -> np.ndarray:
    """A random patch of the source's object, rotated, flipped, rescaled and contrast-changed, on `centre`."""
    scale = float(np.exp(rng.uniform(np.log(0.67), np.log(1.5))))
    theta, flip = rng.uniform(0, 2 * np.pi), (-1.0 if rng.random() < 0.5 else 1.0)
    gain = float(np.exp(rng.uniform(0.0, np.log(MAX_GAIN))))  # Poisson keeps only gradients: boost them
    reach = scale * extent
    # Plain texture onto plain texture vanishes: the centre favours structure, the whole patch on the object.
    inner = (src.depth > reach) & _inside(src.obj.shape, reach)
    cx, cy = _pick_point(rng, [inner, src.obj, np.ones_like(src.obj)], weights)
    # One inverse warp crops, rotates, flips and resizes: box pixel p samples the source at c_s + A (p - c_d).
    c, s = np.cos(theta), np.sin(theta)
    a_mat = scale * np.array([[c, -s], [s, c]]) @ np.diag([flip, 1.0])
    shift = np.array([cx, cy], float) - a_mat @ np.asarray(centre, float)
    flags, border = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, cv2.BORDER_REFLECT_101
    matrix = np.hstack([a_mat, shift[:, None]])
    patch = cv2.warpAffine(src.bgr, matrix, shape[::-1], flags=flags, borderMode=border)
    mean = patch.reshape(-1, 3).mean(axis=0)
    return np.clip(mean + gain * (patch - mean), 0, 255).astype(np.uint8)


def _draw(
    rng: np.random.Generator, cfg: AnomalyConfig, tgt: _Prepared, src: _Prepared, weights: np.ndarray
) -> _Draw:
    """One candidate: a blob on the target's object, ≥ MARGIN px inside the frame, and its source patch."""
    h, w = tgt.obj.shape
    a, b = _semi_axes(rng, cfg, h, w)
    inner = _inside((h, w), MARGIN + 1 + min(a, b) / 2)
    # The centre sits on the object, deep enough that most of the blob does too.
    cx, cy = _pick_point(rng, [(tgt.depth > min(a, b) / 2) & inner, (tgt.obj > 0) & inner, inner])
    half = int(np.ceil(max(a, b))) + 3  # the blob, its blur, and the ring seamlessClone zeroes
    x0, y0 = max(MARGIN, cx - half), max(MARGIN, cy - half)
    x1, y1 = min(w - MARGIN, cx + half + 1), min(h - MARGIN, cy + half + 1)
    local = (cx - x0, cy - y0)
    region = _blob(rng, local, a, b, (y1 - y0, x1 - x0))
    if cfg.inside_object:
        region &= tgt.obj[y0:y1, x0:x1]
    region[[0, -1], :] = region[:, [0, -1]] = 0  # seamlessClone zeroes this ring: agree with it on the box
    if not region.any():
        region[local[1], local[0]] = 1  # no object inside the margin: one off-object pixel beats no defect
    patch = _warp_patch(rng, src, weights, local, max(a, b), region.shape)
    return _Draw((x0, y0, x1, y1), region, patch)


def _blend(blend: str, draw: _Draw, tgt: np.ndarray) -> np.ndarray | None:
    """The target's box with the patch blended in over the region; None when seamlessClone refuses."""
    if blend == "paste":
        alpha = cv2.GaussianBlur(draw.region.astype(np.float32), (0, 0), FEATHER_SIGMA) * draw.region
        mixed = alpha[:, :, None] * draw.patch + (1 - alpha[:, :, None]) * draw.under(tgt)
        return np.clip(np.round(mixed), 0, 255).astype(np.uint8)
    x, y, bw, bh = cv2.boundingRect(draw.region)
    # seamlessClone centres the mask's bounding box on `center` (integer halves); this keeps it in place.
    centre = (draw.box[0] + x + bw // 2, draw.box[1] + y + bh // 2)
    try:
        return draw.under(cv2.seamlessClone(draw.patch, tgt, draw.region * 255, centre, cv2.NORMAL_CLONE))
    except cv2.error:
        return None


def _changed(out: np.ndarray, draw: _Draw, tgt: np.ndarray, min_change: float) -> np.ndarray:
    """uint8 {0,1} box mask of the region pixels whose largest channel change exceeds min_change."""
    diff = np.abs(out.astype(np.int16) - draw.under(tgt).astype(np.int16)).max(axis=2)
    return ((diff > min_change) & (draw.region > 0)).astype(np.uint8)


def _fallback(
    rng: np.random.Generator, draw: _Draw, tgt: np.ndarray, cfg: AnomalyConfig, is_grey: bool
) -> np.ndarray:
    """A hard paste of the patch's texture in a colour moved away from the target's: a change that shows."""
    under, inside = draw.under(tgt).astype(np.float32), draw.region > 0
    low = 2 * cfg.min_change + 8
    delta = rng.uniform(low, max(low, FALLBACK_SHIFT))
    tint = np.ones(3) if is_grey else rng.uniform(0.55, 1.0, 3)  # a stain or discolouration; grey moves evenly
    tint /= tint.max()
    sign = -1.0 if under[inside].mean() >= 128 else 1.0  # towards the side with ≥ 128 levels of room
    colour = under[inside].mean(axis=0) + sign * delta * tint
    shifted = np.clip(draw.patch - draw.patch[inside].mean(axis=0) + colour, 0, 255).astype(np.uint8)
    out = _blend("paste", _Draw(draw.box, draw.region, shifted), tgt)
    if out is None or not _changed(out, draw, tgt, cfg.min_change).any():
        # The texture cancelled the shift everywhere (a tiny region): move the target's own pixels instead.
        moved = np.clip(under + sign * delta * tint, 0, 255)
        out = np.where(inside[:, :, None], moved, under).astype(np.uint8)
    return out


def _compose(
    tgt: np.ndarray, draw: _Draw, out: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Full-frame (image, mask): the target's bytes everywhere but at the mask's pixels."""
    x0, y0, x1, y1 = draw.box
    image, full = tgt.copy(), np.zeros(tgt.shape[:2], np.uint8)
    # Blending leaks a little past its mask; restoring those pixels makes "outside the mask unchanged" exact.
    image[y0:y1, x0:x1] = np.where(mask[:, :, None] > 0, out, draw.under(tgt))
    full[y0:y1, x0:x1] = mask
    return image, full


def synthesize_anomaly(
    target: np.ndarray, source: np.ndarray, rng: np.random.Generator, cfg: AnomalyConfig = AnomalyConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """(image shaped like target, uint8 {0,1} HxW mask of the changed pixels): a patch of source in target."""
    tgt = _prepare(_as_bgr(target, "target"), cfg.inside_object)
    src_bgr = _as_bgr(source, "source")
    if src_bgr.shape != tgt.bgr.shape:
        src_bgr = cv2.resize(src_bgr, tgt.bgr.shape[1::-1], interpolation=cv2.INTER_AREA)
    src = _prepare(src_bgr, cfg.inside_object)
    weights = _structure(src.bgr)
    for _ in range(ATTEMPTS):
        draw = _draw(rng, cfg, tgt, src, weights)
        out = _blend(cfg.blend, draw, tgt.bgr)
        mask = None if out is None else _changed(out, draw, tgt.bgr, cfg.min_change)
        if mask is not None and mask.sum() >= max(1.0, MIN_VISIBLE_SHARE * draw.region.sum()):
            break
    else:  # every draw vanished in the blend: the caller still gets a real defect
        out = _fallback(rng, draw, tgt.bgr, cfg, is_grey=target.ndim == 2 or target.shape[2] == 1)
        mask = _changed(out, draw, tgt.bgr, cfg.min_change)
    image, full = _compose(tgt.bgr, draw, out, mask)
    return _shaped_like(image, target), full


def _same_image(a: np.ndarray, b: np.ndarray) -> bool:
    """True for the same array object or equal pixels."""
    return a is b or (a.shape == b.shape and np.array_equal(a, b))


class AnomalySynthesizer:
    """Deterministic synthetic defects from a fixed list of OK images (the caller passes TRAIN's only)."""

    def __init__(self, ok_images: Sequence[np.ndarray], seed: int, cfg: AnomalyConfig = AnomalyConfig()):
        if len(ok_images) == 0:
            raise ConfigError("AnomalySynthesizer needs at least one OK image; got none")
        if seed < 0:
            raise ConfigError(f"AnomalySynthesizer seed must be ≥ 0; got {seed}")
        self.ok_images = list(ok_images)
        self.seed = int(seed)
        self.cfg = cfg

    def __call__(self, target: np.ndarray, key: int) -> tuple[np.ndarray, np.ndarray]:
        """(image, mask) for `target`, fixed by (seed, key, target); the patch comes from another OK image."""
        if key < 0:
            raise ValueError(f"key must be ≥ 0 (e.g. the sample's index); got {key}")
        rng = np.random.default_rng((self.seed, int(key)))
        return synthesize_anomaly(target, self.ok_images[self._source_index(target, rng)], rng, self.cfg)

    def _source_index(self, target: np.ndarray, rng: np.random.Generator) -> int:
        """A random OK image that is not the target (the target itself only if every OK image equals it)."""
        order = rng.permutation(len(self.ok_images))
        for i in order:
            if not _same_image(self.ok_images[i], target):
                return int(i)
        return int(order[0])  # a single OK image, or all duplicates: pasting from itself is what is left
