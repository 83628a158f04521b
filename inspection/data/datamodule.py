"""LightningDataModule over a manifest: cached uint8 images, albumentations on train, normalisation on device."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from inspection.core.preprocess import PreprocessSpec
from inspection.data.augment import AugmentConfig, apply_augment, build_augment
from inspection.data.image_cache import cached_resized
from inspection.data.manifest import Manifest, load_manifest


class CachedImageDataset(Dataset):
    """Items are (uint8 HxWxC tensor, class index); images already decoded and resized."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, augment: AugmentConfig | None = None):
        self.images = images
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.pipeline = build_augment(augment) if augment else None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        img = apply_augment(self.pipeline, self.images[i])
        return torch.from_numpy(np.ascontiguousarray(img)), self.targets[i]


class BatchGatherDataset(Dataset):
    """Whole batches by index list: one tensor gather per batch instead of per-item Python (GPU runs)."""

    def __init__(self, images: np.ndarray, targets: np.ndarray):
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.targets = torch.as_tensor(targets, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: list[int]):
        i = torch.as_tensor(idx)
        return self.images[i], self.targets[i]


@dataclass
class DataConfig:
    """Plain data settings (Hydra's `data` group maps onto this)."""

    manifest: str
    spec: PreprocessSpec
    batch_size: int = 64
    num_workers: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    cache_dir: str | None = None
    class_weighting: bool = False
    # "cpu": albumentations per image in DataLoader workers; "gpu": batched ops on the device;
    # "auto": gpu when the trainer runs on a GPU (resolved in fit_classifier)
    augment_on: str = "auto"


class DefectDataModule(pl.LightningDataModule):
    """Train/val/test loaders from one manifest; the `test` split is never augmented."""

    def __init__(self, cfg: DataConfig):
        super().__init__()
        self.cfg = cfg
        self.manifest: Manifest = load_manifest(cfg.manifest)
        self.class_names = list(self.manifest.classes)
        self._sets: dict[str, CachedImageDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self._sets:
            return
        rows = self.manifest.rows
        paths = [self.manifest.abspath(p) for p in rows["path"]]
        images = cached_resized(paths, list(rows["sha256"]), self.cfg.spec, self.cfg.cache_dir)
        idx = {c: i for i, c in enumerate(self.class_names)}
        targets = rows["label"].map(idx).to_numpy()
        for split in ("train", "val", "test"):
            mask = (rows["split"] == split).to_numpy()
            if split == "train" and self.cfg.augment_on == "gpu":
                self._sets[split] = BatchGatherDataset(images[mask], targets[mask])
                continue
            aug = self.cfg.augment if split == "train" else None
            self._sets[split] = CachedImageDataset(images[mask], targets[mask], aug)

    def class_weights(self) -> list[float] | None:
        """Inverse-frequency weights over the training split, normalised to mean 1."""
        if not self.cfg.class_weighting:
            return None
        train = self.manifest.split("train")
        counts = np.array([(train["label"] == c).sum() for c in self.class_names], float)
        w = counts.sum() / np.maximum(counts, 1) / len(counts)
        return (w / w.mean()).tolist()

    def split_size(self, split: str) -> int:
        return int((self.manifest.rows["split"] == split).sum())

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        ds = self._sets[split]
        if isinstance(ds, BatchGatherDataset):
            base = RandomSampler(ds) if shuffle else SequentialSampler(ds)
            sampler = BatchSampler(base, self.cfg.batch_size, drop_last=shuffle and len(ds) > self.cfg.batch_size)
            return DataLoader(ds, sampler=sampler, batch_size=None, num_workers=self.cfg.num_workers,
                              persistent_workers=self.cfg.num_workers > 0, pin_memory=torch.cuda.is_available())
        return DataLoader(
            self._sets[split],
            batch_size=self.cfg.batch_size,
            shuffle=shuffle,
            num_workers=self.cfg.num_workers,
            persistent_workers=self.cfg.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=shuffle and len(self._sets[split]) > self.cfg.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def paths(self, split: str) -> tuple[list[Path], list[str]]:
        """Absolute file paths and labels of a split (for file-based evaluation through core)."""
        part = self.manifest.split(split)
        return [self.manifest.abspath(p) for p in part["path"]], list(part["label"])
