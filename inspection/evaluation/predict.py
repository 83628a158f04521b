"""Torch-side prediction over image files through the shared core preprocessing → ResultRecords."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from inspection.core.errors import ImageDecodeError
from inspection.core.preprocess import load_model_input
from inspection.core.results import ResultRecord
from inspection.models.checkpoint import LoadedModel
from inspection.models.normalize import Normalize
from inspection.models.segdec import has_defect_map


@torch.inference_mode()
def predict_arrays(model: LoadedModel, batch_hwc_u8: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Resized uint8 N x H x W x C batch → softmax probabilities (N x C): the normalisation of the ONNX graph."""
    return predict_arrays_with_map(model, batch_hwc_u8, device)[0]


@torch.inference_mode()
def predict_arrays_with_map(model: LoadedModel, batch_hwc_u8: np.ndarray,
                            device: str = "cpu") -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities N x C, defect maps N x h x w in [0, 1] or None): what the exported graph returns."""
    x = Normalize(model.spec).to(device)(torch.from_numpy(np.ascontiguousarray(batch_hwc_u8)).to(device))
    net = model.net.to(device).eval()
    if not has_defect_map(net):
        return torch.softmax(net(x).float(), dim=1).cpu().numpy(), None
    logits, map_logits = net(x, with_map=True)
    return torch.softmax(logits.float(), dim=1).cpu().numpy(), torch.sigmoid(map_logits.float())[:, 0].cpu().numpy()


def predict_files(
    model: LoadedModel,
    paths: Sequence[str | Path],
    labels: Sequence[str] | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> list[ResultRecord]:
    """Read, resize, normalise and classify files; unreadable files become records with `error` set."""
    records: list[ResultRecord] = []
    for start in range(0, len(paths), batch_size):
        chunk = list(range(start, min(start + batch_size, len(paths))))
        pixels, ok = [], []
        for i in chunk:
            try:
                pixels.append(load_model_input(paths[i], model.spec))
                ok.append(i)
            except ImageDecodeError as e:
                records.append(ResultRecord(str(paths[i]), None, labels[i] if labels else None, error=e.reason))
        if ok:
            probs, maps = predict_arrays_with_map(model, np.stack(pixels), device)
            for k, (i, p) in enumerate(zip(ok, probs)):
                meta = {"defect_map": maps[k]} if maps is not None else {}
                records.append(ResultRecord(str(paths[i]), p, labels[i] if labels else None, meta=meta))
    order = {str(p): k for k, p in enumerate(paths)}
    records.sort(key=lambda r: order[r.path])
    return records
