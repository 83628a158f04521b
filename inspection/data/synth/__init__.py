"""Deterministic synthetic defect datasets (steel strip, pills): the embedded default data for demos and tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from inspection.core.errors import ConfigError
from inspection.core.files import file_sha256
from inspection.data.manifest import Manifest, write_manifest
from inspection.data.splits import stratified_group_split
from inspection.data.synth.common import SynthKind, draw_severity, write_contact_sheet
from inspection.data.synth.pill import PILL
from inspection.data.synth.steel import STEEL

KINDS: dict[str, SynthKind] = {"steel": STEEL, "pill": PILL}

__all__ = ["KINDS", "generate_dataset", "render_samples", "write_contact_sheet"]


def _kind(kind: str) -> SynthKind:
    if kind not in KINDS:
        raise ConfigError(f"unknown synthetic dataset kind {kind!r}; valid kinds: {sorted(KINDS)}")
    return KINDS[kind]


def _render_one(spec: SynthKind, label: str, seed: int, i: int, size: int) -> tuple[np.ndarray, float]:
    """Image i of class `label`, from its own RNG stream so any image can be regenerated alone."""
    rng = np.random.default_rng([seed, spec.classes.index(label), i])
    severity = 0.0 if label in spec.ok_classes else round(draw_severity(rng), 3)
    return spec.render(label, rng, size, severity), severity


def render_samples(kind: str, per_class: int = 6, size: int = 64, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """In-memory images per class (RGB or gray uint8), e.g. for write_contact_sheet or quick experiments."""
    spec = _kind(kind)
    return {c: [_render_one(spec, c, seed, i, size)[0] for i in range(per_class)] for c in spec.classes}


def generate_dataset(
    kind: str,
    out_dir: str | Path,
    n_per_class: int = 60,
    size: int = 64,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
) -> Manifest:
    """Write `<out_dir>/images/<class>/<class>_<i>.png` and `<out_dir>/manifest.csv`; same arguments → same bytes."""
    spec = _kind(kind)
    if n_per_class < 1 or size < 16:
        raise ConfigError(f"need n_per_class >= 1 and size >= 16, got n_per_class={n_per_class}, size={size}")
    out = Path(out_dir)
    image_root = out / "images"
    records = []
    for label in spec.classes:
        (image_root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            img, severity = _render_one(spec, label, seed, i, size)
            rel = f"{label}/{label}_{i}.png"
            bgr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(image_root / rel), bgr):
                raise OSError(f"{image_root / rel}: could not write PNG")
            records.append({"path": rel, "label": label, "sha256": file_sha256(image_root / rel),
                            "meta_severity": severity})
    rows = pd.DataFrame.from_records(records)
    # Grouping by content hash keeps any accidental duplicate images inside one split.
    rows["split"] = stratified_group_split(rows["label"].tolist(), rows["sha256"].tolist(), fractions, seed)
    manifest = Manifest(
        name=f"synth_{kind}",
        classes=list(spec.classes),
        rows=rows[["path", "label", "split", "sha256", "meta_severity"]],
        image_root=image_root,
        ok_classes=list(spec.ok_classes),
        info={"source": "synthetic", "kind": kind, "seed": seed, "size": size, "n_per_class": n_per_class,
              **({"lookalike_pairs": [list(p) for p in spec.lookalike_pairs]} if spec.lookalike_pairs else {})},
    )
    write_manifest(manifest, out / "manifest.csv")
    return manifest
