"""The Inspector protocol: what every inspection engine offers the batch runner, the writers and the CLI.

Engines: `edge.inspector.OnnxInspector` (ONNX Runtime, the edge install) and `engines.torch_engine.TorchInspector`
(a checkpoint on a GPU server). The runner, resume, the writers and the HTML report know only this protocol.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from inspection.core.model_card import ModelCard
from inspection.core.postprocess import Verdict, postprocess
from inspection.core.preprocess import PreprocessSpec, load_model_input
from inspection.core.results import ImageResult


@runtime_checkable
class Inspector(Protocol):
    """A loaded model that turns image paths into verdicts, batch by batch, in input order."""

    card: ModelCard  # class names, preprocessing and thresholds: how rows are labelled and decided
    model_hash: str  # the model file's sha256 prefix: every row names the model that made it (resume checks it)

    def describe(self) -> str:
        """One line: the model file, its hash, precision and where it runs."""
        ...

    def runs_on(self) -> str:
        """Where inference runs (execution providers or torch device), for run summaries."""
        ...

    def iter_results(self, paths: Iterable[str], batch_size: int | None = None,
                     workers: int | None = None) -> Iterator[list[ImageResult]]:
        """One list per batch, every path once, in order; an unreadable file is an ImageResult with `error`.

        `batch_size` / `workers` None: the engine's own defaults (each engine is measured at its own)."""
        ...

    def close(self) -> None:
        """Release reader threads or processes; the engine is not used afterwards."""
        ...


class CardBacked:
    """What follows from an engine's model card, shared by the engines: class names, the input definition, a file
    decoded for it (the same calls as training-side evaluation), and verdicts with the card's thresholds."""

    card: ModelCard
    path: Path  # the model file
    model_hash: str

    def describe_card(self) -> str:
        """The card's model in one line (backbone, precision, input, classes) + where it runs: for describe()."""
        c = self.card
        return (f"{self.path.name} [{self.model_hash}] {c.backbone or 'model'} {c.precision} "
                f"{c.preprocess.height}x{c.preprocess.width}x{c.preprocess.channels} "
                f"{len(c.class_names)} classes on {self.runs_on()}")

    @property
    def class_names(self) -> list[str]:
        return self.card.class_names

    @property
    def spec(self) -> PreprocessSpec:
        return self.card.preprocess

    def load(self, path: str | os.PathLike) -> np.ndarray:
        """Read a file and resize it to the model input (core decode + resize)."""
        return load_model_input(path, self.spec)

    def decide(self, probs: np.ndarray) -> list[Verdict]:
        """Probabilities → OK / NG / REVIEW with the card's thresholds."""
        return postprocess(probs, self.class_names, self.card.thresholds)
