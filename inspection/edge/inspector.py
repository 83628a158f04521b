"""OnnxInspector: an exported model + its model card, run with ONNX Runtime alone (no torch)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from inspection.core.errors import InspectionError, ModelCardError
from inspection.core.files import file_sha256  # noqa: F401  (re-exported)
from inspection.core.model_card import ModelCard
from inspection.core.postprocess import Verdict, postprocess
from inspection.core.preprocess import PreprocessSpec, load_model_input, resize_image
from inspection.edge.providers import create_session

CARD_KEY = "inspection.model_card"  # written by inspection.export.onnx_export


def card_from_metadata(meta: dict[str, str], source: str) -> ModelCard:
    """Parse the model card stored in ONNX metadata_props; ModelCardError naming `source` if absent or broken."""
    if CARD_KEY not in meta:
        raise ModelCardError(f"{source}: ONNX metadata has no {CARD_KEY!r} entry; this file was not exported by "
                             "`inspection export` (class names, preprocessing and thresholds are unknown)")
    try:
        d = json.loads(meta[CARD_KEY])
    except json.JSONDecodeError as e:
        raise ModelCardError(f"{source}: metadata {CARD_KEY!r} is not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise ModelCardError(f"{source}: metadata {CARD_KEY!r} must be a JSON object")
    return ModelCard.from_dict(d, source)


class OnnxInspector:
    """Load model.onnx, validate its card against the graph, and classify uint8 images."""

    def __init__(self, model_path: str | os.PathLike, device: str = "auto", require_gpu: bool = False,
                 threads: int | None = None):
        p = Path(model_path)
        if not p.is_file():
            raise InspectionError(f"{p}: model file not found")
        self.path = p
        self.model_hash = file_sha256(p)[:12]
        try:
            self.session, self.providers = create_session(str(p), device, require_gpu, threads)
        except InspectionError:
            raise
        except Exception as e:  # ORT raises its own exception types for a corrupt or foreign file
            raise InspectionError(f"{p}: ONNX Runtime cannot load the model ({e})") from None
        self.card = card_from_metadata(dict(self.session.get_modelmeta().custom_metadata_map), str(p))
        self._check_io()

    def _check_io(self) -> None:
        spec, (inp, out) = self.card.preprocess, (self.session.get_inputs()[0], self.session.get_outputs()[0])
        self.input_name = inp.name
        want = [spec.height, spec.width, spec.channels]
        if inp.type != "tensor(uint8)" or len(inp.shape) != 4 or list(inp.shape[1:]) != want:
            raise ModelCardError(f"{self.path}: graph input {inp.name} {inp.type} {inp.shape} does not match the "
                                 f"card (uint8 [N, {spec.height}, {spec.width}, {spec.channels}])")
        n = len(self.card.class_names)
        if len(out.shape) != 2 or (isinstance(out.shape[1], int) and out.shape[1] != n):
            raise ModelCardError(f"{self.path}: graph output {out.shape} does not match {n} class names")

    @property
    def class_names(self) -> list[str]:
        return self.card.class_names

    @property
    def spec(self) -> PreprocessSpec:
        return self.card.preprocess

    def load(self, path: str | os.PathLike) -> np.ndarray:
        """Read a file and resize it to the model input: the same two calls the training-side evaluation makes."""
        return load_model_input(path, self.spec)

    def predict(self, batch_u8_nhwc: np.ndarray) -> np.ndarray:
        """uint8 [N, H, W, C] at the model's input size → probabilities float32 [N, classes]."""
        x = np.asarray(batch_u8_nhwc)
        spec = self.spec
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (spec.height, spec.width, spec.channels):
            raise ValueError(f"expected uint8 [N, {spec.height}, {spec.width}, {spec.channels}], "
                             f"got {x.dtype} {list(x.shape)}")
        if len(x) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0].astype(np.float32, copy=False)

    def decide(self, probs: np.ndarray) -> list[Verdict]:
        """Probabilities → OK / NG / REVIEW with the card's thresholds."""
        return postprocess(probs, self.class_names, self.card.thresholds)

    def inspect_arrays(self, images: list[np.ndarray]) -> list[Verdict]:
        """Decoded uint8 images of any size → verdicts (resized with core.resize_image)."""
        if not images:
            return []
        batch = np.stack([resize_image(img, self.spec) for img in images])
        return self.decide(self.predict(batch))

    def describe(self) -> str:
        c = self.card
        return (f"{self.path.name} [{self.model_hash}] {c.backbone or 'model'} {c.precision} "
                f"{c.preprocess.height}x{c.preprocess.width}x{c.preprocess.channels} "
                f"{len(c.class_names)} classes on {self.providers.describe()}")


