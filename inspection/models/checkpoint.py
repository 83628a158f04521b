"""Checkpoints hold plain hyperparameters + a state_dict (never pickled modules); loaded with weights_only=True."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from inspection.core.card_checks import (
    class_name_problems,
    decision_config,
    preprocess_problems,
    threshold_problems,
)
from inspection.core.errors import CheckpointError, listing
from inspection.core.postprocess import Thresholds
from inspection.core.preprocess import PreprocessSpec
from inspection.models.factory import create_backbone

FORMAT = "inspection-classifier/1"


@dataclass
class LoadedModel:
    """A network in eval mode plus everything needed to use it like the exported model."""

    net: nn.Module
    class_names: list[str]
    spec: PreprocessSpec
    thresholds: Thresholds
    backbone: str
    extra: dict = field(default_factory=dict)  # dataset, lineage, metrics, hparams


def save_checkpoint(
    path: str | os.PathLike,
    net: nn.Module,
    backbone: str,
    class_names: list[str],
    spec: PreprocessSpec,
    thresholds: Thresholds,
    extra: dict | None = None,
) -> Path:
    """Write a self-describing checkpoint atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "backbone": backbone,
        "class_names": list(class_names),
        "preprocess": spec.to_dict(),
        "thresholds": thresholds.to_dict(),
        "extra": extra or {},
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
    }
    tmp = p.with_name(f".{p.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, p)
    return p


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> LoadedModel:
    """Rebuild the network from a checkpoint written by save_checkpoint (or a Lightning .ckpt of ours)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint not found")
    try:
        ck = torch.load(p, map_location=map_location, weights_only=True)
    except OSError as e:
        raise CheckpointError(f"{p}: cannot read the checkpoint ({e.strerror or e}; truncated?)") from None
    except Exception:  # any parse failure (torch raises a zoo of types); its message may advise weights_only=False,
        # i.e. running code from the file: never
        raise CheckpointError(f"{p}: cannot load: truncated, or not a checkpoint saved by `inspection train`") from None
    if not isinstance(ck, dict):
        raise CheckpointError(f"{p}: not an inspection checkpoint (holds a {type(ck).__name__})")
    try:
        if ck.get("format") != FORMAT:
            # Lightning's own checkpoint: our LightningModule stores the same payload under "inspection".
            if "inspection" not in ck:
                raise CheckpointError(f"{p}: not an inspection checkpoint (format {ck.get('format')!r})")
            meta = ck["inspection"]
            state = {k.removeprefix("net."): v for k, v in ck["state_dict"].items() if k.startswith("net.")}
            ck = {**meta, "state_dict": state}
        problems = class_name_problems(ck["class_names"])
        problems += threshold_problems(ck.get("thresholds", {}), None if problems else ck["class_names"])
        problems += preprocess_problems(ck["preprocess"])
        if problems:
            raise CheckpointError(f"{p}: malformed checkpoint metadata:" + listing(problems))
        spec, thresholds = decision_config(ck["preprocess"], ck.get("thresholds", {}), ck["class_names"])
        net = create_backbone(ck["backbone"], len(ck["class_names"]), spec.channels)
        net.load_state_dict(ck["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # fields missing, weights of another shape
        raise CheckpointError(f"{p}: not a usable inspection checkpoint ({type(e).__name__}: {e})") from None
    net.eval()
    return LoadedModel(
        net=net,
        class_names=list(ck["class_names"]),
        spec=spec,
        thresholds=thresholds,
        backbone=ck["backbone"],
        extra=dict(ck.get("extra", {})),
    )
