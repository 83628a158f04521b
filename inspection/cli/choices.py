"""Option choices shared by several verbs, as Enums so typer checks them and `--help` lists them."""

from __future__ import annotations

from enum import Enum


class Device(str, Enum):
    """ONNX Runtime device choices (edge.providers.DEVICES)."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    tensorrt = "tensorrt"


class Precision(str, Enum):
    """Export precisions."""

    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"


class TorchPrecision(str, Enum):
    """Torch engine precisions on CUDA (the CPU runs fp32)."""

    fp16 = "fp16"
    bf16 = "bf16"
    fp32 = "fp32"


class Readers(str, Enum):
    """How the torch engine reads files."""

    auto = "auto"
    threads = "threads"
    processes = "processes"
