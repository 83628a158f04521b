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


@torch.inference_mode()
def predict_arrays(model: LoadedModel, batch_hwc_u8: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Resized uint8 N x H x W x C batch → softmax probabilities (N x C): the normalisation of the ONNX graph."""
    x = Normalize(model.spec).to(device)(torch.from_numpy(np.ascontiguousarray(batch_hwc_u8)).to(device))
    net = model.net.to(device).eval()
    return torch.softmax(net(x).float(), dim=1).cpu().numpy()


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
            probs = predict_arrays(model, np.stack(pixels), device)
            for i, p in zip(ok, probs):
                records.append(ResultRecord(str(paths[i]), p, labels[i] if labels else None))
    order = {str(p): k for k, p in enumerate(paths)}
    records.sort(key=lambda r: order[r.path])
    return records
