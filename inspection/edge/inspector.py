"""OnnxInspector: an exported model + its model card, run with ONNX Runtime alone (no torch); an Inspector."""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import islice
from pathlib import Path

import numpy as np

from inspection.core.errors import InspectionError, ModelCardError
from inspection.core.file_chunks import FileChunk, read_chunk
from inspection.core.files import file_sha256
from inspection.core.model_card import ModelCard
from inspection.core.postprocess import Verdict
from inspection.core.preprocess import resize_image
from inspection.core.results import ImageResult
from inspection.edge.engine import CardBacked
from inspection.edge.providers import available_cpus, create_session

CARD_KEY = "inspection.model_card"  # written by inspection.export.onnx_export
DEFAULT_BATCH_SIZE = 32  # ORT on CPU gains little beyond it; memory stays small on an edge box


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


class OnnxInspector(CardBacked):
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
        spec, inp, outputs = self.card.preprocess, self.session.get_inputs()[0], self.session.get_outputs()
        self.input_name = inp.name
        want = [spec.height, spec.width, spec.channels]
        if inp.type != "tensor(uint8)" or len(inp.shape) != 4 or list(inp.shape[1:]) != want:
            raise ModelCardError(f"{self.path}: graph input {inp.name} {inp.type} {inp.shape} does not match the "
                                 f"card (uint8 [N, {spec.height}, {spec.width}, {spec.channels}])")
        # Only the card's claim must hold: an extra output the card does not name is not ours to judge.
        self.map_name: str | None = self.card.defect_map.get("output")
        if self.map_name is not None:
            self._check_map_output({o.name: o for o in outputs})
        out = next(o for o in outputs if o.name != self.map_name) if len(outputs) > 1 else outputs[0]
        self.probs_name = out.name
        n = len(self.card.class_names)
        if len(out.shape) != 2 or (isinstance(out.shape[1], int) and out.shape[1] != n):
            raise ModelCardError(f"{self.path}: graph output {out.shape} does not match {n} class names")

    def _check_map_output(self, outputs: dict) -> None:
        m = outputs.get(self.map_name)
        if m is None:
            raise ModelCardError(f"{self.path}: the card names defect map output {self.map_name!r} but the "
                                 f"graph's outputs are {list(outputs)}")
        if len(outputs) < 2:
            raise ModelCardError(f"{self.path}: the graph has only the defect map output; class "
                                 "probabilities are missing")
        one = m.shape[1] if len(m.shape) == 4 else None
        if m.type != "tensor(float)" or len(m.shape) != 4 or (isinstance(one, int) and one != 1):
            raise ModelCardError(f"{self.path}: defect map output {self.map_name} {m.type} {m.shape} is not "
                                 "float32 [N, 1, h, w]")

    def predict(self, batch_u8_nhwc: np.ndarray) -> np.ndarray:
        """uint8 [N, H, W, C] at the model's input size → probabilities float32 [N, classes]."""
        x = self._check_batch(batch_u8_nhwc)
        if len(x) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        probs = self.session.run([self.probs_name], {self.input_name: x})[0]
        return probs.astype(np.float32, copy=False)

    def predict_with_map(self, batch_u8_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Like predict, plus defect maps float32 [N, h, w] from the same run (None: no map model, or N = 0)."""
        if self.map_name is None:
            return self.predict(batch_u8_nhwc), None
        x = self._check_batch(batch_u8_nhwc)
        if len(x) == 0:
            return np.zeros((0, len(self.class_names)), np.float32), None
        probs, maps = self.session.run([self.probs_name, self.map_name], {self.input_name: x})
        if maps.ndim != 4 or maps.shape[:2] != (len(x), 1):  # symbolic graph dims can only be checked here
            raise ModelCardError(f"{self.path}: defect map output {self.map_name} has shape "
                                 f"{list(maps.shape)}, expected [{len(x)}, 1, h, w]")
        return probs.astype(np.float32, copy=False), maps[:, 0].astype(np.float32, copy=False)

    def _check_batch(self, batch_u8_nhwc: np.ndarray) -> np.ndarray:
        x = np.asarray(batch_u8_nhwc)
        spec = self.spec
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (spec.height, spec.width, spec.channels):
            raise ValueError(f"expected uint8 [N, {spec.height}, {spec.width}, {spec.channels}], "
                             f"got {x.dtype} {list(x.shape)}")
        return np.ascontiguousarray(x)

    def inspect_arrays(self, images: list[np.ndarray]) -> list[Verdict]:
        """Decoded uint8 images of any size → verdicts (resized with core.resize_image)."""
        if not images:
            return []
        batch = np.stack([resize_image(img, self.spec) for img in images])
        return self.decide(self.predict(batch))

    def describe(self) -> str:
        return self.describe_card()

    def runs_on(self) -> str:
        return self.providers.describe()

    def iter_results(self, paths: Iterable[str], batch_size: int | None = None, workers: int | None = None,
                     prefetch: int = 2) -> Iterator[list[ImageResult]]:
        """Yield one list of results per batch; at most `prefetch` batches are decoded ahead (bounded memory).

        Each batch is split into one chunk per worker thread (OpenCV decodes outside the GIL); every file gets its
        pixels or its error, so one bad file never stops a batch."""
        batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
        if batch_size < 1:
            raise InspectionError(f"batch size must be >= 1, got {batch_size}")
        workers = workers or min(8, available_cpus())
        part = -(-batch_size // workers)
        read = partial(read_chunk, spec=self.spec, keep_jpeg=False)
        it = iter(paths)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
            pending: deque[Iterator[FileChunk]] = deque()

            def submit_next() -> None:
                batch = list(islice(it, batch_size))
                if batch:
                    pending.append(pool.map(read, [batch[i : i + part] for i in range(0, len(batch), part)]))

            for _ in range(max(1, prefetch)):
                submit_next()
            while pending:
                chunk = FileChunk.concat(pending.popleft())
                submit_next()  # decode the next batch while this one runs through the model
                results = [ImageResult(p, error=e) for p, e in zip(chunk.paths, chunk.errors, strict=True)]
                slots = [i for i, px in enumerate(chunk.pixels) if px is not None]
                if slots:
                    probs, maps = self.predict_with_map(np.stack([chunk.pixels[i] for i in slots]))
                    for j, (k, verdict) in enumerate(zip(slots, self.decide(probs), strict=True)):
                        results[k].probs, results[k].verdict = probs[j], verdict
                        if maps is not None:
                            results[k].defect_map = maps[j]
                yield results

    def close(self) -> None:
        """Nothing to release: decode threads live only while iter_results runs (the session goes with the object)."""


