"""Batched device augmentation (used on GPUs) runs on CPU tensors too: shapes, determinism, label-preserving ops."""

import numpy as np
import torch

from inspection.core.preprocess import PreprocessSpec
from inspection.data.augment import AugmentConfig
from inspection.data.datamodule import BatchGatherDataset
from inspection.data.gpu_augment import augment_batch


def test_augment_batch_shapes_and_seeded_determinism():
    x = torch.randn(8, 1, 32, 32)
    cfg = AugmentConfig(shift=0.1, scale=0.1, brightness=0.1, contrast=0.1, rotate90=True)
    a = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    b = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.allclose(a, x)


def test_flip_only_is_a_permutation_of_pixels():
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(6, 1, 1, 1)
    cfg = AugmentConfig(hflip=True, vflip=True, shift=0, brightness=0, contrast=0)
    y = augment_batch(x, cfg, torch.Generator().manual_seed(1))
    for i in range(6):
        assert torch.equal(y[i].flatten().sort().values, x[i].flatten().sort().values)


def test_disabled_is_identity():
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(augment_batch(x, AugmentConfig(enabled=False)), x)


def test_batch_gather_dataset_returns_whole_batches():
    imgs = np.random.default_rng(0).integers(0, 255, (10, 8, 8, 1), dtype=np.uint8)
    ds = BatchGatherDataset(imgs, np.arange(10) % 3)
    x, y = ds[[0, 4, 9]]
    assert x.shape == (3, 8, 8, 1) and x.dtype == torch.uint8 and y.tolist() == [0, 1, 0]
    assert PreprocessSpec(8, 8, 1).channels == 1
