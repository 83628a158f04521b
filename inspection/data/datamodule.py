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
from inspection.data.device_batches import DeviceBatches
from inspection.data.image_cache import cached_resized
from inspection.data.manifest import Manifest, load_manifest


class CachedImageDataset(Dataset):
    """Items are (uint8 HxWxC tensor, class index); images already decoded and resized."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, augment: AugmentConfig | None = None):
        self.images = images
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.pipeline = build_augment(augment) if augment else None
        self._seeded_worker: int | None = None

    def __len__(self) -> int:
        return len(self.images)

    def _seed_pipeline(self) -> None:
        """Seed albumentations from torch, once per process / DataLoader worker.

        albumentations 2 keeps its own RNG, seeded from OS entropy and blind to `seed_everything`: without this,
        two runs with the same seed augment differently and their metrics differ. torch's seed is the run's seed
        in the main process and `base_seed + worker_id` in a worker, so workers also draw distinct streams.
        """
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else -1
        if self._seeded_worker != worker:
            self.pipeline.set_random_seed((info.seed if info is not None else torch.initial_seed()) % 2**32)
            self._seeded_worker = worker

    def __getitem__(self, i: int):
        if self.pipeline is not None:
            self._seed_pipeline()
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
        i = torch.as_tensor(idx, device=self.images.device)
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
    # With augment_on=gpu in one process: keep train/val images resident on the training device (small inspection
    # sets fit) and draw batches there (data.device_batches); false: a DataLoader gathers batches on the host.
    device_cache: bool = True


class DefectDataModule(pl.LightningDataModule):
    """Train/val/test loaders from one manifest; the `test` split is never augmented."""

    def __init__(self, cfg: DataConfig):
        super().__init__()
        self.cfg = cfg
        self.manifest: Manifest = load_manifest(cfg.manifest)
        self.class_names = list(self.manifest.classes)
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self._arrays:
            return
        rows = self.manifest.rows
        paths = [self.manifest.abspath(p) for p in rows["path"]]
        images = cached_resized(paths, list(rows["sha256"]), self.cfg.spec, self.cfg.cache_dir)
        idx = {c: i for i, c in enumerate(self.class_names)}
        targets = rows["label"].map(idx).to_numpy()
        for split in ("train", "val", "test"):
            mask = (rows["split"] == split).to_numpy()
            self._arrays[split] = (images[mask], targets[mask])

    def class_weights(self) -> list[float] | None:
        """Inverse-frequency weights over the training split, normalised to mean 1."""
        if not self.cfg.class_weighting:
            return None
        train = self.manifest.split("train")
        counts = np.array([(train["label"] == c).sum() for c in self.class_names], float)
        w = counts.sum() / np.maximum(counts, 1) / len(counts)
        return (w / w.mean()).tolist()

    def _single_process(self) -> bool:
        # Under DDP, Lightning shards host-side loaders with a DistributedSampler; batch-gather loaders it cannot.
        trainer = getattr(self, "trainer", None)
        return trainer is None or trainer.world_size == 1

    def _device(self) -> torch.device:
        """The device Lightning placed this process's model on (CPU when no trainer is attached)."""
        trainer = getattr(self, "trainer", None)
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def split_size(self, split: str) -> int:
        return int((self.manifest.rows["split"] == split).sum())

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        images, targets = self._arrays[split]
        drop_last = shuffle and len(images) > self.cfg.batch_size
        if self.cfg.augment_on == "gpu" and split != "test" and self._single_process():
            if self.cfg.device_cache:
                return DeviceBatches(images, targets, self.cfg.batch_size, shuffle, drop_last, self._device())
            ds = BatchGatherDataset(images, targets)
            sampler = BatchSampler(RandomSampler(ds) if shuffle else SequentialSampler(ds), self.cfg.batch_size,
                                   drop_last=drop_last)
            return DataLoader(ds, sampler=sampler, batch_size=None, num_workers=self.cfg.num_workers,
                              persistent_workers=self.cfg.num_workers > 0, pin_memory=torch.cuda.is_available())
        # Per-image path: albumentations on CPU (unless the module augments on the device), DDP-shardable.
        aug = self.cfg.augment if split == "train" and self.cfg.augment_on != "gpu" else None
        return DataLoader(CachedImageDataset(images, targets, aug), batch_size=self.cfg.batch_size, shuffle=shuffle,
                          num_workers=self.cfg.num_workers, persistent_workers=self.cfg.num_workers > 0,
                          pin_memory=torch.cuda.is_available(), drop_last=drop_last)

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
