"""`python -m inspection.edge serve MODEL.onnx` (also `inspection serve`): load the model, then run uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from inspection.core.errors import InspectionError, user_errors
from inspection.edge.logs import configure_logging
from inspection.edge.providers import DEVICES
from inspection.edge.serve.settings import ServeSettings, read_token

log = logging.getLogger("inspection.edge")
D = ServeSettings()  # the defaults, shown in --help


def build_parser(prog: str = "python -m inspection.edge serve") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Serve an exported model over HTTP: POST images to "
                                "/v1/inspect, get one `inspect` row per image. Torch-free (pip install '.[edge,serve]').")
    p.add_argument("model", help="model.onnx written by `inspection export`")
    p.add_argument("--host", default=D.host, help=f"bind address (default {D.host}: this machine only; "
                   "0.0.0.0 to accept the line's network, with --token-file)")
    p.add_argument("--port", type=int, default=D.port)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--require-gpu", action="store_true", help="fail instead of warning when no GPU provider loads")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: the CPUs)")
    p.add_argument("--token-file", default=None, help="require `Authorization: Bearer <token>` (first line of the "
                   "file) on /v1/* and /metrics")
    p.add_argument("--max-body-mb", type=float, default=D.max_body_bytes / 2**20, help="request body limit")
    p.add_argument("--max-pixels", type=int, default=D.max_pixels, help="decoded pixels per image limit")
    p.add_argument("--max-files", type=int, default=D.max_files, help="images per multipart request")
    p.add_argument("--timeout", type=float, default=D.timeout_s, help="seconds per request, upload included")
    p.add_argument("--max-batch", type=int, default=D.max_batch, help="images per ONNX Runtime run")
    p.add_argument("--max-wait-ms", type=float, default=D.max_wait_ms, help="how long a batch waits to fill")
    p.add_argument("--max-queue", type=int, default=D.max_queue, help="images waiting; beyond: 503")
    p.add_argument("--decode-workers", type=int, default=D.decode_workers, help="image decode threads")
    p.add_argument("--max-connections", type=int, default=D.max_connections, help="open connections; beyond: 503")
    p.add_argument("--top-k", type=int, default=D.top_k, help="classes per row (?top_k= per request)")
    p.add_argument("--log-jsonl", default=None, help="append every result here as an `inspect` JSONL row")
    p.add_argument("--drain", type=float, default=D.drain_s, help="seconds in-flight requests get at shutdown")
    return p


def settings_from_args(a: argparse.Namespace) -> ServeSettings:
    """Parsed options → ServeSettings (validated), the token read from its file."""
    if a.log_jsonl and Path(a.log_jsonl).suffix.lower() != ".jsonl":
        raise InspectionError(f"{a.log_jsonl}: --log-jsonl must end in .jsonl")
    return ServeSettings(host=a.host, port=a.port, token=read_token(a.token_file) if a.token_file else None,
                         max_body_bytes=int(a.max_body_mb * 2**20), max_pixels=a.max_pixels, max_files=a.max_files,
                         timeout_s=a.timeout, max_batch=a.max_batch, max_wait_ms=a.max_wait_ms,
                         max_queue=a.max_queue, decode_workers=a.decode_workers, top_k=a.top_k,
                         log_jsonl=a.log_jsonl, max_connections=a.max_connections, drain_s=a.drain)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(a: argparse.Namespace) -> None:
    """Check everything, load and warm the model, serve until SIGINT/SIGTERM (then drain and exit)."""
    settings = settings_from_args(a)
    try:
        import uvicorn

        from inspection.edge.serve.app import create_app
    except ModuleNotFoundError as e:
        raise InspectionError(f"serving needs the `serve` extra (pip install '.[edge,serve]'; missing: {e.name})") \
            from None
    from inspection.edge.inspector import OnnxInspector

    inspector = OnnxInspector(a.model, device=a.device, require_gpu=a.require_gpu, threads=a.threads)
    if not _is_loopback(settings.host) and settings.token is None:
        log.warning("serving on %s without --token-file: anyone on that network can call the model", settings.host)
    app = create_app(inspector, settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                            limit_concurrency=settings.max_connections, timeout_graceful_shutdown=settings.drain_s,
                            timeout_keep_alive=5, lifespan="on")
    print(f"serving {inspector.describe()} on http://{settings.host}:{settings.port} "
          f"(POST /v1/inspect; auth {'on' if settings.token else 'off'})", file=sys.stderr, flush=True)
    # uvicorn stops on SIGINT/SIGTERM (no new connections, in-flight requests finish, then the lifespan stop drains
    # the batcher and closes the log), then re-raises the signal with the handler it found: a quiet one here, so
    # a graceful stop exits 0 (what systemd and `docker stop` expect) instead of dying by the signal.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    uvicorn.Server(config).run()
    print("serve: stopped", file=sys.stderr, flush=True)


@user_errors
def main(argv: Sequence[str] | None = None, prog: str = "python -m inspection.edge serve") -> int:
    """Entry point of `python -m inspection.edge serve` and `inspection serve`."""
    configure_logging()
    serve(build_parser(prog).parse_args(argv))
    return 0
