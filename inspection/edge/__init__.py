"""Torch-free edge runtime: ONNX Runtime + numpy + OpenCV. Never import torch, lightning, hydra, pandas here."""

from inspection.edge.inspector import OnnxInspector, card_from_metadata
from inspection.edge.providers import DeviceError, ProviderChoice, create_session, requested_providers
from inspection.edge.runner import ImageResult, RunSummary, iter_results, run_inspection
from inspection.edge.sources import SourceError, expand_sources

__all__ = [
    "DeviceError",
    "ImageResult",
    "OnnxInspector",
    "ProviderChoice",
    "RunSummary",
    "SourceError",
    "card_from_metadata",
    "create_session",
    "expand_sources",
    "iter_results",
    "requested_providers",
    "run_inspection",
]
