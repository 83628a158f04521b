"""inspection: visual defect inspection — data-centric training, ONNX export, torch-free edge runtime."""

__version__ = "0.1.0"
