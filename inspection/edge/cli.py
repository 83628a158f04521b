"""The `inspect` command, shared by `inspection inspect` (typer) and `python -m inspection.edge` (argparse)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from inspection.core.errors import InspectionError
from inspection.edge.inspector import OnnxInspector
from inspection.edge.providers import DEVICES
from inspection.edge.runner import Progress, fail_exit_code, parse_fail_on, run_inspection
from inspection.edge.sources import check_sources
from inspection.edge.writers import output_format

EXIT_RUN_FAILED = 2


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at emit time (test runners and wrappers swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging() -> None:
    """Warnings (e.g. a GPU provider that did not load) go to stderr, prefixed so they stand out."""
    root = logging.getLogger("inspection")
    if not root.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    # ORT's global logger prints a red C++ error when a GPU provider library cannot load (no CUDA libs); our own
    # warning says the same plainly, with the fallback taken. Real errors still raise as exceptions.
    import onnxruntime as ort

    ort.set_default_logger_severity(4)  # 4 = fatal only: the provider-load failure is logged as an error (3)


def inspect_command(model: str, sources: Sequence[str], out: str, device: str = "auto", require_gpu: bool = False,
                    batch_size: int = 32, workers: int | None = None, resume: bool = False, overwrite: bool = False,
                    fail_on: Sequence[str] = (), report: str | None = None, top_k: int = 3,
                    quiet: bool = False, make_inspector: Callable[[], Any] | None = None) -> int:
    """Run a batch inspection and return the process exit code (0, 1 for --fail-on matches, 2 for failure).

    `make_inspector` swaps in another engine with OnnxInspector's interface (the torch GPU engine).
    """
    configure_logging()
    try:
        output_format(out)
        parse_fail_on(fail_on)  # option and source errors surface before the model is even loaded
        check_sources(list(sources))
        inspector = make_inspector() if make_inspector else OnnxInspector(model, device=device, require_gpu=require_gpu)
        if not quiet:
            print(f"model: {inspector.describe()}", file=sys.stderr)
        try:
            summary = run_inspection(inspector, list(sources), out, batch_size=batch_size, workers=workers,
                                     top_k=top_k, resume=resume, overwrite=overwrite,
                                     progress=Progress(enabled=not quiet))
        finally:
            getattr(inspector, "close", lambda: None)()  # the torch engine's reader processes end with the run
        if report:
            from inspection.edge.report_html import write_report

            write_report(report, summary, model_info=inspector.describe())
        print(summary.to_text() + (f"\nreport: {report}" if report else ""), file=sys.stderr)
        return fail_exit_code(summary, fail_on)
    except InspectionError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except KeyboardInterrupt:  # rows are flushed per batch: nothing done is lost
        print(f"\ninterrupted: the rows written so far are in {out}; rerun with --resume to finish", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """Same options as `inspection inspect`."""
    p = argparse.ArgumentParser(prog="python -m inspection.edge",
                                description="Inspect images with an exported model (ONNX Runtime only).")
    p.add_argument("model", help="model.onnx written by `inspection export`")
    p.add_argument("sources", nargs="+", help="image files, folders (recursive), globs, or .txt lists of paths")
    p.add_argument("--out", required=True, help="results.csv or results.jsonl")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--require-gpu", action="store_true", help="fail instead of warning when no GPU provider loads")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=None, help="decode threads (default: min(8, CPUs))")
    p.add_argument("--resume", action="store_true", help="skip images already in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--fail-on", action="append", default=[], metavar="ng|review|error",
                   help="exit 1 when such rows exist (repeat or comma-separate)")
    p.add_argument("--report", default=None, help="write a self-contained HTML report here")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m inspection.edge`."""
    a = build_parser().parse_args(argv)
    return inspect_command(a.model, a.sources, a.out, device=a.device, require_gpu=a.require_gpu,
                           batch_size=a.batch_size, workers=a.workers, resume=a.resume, overwrite=a.overwrite,
                           fail_on=a.fail_on, report=a.report, top_k=a.top_k, quiet=a.quiet)
