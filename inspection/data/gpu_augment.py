"""Batched augmentation on the training device (flips, shifted crops, brightness/contrast) for GPU runs.

On a GPU, per-image albumentations in DataLoader workers starves the model; these ops transform a whole
batch of normalised NCHW tensors at once. Same transforms as data.augment, same config.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inspection.data.augment import AugmentConfig


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly flip, translate (reflect-padded) and rescale intensity each image of a float NCHW batch."""
    if not cfg.enabled:
        return x
    n = x.shape[0]
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, device=dev, generator=generator)

    if cfg.hflip:
        x = torch.where((rand(n) < 0.5).view(n, 1, 1, 1), x.flip(3), x)
    if cfg.vflip:
        x = torch.where((rand(n) < 0.5).view(n, 1, 1, 1), x.flip(2), x)
    if cfg.rotate90 and x.shape[2] == x.shape[3]:
        x = torch.where((rand(n) < 0.5).view(n, 1, 1, 1), x.transpose(2, 3).flip(3), x)
    if cfg.shift > 0 or cfg.scale > 0:
        scale = 1 + (rand(n) * 2 - 1) * cfg.scale
        theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
        theta[:, 0, 0] = 1 / scale
        theta[:, 1, 1] = 1 / scale
        theta[:, :, 2] = (rand(n, 2) * 2 - 1) * 2 * cfg.shift  # grid units span 2 per image side
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if cfg.brightness > 0 or cfg.contrast > 0:
        gain = 1 + (rand(n, 1, 1, 1) * 2 - 1) * cfg.contrast
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        # brightness in normalised units ≈ fraction of the 0..1 range divided by a typical std of 0.25
        shift = (rand(n, 1, 1, 1) * 2 - 1) * cfg.brightness / 0.25
        x = (x - mean) * gain + mean + shift
    return x
