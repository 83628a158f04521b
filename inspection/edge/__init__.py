"""Torch-free edge runtime: ONNX Runtime + numpy + OpenCV. Never import torch, lightning, hydra, pandas here."""

from inspection.core.results import ImageResult
from inspection.edge.engine import Inspector
from inspection.edge.inspector import OnnxInspector, card_from_metadata
from inspection.edge.providers import DeviceError, ProviderChoice, create_session, requested_providers
from inspection.edge.runner import RunSummary, run_inspection
from inspection.edge.sources import SourceError, expand_sources

__all__ = [
    "DeviceError",
    "ImageResult",
    "Inspector",
    "OnnxInspector",
    "ProviderChoice",
    "RunSummary",
    "SourceError",
    "card_from_metadata",
    "create_session",
    "expand_sources",
    "requested_providers",
    "run_inspection",
]
