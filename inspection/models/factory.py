"""One factory for classification backbones: `create_backbone(name, num_classes, in_chans)`.

Names: "tiny_cnn", "segdec_resnet18" (segmentation + decision, models.segdec), torchvision names prefixed "tv:"
(e.g. "tv:resnet18") and timm names (e.g. "resnet18", "efficientnet_b0", "convnext_tiny"). Weights are never downloaded: `pretrained_path` must be a local file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from inspection.models.segdec import SegDecNet
from inspection.models.tiny_cnn import TinyCNN


def available_backbones() -> list[str]:
    """Names known to work without network access (timm accepts many more)."""
    return ["tiny_cnn", "segdec_resnet18", "resnet18", "resnet34", "resnet50", "efficientnet_b0", "convnext_tiny",
            "tv:resnet18"]


def _torchvision(name: str, num_classes: int, in_chans: int) -> nn.Module:
    import torchvision

    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    if in_chans != 3:
        # Replace the stem so grayscale steel images need no fake RGB copy.
        first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        for parent in model.modules():
            for child_name, child in parent.named_children():
                if child is first:
                    setattr(parent, child_name, nn.Conv2d(in_chans, first.out_channels, first.kernel_size,
                                                          first.stride, first.padding, bias=first.bias is not None))
                    break
    return model


def backbone_has_defect_map(name: str) -> bool:
    """Whether `name` builds a network with a per-pixel defect head (trained with masks, exported with a map)."""
    return name == "segdec_resnet18"


def create_backbone(
    name: str,
    num_classes: int,
    in_chans: int = 3,
    pretrained_path: str | None = None,
    drop_rate: float = 0.0,
) -> nn.Module:
    """Build a classifier network emitting logits; optionally load local weights (classifier head excluded)."""
    if name == "tiny_cnn":
        model: nn.Module = TinyCNN(num_classes, in_chans, dropout=drop_rate)
    elif name == "segdec_resnet18":
        model = SegDecNet(num_classes, in_chans, drop_rate=drop_rate)
    elif name.startswith("tv:"):
        model = _torchvision(name[3:], num_classes, in_chans)
    else:
        import timm

        # pretrained=False always: timm would otherwise reach for the hub.
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)
    if pretrained_path:
        load_local_weights(model, pretrained_path)
    return model


def load_local_weights(model: nn.Module, path: str) -> None:
    """Load a local state_dict, skipping tensors whose shape differs (class head, stem for other channel counts)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: pretrained weights file not found (weights are never downloaded)")
    state = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"{p}: no tensor matches the model's parameter names/shapes")
    model.load_state_dict(usable, strict=False)
