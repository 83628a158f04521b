"""Torch twin of core.preprocess.normalize: used by training, the torch engine and the exported ONNX graph
(export.onnx_export.UInt8Classifier), parity-tested against numpy."""

from __future__ import annotations

import torch
from torch import nn

from inspection.core.preprocess import PreprocessSpec


class Normalize(nn.Module):
    """uint8 NHWC → float NCHW, (x/255 - mean)/std: the same ops, in the same order, as core.normalize."""

    def __init__(self, spec: PreprocessSpec, channels_last: bool = False):
        super().__init__()
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.channels_last = channels_last

    def forward(self, x_u8_nhwc: torch.Tensor) -> torch.Tensor:
        x = x_u8_nhwc.permute(0, 3, 1, 2).float() * (1.0 / 255.0)
        x = (x - self.mean) / self.std
        # permute of NHWC is already channels_last in memory; keep it so on GPU, make it dense otherwise.
        return x if self.channels_last else x.contiguous()
