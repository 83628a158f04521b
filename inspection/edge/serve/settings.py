"""ServeSettings: everything the service is told at start, validated once (errors name the option)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from inspection.core.errors import ConfigError, InspectionError

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ServeSettings:
    """Limits and batching of one service; the defaults are safe on a line-side PC (loopback, bounded)."""

    host: str = LOOPBACK  # another address only when asked (--host 0.0.0.0 in a container)
    port: int = 8000
    token: str | None = None  # bearer token for /v1/* and /metrics (from --token-file); None: no auth
    max_body_bytes: int = 20 * 1024 * 1024  # one request's body, all its images together
    max_pixels: int = 64 * 1024 * 1024  # decoded pixels per image (decompression bombs)
    max_files: int = 64  # images per multipart request
    timeout_s: float = 10.0  # per request, body upload included (slow clients get 408)
    max_batch: int = 16  # images per session run
    max_wait_ms: float = 5.0  # how long the first queued image waits for company
    max_queue: int = 512  # images waiting for the model; beyond it: 503 (back-pressure, bounded memory)
    decode_workers: int = 2  # decode threads (OpenCV releases the GIL)
    top_k: int = 3
    log_jsonl: str | None = None  # every result appended here as an `inspect` JSONL row
    max_connections: int = 256  # uvicorn limit_concurrency: beyond it 503 before any work
    drain_s: float = 30.0  # graceful shutdown: in-flight requests get this long to finish

    def __post_init__(self) -> None:
        positive = {"--port": self.port, "--max-body-mb": self.max_body_bytes, "--max-pixels": self.max_pixels,
                    "--max-files": self.max_files, "--timeout": self.timeout_s, "--max-batch": self.max_batch,
                    "--max-queue": self.max_queue, "--decode-workers": self.decode_workers, "--top-k": self.top_k,
                    "--max-connections": self.max_connections}
        bad = [f"{k} must be > 0, got {v}" for k, v in positive.items() if v <= 0]
        if self.max_wait_ms < 0 or self.drain_s < 0:
            bad.append("--max-wait-ms and --drain must be >= 0")
        if not 0 < self.port < 65536:
            bad.append(f"--port must be 1..65535, got {self.port}")
        if self.max_queue < self.max_files:
            bad.append(f"--max-queue ({self.max_queue}) must hold one full request (--max-files {self.max_files})")
        if bad:
            raise ConfigError("serve: " + "; ".join(bad))


def read_token(path: str | os.PathLike) -> str:
    """The bearer token in a file (first line, stripped); an empty, missing or unreadable file is an error."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise InspectionError(f"{p}: cannot read the token file ({e.strerror or e})") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(token) < 16:
        raise InspectionError(f"{p}: the token must be at least 16 characters on the first line "
                              f"(found {len(token)}); e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`")
    return token
