"""The service's container images: built and run where a Docker daemon answers, skipped with the reason elsewhere;
what every build relies on is checked everywhere (the files it copies, the extras, the command)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from serve_helpers import free_port, request
from test_defect_map_edge import MAP, _card, build_model

REPO = Path(__file__).resolve().parents[2]
IMAGES = {"Dockerfile": "[edge,serve]", "Dockerfile.cuda": "[edge-gpu,serve]"}


@pytest.mark.parametrize("name", IMAGES)
def test_dockerfile_installs_the_torch_free_service(name: str) -> None:
    text = (REPO / "docker" / name).read_text()
    assert f"pip install '.{IMAGES[name]}'" in text and "find_spec('torch') is not None" in text
    assert 'ENTRYPOINT ["python", "-m", "inspection.edge", "serve"]' in text and "USER inspect" in text
    for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for part in src.split():
            assert (REPO / part).exists(), f"{name} copies {part}, which does not exist"
    ignore = (REPO / ".dockerignore").read_text().split()
    assert {"!pyproject.toml", "!README.md", "!inspection/"} <= set(ignore)


def _docker_daemon() -> str | None:
    """None when a Docker daemon answers; else why not."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                       timeout=30)
    return None if r.returncode == 0 else f"no Docker daemon answers ({r.stderr.strip()[:120]})"


@pytest.mark.slow
def test_cpu_image_builds_and_serves(tmp_path: Path) -> None:
    why = _docker_daemon()
    if why:
        pytest.skip(f"{why}: the container build is tested only where Docker runs")
    tag = "inspection-serve:test"
    build = subprocess.run(["docker", "build", "-q", "-f", "docker/Dockerfile", "-t", tag, "."], cwd=REPO,
                           capture_output=True, text=True, timeout=1200)
    assert build.returncode == 0, build.stderr[-3000:]
    build_model(tmp_path / "model.onnx", _card(MAP))
    tmp_path.chmod(0o755)
    port = free_port()
    run = subprocess.run(["docker", "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8000", "-v",
                          f"{tmp_path}:/models:ro", tag], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    cid = run.stdout.strip()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if request(port, "GET", "/readyz", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        ok, png = cv2.imencode(".png", np.full((32, 32, 3), 10, np.uint8))  # dark: OK for the handmade model
        r = request(port, "POST", "/v1/inspect", png.tobytes(), {"Content-Type": "image/png"})
        assert r.status == 200 and r.json()[0]["verdict"] == "OK", r.body
    finally:
        stop = subprocess.run(["docker", "stop", "-t", "30", cid], capture_output=True, text=True, timeout=60)
    assert stop.returncode == 0, stop.stderr
