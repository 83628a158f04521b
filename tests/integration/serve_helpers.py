"""Test helpers for `inspection serve`: a free loopback port, the real server in a subprocess, a tiny HTTP client."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"  # loopback only


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 30) -> Reply:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def multipart(files: list[tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """(body, content type) for files given as (filename, bytes, content type)."""
    boundary = uuid.uuid4().hex
    parts = []
    for i, (name, data, ctype) in enumerate(files):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file{i}"; filename="{name}"\r\n'
                     f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Server:
    """`python -m inspection.edge serve MODEL` on a free loopback port; stop() sends SIGTERM (graceful)."""

    def __init__(self, model: Path, *args: str, ready_timeout: float = 90, python: str = sys.executable,
                 cwd: Path = REPO, env: dict | None = None):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [python, "-m", "inspection.edge", "serve", str(model), "--host", HOST, "--port", str(self.port),
             "--device", "cpu", "--threads", "1", *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env if env is not None else {**os.environ, "PYTHONPATH": str(REPO)})
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                if request(self.port, "GET", "/readyz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.proc.kill()
        raise RuntimeError("server not ready in time")

    def alive(self) -> bool:
        return self.proc.poll() is None and request(self.port, "GET", "/healthz").status == 200

    def stop(self, timeout: float = 30) -> tuple[int, str]:
        """SIGTERM, wait; (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err
