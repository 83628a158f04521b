"""Batches drawn from a split that already lives on the training device: one on-device gather per step.

A DataLoader over a device tensor still builds each batch's index list on the host and copies it over, and that
blocking copy syncs host and GPU every step, so Python overhead between steps leaves the GPU idle. Here the
permutation is drawn on the device once per epoch and batches are slices of it: nothing waits for the GPU.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


class DeviceBatches:
    """An iterable of (uint8 NHWC images, class indices, *extras) batches with a length, as Lightning accepts any
    iterable. `extras` (e.g. masks) are sliced with the same indices."""

    def __init__(self, images: np.ndarray | torch.Tensor, targets: np.ndarray | torch.Tensor, batch_size: int,
                 shuffle: bool, drop_last: bool, device: torch.device | str, seed: int | None = None,
                 extras: tuple = ()):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        device = torch.device(device)
        self.images = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images,
                                      device=device)
        self.targets = torch.as_tensor(targets, dtype=torch.long, device=device)
        self.extras = [torch.as_tensor(np.ascontiguousarray(e) if isinstance(e, np.ndarray) else e, device=device)
                       for e in extras]
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        # Seeded from the run's seed (seed_everything), so two runs with one seed see the same batches.
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(int(torch.initial_seed() if seed is None else seed) % 2**63)

    def __len__(self) -> int:
        n = len(self.targets)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n = len(self.targets)
        arrays = [self.images, self.targets, *self.extras]
        if self.shuffle:
            order = torch.randperm(n, device=self.images.device, generator=self.generator)
            for s in range(len(self)):
                idx = order[s * self.batch_size : (s + 1) * self.batch_size]
                yield tuple(a[idx] for a in arrays)
        else:
            for s in range(len(self)):  # contiguous slices: views, no gather at all
                sl = slice(s * self.batch_size, (s + 1) * self.batch_size)
                yield tuple(a[sl] for a in arrays)
