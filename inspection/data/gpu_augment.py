"""Batched augmentation on the training device (flips, shifted crops, brightness/contrast) for GPU runs.

On a GPU, per-image albumentations in DataLoader workers starves the model; these ops transform a whole
batch of normalised NCHW tensors at once. Same transforms as data.augment, same config.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inspection.data.augment import AugmentConfig


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None,
                  mask: torch.Tensor | None = None):
    """Randomly flip, translate (reflect-padded) and rescale intensity each image of a float NCHW batch.

    With `mask` (float N1HW): returns (x, mask), the mask moved by the same geometric draws (bilinear: soft
    edges are fine for a pixel loss) and untouched by the intensity ones."""
    if not cfg.enabled:
        return x if mask is None else (x, mask)
    n = x.shape[0]
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, device=dev, generator=generator)

    def both(pick: torch.Tensor, op) -> None:
        nonlocal x, mask
        x = torch.where(pick, op(x), x)
        if mask is not None:
            mask = torch.where(pick, op(mask), mask)

    if cfg.hflip:
        both((rand(n) < 0.5).view(n, 1, 1, 1), lambda t: t.flip(3))
    if cfg.vflip:
        both((rand(n) < 0.5).view(n, 1, 1, 1), lambda t: t.flip(2))
    if cfg.rotate90 and x.shape[2] == x.shape[3]:
        both((rand(n) < 0.5).view(n, 1, 1, 1), lambda t: t.transpose(2, 3).flip(3))
    if cfg.shift > 0 or cfg.scale > 0:
        scale = 1 + (rand(n) * 2 - 1) * cfg.scale
        theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
        theta[:, 0, 0] = 1 / scale
        theta[:, 1, 1] = 1 / scale
        theta[:, :, 2] = (rand(n, 2) * 2 - 1) * 2 * cfg.shift  # grid units span 2 per image side
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        if mask is not None:
            mask = F.grid_sample(mask, grid.to(mask.dtype), mode="bilinear", padding_mode="reflection",
                                 align_corners=False)
    if cfg.brightness > 0 or cfg.contrast > 0:
        gain = 1 + (rand(n, 1, 1, 1) * 2 - 1) * cfg.contrast
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        # brightness in normalised units ≈ fraction of the 0..1 range divided by a typical std of 0.25
        shift = (rand(n, 1, 1, 1) * 2 - 1) * cfg.brightness / 0.25
        x = (x - mean) * gain + mean + shift
    return x if mask is None else (x, mask)
