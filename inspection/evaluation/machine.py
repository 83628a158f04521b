"""Machine facts recorded beside every benchmark figure (which box, which GPU, which versions)."""

from __future__ import annotations

import os
import platform
import socket
from importlib import metadata


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """Host, CPU count, Python and package versions, and the CUDA device if torch sees one."""
    info = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "packages": {p: _version(p) for p in ("torch", "torchvision", "pytorch-lightning", "timm", "onnxruntime",
                                              "onnxruntime-gpu", "numpy", "opencv-python-headless")},
        "gpu": None,
    }
    try:
        import torch

        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            info["gpu"] = {"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                           "count": torch.cuda.device_count(), "cuda": torch.version.cuda}
    except ImportError:
        pass
    return info


def device_tag(info: dict) -> str:
    """Short file-name-safe label: 'cpu2' or the GPU name ('nvidia-h200')."""
    if info.get("gpu"):
        return info["gpu"]["name"].lower().replace(" ", "-").split("-80gb")[0][:40]
    return f"cpu{info.get('cpu_count')}"
