"""The `inspect` command, shared by `inspection inspect` (typer) and `python -m inspection.edge` (argparse);
`python -m inspection.edge serve MODEL.onnx` hands over to the HTTP service (edge.serve.cli)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from inspection.core.errors import user_errors
from inspection.edge.engine import Inspector
from inspection.edge.inspector import DEFAULT_BATCH_SIZE, OnnxInspector
from inspection.edge.logs import configure_logging
from inspection.edge.providers import DEVICES
from inspection.edge.runner import Progress, RunSummary, fail_exit_code, parse_fail_on, run_inspection
from inspection.edge.sources import check_sources
from inspection.edge.writers import output_format


def inspect_command(open_engine: Callable[[], Inspector], sources: Sequence[str], out: str,
                    batch_size: int | None = None, workers: int | None = None, resume: bool = False,
                    overwrite: bool = False, fail_on: Sequence[str] = (), report: str | None = None, top_k: int = 3,
                    quiet: bool = False) -> int:
    """Run a batch inspection; return 0, or 1 for --fail-on matches. A bad setup raises InspectionError.

    `open_engine` loads the model only after the options and sources have been checked (fast feedback)."""
    configure_logging()
    output_format(out)
    parse_fail_on(fail_on)  # option and source errors surface before the model is even loaded
    check_sources(list(sources))
    inspector = open_engine()
    try:
        if not quiet:
            print(f"model: {inspector.describe()}", file=sys.stderr)
        summary = run_inspection(inspector, list(sources), out, batch_size=batch_size, workers=workers,
                                 top_k=top_k, resume=resume, overwrite=overwrite, progress=Progress(enabled=not quiet),
                                 finish=_report_writer(report, inspector), also_lock=report)
    except KeyboardInterrupt:  # rows are flushed per batch: nothing done is lost
        print(f"\ninterrupted: the rows written so far are in {out}; rerun with --resume to finish", file=sys.stderr)
        return 130
    finally:
        inspector.close()  # the torch engine's reader processes end with the run
    print(summary.to_text() + (f"\nreport: {report}" if report else ""), file=sys.stderr)
    return fail_exit_code(summary, fail_on)


def _report_writer(report: str | None, inspector: Inspector) -> Callable[[RunSummary], None] | None:
    """Writes the HTML report at the end of the run, inside its lock and before the done marker."""
    if not report:
        return None
    from inspection.edge.report_html import write_report  # cv2 thumbnails: only when asked

    return lambda summary: write_report(report, summary, model_info=inspector.describe())


def build_parser() -> argparse.ArgumentParser:
    """Same options as `inspection inspect`."""
    p = argparse.ArgumentParser(prog="python -m inspection.edge",
                                description="Inspect images with an exported model (ONNX Runtime only). "
                                            "`python -m inspection.edge serve MODEL.onnx --help`: the HTTP service.")
    p.add_argument("model", help="model.onnx written by `inspection export`")
    p.add_argument("sources", nargs="+", help="image files, folders (recursive), globs, or .txt lists of paths")
    p.add_argument("--out", required=True,
                   help="results.csv or results.jsonl (locked while the run works; <out>.done.json when finished)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--require-gpu", action="store_true", help="fail instead of warning when no GPU provider loads")
    p.add_argument("--batch-size", type=int, default=None, help=f"images per batch (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--workers", type=int, default=None, help="decode threads (default: min(8, CPUs))")
    p.add_argument("--resume", action="store_true", help="skip images already in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--fail-on", action="append", default=[], metavar="ng|review|error",
                   help="exit 1 when such rows exist (repeat or comma-separate)")
    p.add_argument("--report", default=None, help="write a self-contained HTML report here")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m inspection.edge`; a first argument `serve` starts the HTTP service instead."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from inspection.edge.serve.cli import main as serve_main

        return serve_main(argv[1:])
    a = build_parser().parse_args(argv)
    return inspect_command(lambda: OnnxInspector(a.model, device=a.device, require_gpu=a.require_gpu), a.sources,
                           a.out, batch_size=a.batch_size, workers=a.workers, resume=a.resume,
                           overwrite=a.overwrite, fail_on=a.fail_on, report=a.report, top_k=a.top_k, quiet=a.quiet)
