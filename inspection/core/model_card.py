"""The model card: what an exported model needs to be used correctly (classes, preprocessing, thresholds, lineage)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from inspection.core.card_checks import (
    card_field_problems,
    class_name_problems,
    decision_config,
    preprocess_problems,
    threshold_problems,
)
from inspection.core.errors import ModelCardError, listing
from inspection.core.files import atomic_write_text
from inspection.core.postprocess import Thresholds
from inspection.core.preprocess import PreprocessSpec

CARD_VERSION = 1  # defect_map is optional and defaults to {}: cards without it still load, so no version bump
DEFECT_MAP_KEYS = ("output", "threshold")


def check_defect_map(d: object, source: str) -> dict:
    """Validate the card's `defect_map`: {} (classifier only) or {"output": name, "threshold": 0 < t < 1}."""
    if not isinstance(d, dict):
        raise ModelCardError(f"{source}: defect_map must be an object, got {type(d).__name__}")
    if not d:
        return {}
    unknown, missing = sorted(set(d) - set(DEFECT_MAP_KEYS)), [k for k in DEFECT_MAP_KEYS if k not in d]
    if unknown or missing:
        found = (f"; unknown {unknown}" if unknown else "") + (f"; missing {missing}" if missing else "")
        raise ModelCardError(f"{source}: defect_map needs exactly the keys {list(DEFECT_MAP_KEYS)}{found}")
    output, thr = d["output"], d["threshold"]
    if not isinstance(output, str) or not output:
        raise ModelCardError(f"{source}: defect_map.output must be a graph output name, got {output!r}")
    # bool is an int in Python; a JSON true is a typo, not a threshold
    if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0.0 < thr < 1.0:
        raise ModelCardError(f"{source}: defect_map.threshold must be a probability in (0, 1), got {thr!r}")
    return {"output": output, "threshold": float(thr)}


@dataclass
class ModelCard:
    """Metadata mirrored in ONNX metadata_props and model.json."""

    class_names: list[str]
    preprocess: PreprocessSpec
    thresholds: Thresholds
    backbone: str = ""
    precision: str = "fp32"
    input_layout: str = "NHWC-uint8-RGB"  # raw pixels; the graph normalises
    dataset: dict = field(default_factory=dict)  # name, version, manifest hash, DVC hash
    lineage: dict = field(default_factory=dict)  # git commit, config hash, checkpoint
    metrics: dict = field(default_factory=dict)
    card_version: int = CARD_VERSION
    # {} for classifier-only models, else {"output": graph output name, "threshold": pixel defect probability}
    defect_map: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Also when the export side builds a card in Python: a bad entry fails there, not on the edge box.
        self.defect_map = check_defect_map(self.defect_map, "model card")

    @property
    def defect_threshold(self) -> float | None:
        """The pixel probability that counts as defect area, or None for a classifier-only model."""
        return self.defect_map["threshold"] if self.defect_map else None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["preprocess"] = self.preprocess.to_dict()
        d["thresholds"] = self.thresholds.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "<dict>") -> ModelCard:
        """Validate every field (types and ranges) and build the card; ModelCardError lists all problems."""
        missing = [k for k in ("class_names", "preprocess") if k not in d]
        if missing:
            raise ModelCardError(f"{source}: model metadata is missing key {missing[0]!r}")
        names = d["class_names"]
        problems = class_name_problems(names)
        problems += threshold_problems(d.get("thresholds", {}), None if problems else names)
        problems += preprocess_problems(d["preprocess"])
        problems += card_field_problems(d, CARD_VERSION)
        if problems:
            raise ModelCardError(f"{source}: malformed model card:" + listing(problems))
        spec, thr = decision_config(d["preprocess"], d.get("thresholds", {}), names)
        return cls(
            class_names=list(names),
            preprocess=spec,
            thresholds=thr,
            backbone=d.get("backbone", ""),
            precision=d.get("precision", "fp32"),
            input_layout=d.get("input_layout", "NHWC-uint8-RGB"),
            dataset=dict(d.get("dataset", {})),
            lineage=dict(d.get("lineage", {})),
            metrics=dict(d.get("metrics", {})),
            card_version=d.get("card_version", CARD_VERSION),
            defect_map=check_defect_map(d.get("defect_map", {}), source),
        )


def write_model_card(card: ModelCard, path: str | os.PathLike) -> None:
    """Write model.json atomically."""
    atomic_write_text(path, json.dumps(card.to_dict(), indent=2, sort_keys=True) + "\n")


def read_model_card(path: str | os.PathLike) -> ModelCard:
    """Read and validate model.json; errors name the file."""
    p = Path(path)
    if not p.exists():
        raise ModelCardError(f"{p}: model card not found")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ModelCardError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise ModelCardError(f"{p}: expected a JSON object")
    return ModelCard.from_dict(d, str(p))
