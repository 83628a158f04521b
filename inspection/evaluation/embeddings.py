"""The model's own penultimate features (the input of its last linear layer), for slice clusters: no external model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from inspection.core.errors import ImageDecodeError, InspectionError
from inspection.core.preprocess import load_model_input
from inspection.models.checkpoint import LoadedModel
from inspection.models.normalize import Normalize


def _last_linear(net: torch.nn.Module) -> torch.nn.Linear:
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise InspectionError(f"{type(net).__name__}: no linear layer, so no penultimate features to cluster")
    return linears[-1]


@torch.inference_mode()
def penultimate_features(model: LoadedModel, paths: Sequence[str | Path], batch_size: int = 64,
                         device: str = "cpu") -> np.ndarray:
    """N x D features through the shared core preprocessing; unreadable images get a row of NaN."""
    grabbed: list[torch.Tensor] = []
    hook = _last_linear(model.net).register_forward_hook(lambda mod, inp, out: grabbed.append(inp[0].detach()))
    net, norm = model.net.to(device).eval(), Normalize(model.spec).to(device)
    rows: list[np.ndarray | None] = []
    try:
        for start in range(0, len(paths), batch_size):
            pixels, where = [], []
            for i, p in enumerate(paths[start : start + batch_size]):
                try:
                    pixels.append(load_model_input(p, model.spec))
                    where.append(i)
                except ImageDecodeError:
                    pass
            batch: list[np.ndarray | None] = [None] * len(paths[start : start + batch_size])
            if pixels:
                grabbed.clear()
                net(norm(torch.from_numpy(np.stack(pixels)).to(device)))
                feats = grabbed[-1].float().flatten(1).cpu().numpy()
                for k, i in enumerate(where):
                    batch[i] = feats[k]
            rows += batch
    finally:
        hook.remove()
    dim = next((len(r) for r in rows if r is not None), 0)
    return np.stack([r if r is not None else np.full(dim, np.nan) for r in rows]) if rows else np.zeros((0, 0))
