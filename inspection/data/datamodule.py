"""LightningDataModule over a manifest: cached uint8 images, albumentations on train, normalisation on device.

Batches are (images, targets) or, for defect-map models, (images, targets, masks, mask_known): see
data.pixel_targets for masks and synthetic defects."""

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
from inspection.data.pixel_targets import SyntheticDefects, load_masks, synthetic_bank, synthetic_target_class


class CachedImageDataset(Dataset):
    """Items are (uint8 HxWxC tensor, class index[, uint8 HxW mask, mask known]); images decoded and resized."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, augment: AugmentConfig | None = None,
                 masks: np.ndarray | None = None, known: np.ndarray | None = None):
        self.images = images
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.masks = masks
        self.known = torch.as_tensor(known, dtype=torch.bool) if known is not None else None
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
        if self.masks is None:
            img = apply_augment(self.pipeline, self.images[i])
            return torch.from_numpy(np.ascontiguousarray(img)), self.targets[i]
        img, mask = apply_augment(self.pipeline, self.images[i], self.masks[i])
        return (torch.from_numpy(np.ascontiguousarray(img)), self.targets[i],
                torch.from_numpy(np.ascontiguousarray(mask)), self.known[i])


class BatchGatherDataset(Dataset):
    """Whole batches by index list: one tensor gather per batch instead of per-item Python (GPU runs)."""

    def __init__(self, *arrays: np.ndarray):
        self.arrays = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
        self.arrays[1] = self.arrays[1].long()

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, idx: list[int]):
        i = torch.as_tensor(idx, device=self.arrays[0].device)
        return tuple(a[i] for a in self.arrays)


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
    # Per-pixel masks in every batch (defect-map models; set by fit_classifier from the network)
    masks: bool = False
    synthetic: SyntheticDefects = field(default_factory=SyntheticDefects)
    seed: int = 0  # synthetic defects are drawn from it (the run's seed)


class DefectDataModule(pl.LightningDataModule):
    """Train/val/test loaders from one manifest; the `test` split is never augmented."""

    def __init__(self, cfg: DataConfig):
        super().__init__()
        self.cfg = cfg
        self.manifest: Manifest = load_manifest(cfg.manifest)
        self.class_names = list(self.manifest.classes)
        self.synthetic_index: int | None = None
        if cfg.synthetic.copies:
            self.class_names, self.synthetic_index = synthetic_target_class(self.class_names,
                                                                            list(self.manifest.ok_classes))
        self._arrays: dict[str, tuple[np.ndarray, ...]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self._arrays:
            return
        rows = self.manifest.rows
        paths = [self.manifest.abspath(p) for p in rows["path"]]
        images = cached_resized(paths, list(rows["sha256"]), self.cfg.spec, self.cfg.cache_dir)
        idx = {c: i for i, c in enumerate(self.class_names)}
        targets = rows["label"].map(idx).to_numpy()
        extras = load_masks(self.manifest, Path(self.cfg.manifest).parent, self.cfg.spec) if self.cfg.masks else ()
        for split in ("train", "val", "test"):
            sel = (rows["split"] == split).to_numpy()
            self._arrays[split] = (images[sel], targets[sel], *(a[sel] for a in extras))
        if self.synthetic_index is not None:
            self._arrays["train"] = self._with_synthetic(self._arrays["train"])

    def _with_synthetic(self, train: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """The train split plus synthetic defects made from its own OK images (val and test stay real)."""
        ok_idx = [self.class_names.index(c) for c in self.manifest.ok_classes]
        imgs, ys, masks = synthetic_bank(train[0], train[1], ok_idx, self.synthetic_index, self.cfg.synthetic,
                                         self.cfg.seed)
        out = [np.concatenate([train[0], imgs]), np.concatenate([train[1], ys])]
        if self.cfg.masks:
            out += [np.concatenate([train[2], masks]), np.concatenate([train[3], np.ones(len(ys), bool)])]
        return tuple(out)

    def class_weights(self) -> list[float] | None:
        """Inverse-frequency weights over the training split (synthetic defects included), normalised to mean 1."""
        if not self.cfg.class_weighting:
            return None
        self.setup()
        counts = np.bincount(self._arrays["train"][1], minlength=len(self.class_names)).astype(float)
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
        arrays = self._arrays[split]
        images, targets = arrays[:2]
        drop_last = shuffle and len(images) > self.cfg.batch_size
        if self.cfg.augment_on == "gpu" and split != "test" and self._single_process():
            if self.cfg.device_cache:
                return DeviceBatches(images, targets, self.cfg.batch_size, shuffle, drop_last, self._device(),
                                     extras=arrays[2:])
            ds = BatchGatherDataset(*arrays)
            sampler = BatchSampler(RandomSampler(ds) if shuffle else SequentialSampler(ds), self.cfg.batch_size,
                                   drop_last=drop_last)
            return DataLoader(ds, sampler=sampler, batch_size=None, num_workers=self.cfg.num_workers,
                              persistent_workers=self.cfg.num_workers > 0, pin_memory=torch.cuda.is_available())
        # Per-image path: albumentations on CPU (unless the module augments on the device), DDP-shardable.
        aug = self.cfg.augment if split == "train" and self.cfg.augment_on != "gpu" else None
        return DataLoader(CachedImageDataset(images, targets, aug, *arrays[2:]), batch_size=self.cfg.batch_size,
                          shuffle=shuffle,
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
