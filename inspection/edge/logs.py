"""The one logging setup for every command: `inspection`'s warnings on stderr, prefixed; ONNX Runtime's C++ log
quiet (our own warning says what failed and which fallback was taken)."""

from __future__ import annotations

import logging
import sys


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at emit time (test runners and wrappers swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging() -> None:
    """Idempotent: one handler on the `inspection` logger (INFO), ORT's global logger at fatal only."""
    root = logging.getLogger("inspection")
    if not root.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    # ORT prints a red C++ error when a GPU provider library cannot load (no CUDA libs); real errors still raise.
    import onnxruntime as ort

    ort.set_default_logger_severity(4)  # 4 = fatal only: the provider-load failure is logged as an error (3)
