"""Backbone factory: names, channel counts, and local-only pretrained weights."""

import pytest
import torch

from inspection.models.factory import create_backbone


@pytest.mark.parametrize("name", ["tiny_cnn", "resnet18", "tv:resnet18"])
@pytest.mark.parametrize("chans", [1, 3])
def test_backbones_emit_logits(name, chans):
    net = create_backbone(name, 5, chans).eval()
    with torch.no_grad():
        assert net(torch.zeros(2, chans, 64, 64)).shape == (2, 5)


def test_local_pretrained_weights_load_except_mismatched_head(tmp_path):
    src = create_backbone("resnet18", 10, 3)
    torch.save(src.state_dict(), tmp_path / "w.pt")
    dst = create_backbone("resnet18", 6, 3, pretrained_path=str(tmp_path / "w.pt"))
    assert torch.equal(dst.conv1.weight, src.conv1.weight)  # backbone copied
    assert dst.fc.weight.shape == (6, 512)  # head kept at the new class count


def test_pretrained_path_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        create_backbone("tiny_cnn", 3, 1, pretrained_path=str(tmp_path / "missing.pt"))
