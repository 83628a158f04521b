"""Per-pixel training targets for defect-map models: masks from the manifest, and synthetic defects made from the
training split's own OK images (mixed supervision: a mask where one is known, the image label everywhere).

Arrays follow the image cache: masks are uint8 [N, H, W] at the model's input size (255 = defect, resized like the
images), `known` says which rows' masks are real: OK images (nothing to mark) and defects with a mask file; a
defect image without a mask trains the decision only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from inspection.core.errors import ConfigError, ManifestError, listing
from inspection.core.preprocess import PreprocessSpec, resize_image
from inspection.data.manifest import Manifest
from inspection.data.synthetic_anomalies import AnomalyConfig, AnomalySynthesizer

MASK_COLUMN = "meta_mask"  # written by the MVTec importer, relative to the manifest's folder
SYNTHETIC_CLASS = "defect"  # the NG class synthetic defects get when a dataset has only OK classes


@dataclass(frozen=True)
class SyntheticDefects:
    """How many synthetic defective copies each OK training image gets (0 = off), and how they are made."""

    copies: int = 0
    anomaly: AnomalyConfig = AnomalyConfig()

    def __post_init__(self) -> None:
        if self.copies < 0:
            raise ConfigError(f"synthetic.copies must be >= 0, got {self.copies}")


def load_masks(manifest: Manifest, manifest_dir: Path, spec: PreprocessSpec) -> tuple[np.ndarray, np.ndarray]:
    """(masks uint8 [N, H, W], known bool [N]) for the manifest's rows, in row order."""
    rows = manifest.rows
    n = len(rows)
    masks = np.zeros((n, spec.height, spec.width), np.uint8)
    ok = rows["label"].isin(manifest.ok_classes).to_numpy()
    known = ok.copy()
    # The mask follows the image through the same resize; letterbox padding is "no defect".
    mask_spec = replace(spec, channels=1, pad_value=0)
    rels = rows[MASK_COLUMN].tolist() if MASK_COLUMN in rows.columns else [""] * n
    missing = []
    for i, rel in enumerate(rels):
        if not rel or ok[i]:
            continue
        path = manifest_dir / rel
        m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if m is None:
            missing.append(f"{path}: mask not found or unreadable")
            continue
        masks[i] = resize_image(((m > 0) * 255).astype(np.uint8), mask_spec)[:, :, 0]
        known[i] = True
    if missing:
        raise ManifestError(f"{len(missing)} mask(s) named in {MASK_COLUMN} cannot be read:" + listing(missing))
    return masks, known


def synthetic_bank(images: np.ndarray, targets: np.ndarray, ok_idx: list[int], ng_index: int, cfg: SyntheticDefects,
                   seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, targets, masks) of cfg.copies synthetic defects per OK training image, deterministic from `seed`.

    `images`/`targets` are the TRAIN split only: sources and targets are its OK images, nothing else."""
    ok = [i for i in range(len(targets)) if targets[i] in ok_idx]
    if cfg.copies == 0 or not ok:
        h, w = images.shape[1:3]
        return images[:0], targets[:0], np.zeros((0, h, w), np.uint8)
    pool = [images[i] for i in ok]
    make = AnomalySynthesizer(pool, seed=seed, cfg=cfg.anomaly)
    out_img, out_mask = [], []
    for c in range(cfg.copies):
        for k, i in enumerate(ok):
            img, mask = make(images[i], key=c * len(ok) + k)
            out_img.append(img.reshape(images[i].shape))
            out_mask.append(mask.astype(np.uint8) * 255)
    return np.stack(out_img), np.full(len(out_img), ng_index, targets.dtype), np.stack(out_mask)


def synthetic_target_class(classes: list[str], ok_classes: list[str]) -> tuple[list[str], int]:
    """The class list training uses with synthetic defects and the index they are labelled with.

    One NG class: that one; none (an OK-only dataset): a new `defect` class; several (defect types): refused,
    since a synthetic patch has no type (import with --binary)."""
    ng = [c for c in classes if c not in ok_classes]
    if not ok_classes:
        raise ConfigError("synthetic defects need the dataset's OK classes (data import ... --ok-class)")
    if len(ng) > 1:
        raise ConfigError(f"synthetic defects need one NG class, this dataset has {len(ng)} ({', '.join(ng)}); "
                          "import it as OK/NG (data import mvtec --binary, or one defect folder)")
    if not ng:
        return [*classes, SYNTHETIC_CLASS], len(classes)
    return list(classes), classes.index(ng[0])
