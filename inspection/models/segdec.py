"""SegDecNet: a segmentation + decision network for small, local defects (Božič et al., 2021, mixed supervision).

A torchvision resnet18 encoder (from scratch) feeds a per-pixel defect head at stride 8 and an image-level
decision head that sees the encoder's global features plus the segmentation features and the map's max and mean.
Masks train the pixel head where a dataset has them; image labels train the decision everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MAP_STRIDE = 8
# What the model card says of the map (engines and export write it): the ONNX output's name, and the pixel
# probability counted as defect area (edit the card to change it).
MAP_CARD = {"output": "defect_map", "threshold": 0.5}


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SegDecNet(nn.Module):
    """forward(x) → class logits [N, C]; forward(x, with_map=True) → (logits, defect-map logits [N, 1, H/8, W/8])."""

    has_defect_map = True  # export adds the `defect_map` output, training adds the pixel loss
    map_stride = MAP_STRIDE

    def __init__(self, num_classes: int, in_chans: int = 3, drop_rate: float = 0.0, seg_channels: int = 64):
        super().__init__()
        import torchvision

        r = torchvision.models.resnet18(weights=None)
        if in_chans != 3:
            r.conv1 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
        self.stem = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool)  # stride 4
        self.layer1, self.layer2, self.layer3, self.layer4 = r.layer1, r.layer2, r.layer3, r.layer4  # 4, 8, 16, 32
        self.seg_features = nn.Sequential(_conv_bn(128 + 256, seg_channels), _conv_bn(seg_channels, seg_channels))
        self.seg_out = nn.Conv2d(seg_channels, 1, 1)
        self.decision = nn.Sequential(nn.Dropout(drop_rate), nn.Linear(512 + 2 * seg_channels + 2, num_classes))

    def forward(self, x: torch.Tensor, with_map: bool = False):
        f2 = self.layer2(self.layer1(self.stem(x)))
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        up = F.interpolate(f3, size=f2.shape[-2:], mode="bilinear", align_corners=False)
        s = self.seg_features(torch.cat([f2, up], 1))
        m = self.seg_out(s)
        # Božič's gradient-flow adjustment: the decision reads the segmentation branch but does not train it, so
        # the pixel head learns from masks and the encoder from both losses.
        sd, md = s.detach(), torch.sigmoid(m.detach())
        z = torch.cat([f4.mean((2, 3)), sd.mean((2, 3)), sd.amax((2, 3)), md.amax((2, 3)), md.mean((2, 3))], 1)
        logits = self.decision(z)
        return (logits, m) if with_map else logits


def has_defect_map(net: nn.Module) -> bool:
    """Whether a network also predicts a per-pixel defect map (forward(x, with_map=True))."""
    return bool(getattr(net, "has_defect_map", False))
