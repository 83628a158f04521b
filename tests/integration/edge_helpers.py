"""Test helpers for export/edge tests: a tiny synthetic dataset and a briefly trained tiny_cnn checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from inspection.core.image import read_image
from inspection.core.postprocess import Thresholds
from inspection.core.preprocess import PreprocessSpec, normalize, resize_image
from inspection.data.manifest import Manifest, manifest_hash
from inspection.models.checkpoint import save_checkpoint
from inspection.models.factory import create_backbone

# This 2-core box is shared: multi-threaded OpenMP spin-waits make tiny models 40x slower under load.
torch.set_num_threads(1)


def make_dataset(out: Path, kind: str = "steel", n_per_class: int = 10, size: int = 32, seed: int = 0) -> Path:
    """Synthetic dataset on disk; returns manifest.csv."""
    from inspection.data.synth import generate_dataset

    generate_dataset(kind, out, n_per_class=n_per_class, size=size, seed=seed)
    return out / "manifest.csv"


def train_tiny(paths: list[str], labels: list[str], class_names: list[str], spec: PreprocessSpec, ckpt: Path,
               thresholds: Thresholds | None = None, steps: int = 40, extra: dict | None = None,
               seed: int = 0) -> Path:
    """A few Adam steps of tiny_cnn on the given files, then save_checkpoint (BatchNorm stats included)."""
    torch.manual_seed(seed)
    net = create_backbone("tiny_cnn", len(class_names), spec.channels)
    x = torch.from_numpy(normalize(np.stack([resize_image(read_image(p, spec.channels), spec) for p in paths]), spec))
    y = torch.tensor([class_names.index(lab) for lab in labels])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    net.train()
    for _ in range(steps):
        idx = torch.from_numpy(rng.choice(len(y), size=min(32, len(y)), replace=False))
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return save_checkpoint(ckpt, net, "tiny_cnn", class_names, spec, thresholds or Thresholds(), extra or {})


def train_on_manifest(manifest: Manifest, csv: Path, ckpt: Path, size: int = 32, steps: int = 40,
                      spec: PreprocessSpec | None = None) -> Path:
    """train_tiny on the manifest's train split, recording the manifest in extra['dataset'] like training does."""
    channels = 1 if manifest.name.endswith("steel") else 3
    spec = spec or PreprocessSpec(size, size, channels, mean=(0.45,) * channels, std=(0.22,) * channels)
    rows = manifest.split("train")
    thresholds = Thresholds(ok_classes=tuple(manifest.ok_classes), ng=0.6, ok=0.4) if manifest.ok_classes \
        else Thresholds(min_confidence=0.5)
    extra = {"dataset": {"name": manifest.name, "manifest": str(csv), "manifest_hash": manifest_hash(manifest),
                         "version": "test"},
             "lineage": {"git_commit": "0123456789ab", "config_hash": "cafe"},
             "metrics": {"val": {"accuracy": 0.5}}}
    return train_tiny([str(manifest.abspath(p)) for p in rows["path"]], list(rows["label"]), manifest.classes,
                      spec, ckpt, thresholds, steps, extra)


def small_exported_model(tmp: Path) -> tuple[Path, Path, Path]:
    """(manifest.csv, model.pt, model.onnx) of a barely trained tiny model on 4 synthetic images per class."""
    from inspection.data.manifest import load_manifest
    from inspection.export import export_model

    csv = make_dataset(tmp / "data", "steel", n_per_class=4, size=32)
    ckpt = train_on_manifest(load_manifest(csv), csv, tmp / "model.pt", size=32, steps=3)
    return csv, ckpt, export_model(ckpt, tmp / "onnx").exported.onnx_path


def assert_clean_error(r, *expected: str) -> None:
    """A finished CLI process that failed the user way: exit 2, `error:` and no traceback, naming `expected`."""
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and "error:" in r.stderr, r.stderr[-2000:]
    for text in expected:
        assert text in r.stderr, (text, r.stderr[-2000:])
