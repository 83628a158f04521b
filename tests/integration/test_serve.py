"""`inspection serve` over real HTTP on loopback: rows equal `inspect`'s, a bad-request corpus answered with 4xx
while the server stays up, auth, metrics, the JSONL log, micro-batching and a graceful shutdown that drains."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from bad_images import jpeg_bytes, png_header_bomb
from serve_helpers import HOST, REPO, Server, multipart, request
from test_defect_map_edge import MAP, _card, build_model

from inspection.edge.writers import read_rows

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install '.[serve]')")
TOKEN = "s3cret-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("serve")
    model = build_model(root / "model.onnx", _card(MAP))
    imgs = root / "images"
    imgs.mkdir()
    dark = np.full((64, 48, 3), 10, np.uint8)
    spot = dark.copy()
    spot[:32, :24] = 250
    faint = dark.copy()
    faint[32:, 24:] = 138
    cv2.imwrite(str(imgs / "dark.png"), dark)
    cv2.imwrite(str(imgs / "spot.png"), spot)
    cv2.imwrite(str(imgs / "faint.png"), faint)
    (imgs / "dark2.jpg").write_bytes(jpeg_bytes(dark + 5))
    (root / "token").write_text(TOKEN + "\n")
    return {"root": root, "model": model, "images": imgs}


@pytest.fixture(scope="module")
def server(assets: dict):
    root = assets["root"]
    srv = Server(assets["model"], "--token-file", str(root / "token"), "--log-jsonl", str(root / "log.jsonl"),
                 "--timeout", "2", "--max-body-mb", "0.25", "--max-pixels", "1000000", "--max-files", "4",
                 "--max-wait-ms", "30", "--top-k", "2")
    yield srv
    code, err = srv.stop()
    assert code == 0 and "serve: stopped" in err, err


def _inspect_rows(assets: dict, tmp: Path) -> dict[str, dict]:
    out = tmp / "inspect.jsonl"
    proc = subprocess.run([sys.executable, "-m", "inspection.edge", str(assets["model"]), str(assets["images"]),
                           "--out", str(out), "--device", "cpu", "--top-k", "2", "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {Path(r["path"]).name: r for r in read_rows(out)}


def _post(port: int, path: Path, headers: dict | None = None) -> list[dict]:
    ctype = "image/jpeg" if path.suffix == ".jpg" else "image/png"
    r = request(port, "POST", f"/v1/inspect?name={path.name}", path.read_bytes(),
                {"Content-Type": ctype, **AUTH, **(headers or {})})
    assert r.status == 200, r.body
    return r.json()


def _metrics(port: int) -> str:
    r = request(port, "GET", "/metrics", headers=AUTH)
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return r.body.decode()



def _value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_rows_equal_inspect_rows_raw_and_multipart(server: Server, assets: dict, tmp_path: Path) -> None:
    want = _inspect_rows(assets, tmp_path)
    paths = sorted(assets["images"].iterdir())
    raw = [row for p in paths for row in _post(server.port, p)]
    body, ctype = multipart([(p.name, p.read_bytes(), "image/png") for p in paths])
    r = request(server.port, "POST", "/v1/inspect", body, {"Content-Type": ctype, **AUTH})
    assert r.status == 200, r.body
    multi = r.json()
    assert [row["path"] for row in multi] == [p.name for p in paths]  # one row per part, in order
    for rows in (raw, multi):
        for row in rows:
            ref = dict(want[row["path"]], path=row["path"])
            assert row.pop("card_version") == 1
            assert row == ref  # every field of the `inspect` row: verdict, class, p_ng, top-k, defect map, hash
    assert {r["verdict"] for r in raw} == {"OK", "NG", "REVIEW"}


def test_model_health_and_ready(server: Server, assets: dict) -> None:
    assert request(server.port, "GET", "/healthz").status == 200
    assert request(server.port, "GET", "/readyz").json() == {"ready": True}
    r = request(server.port, "GET", "/v1/model", headers=AUTH)
    info = r.json()
    assert r.status == 200 and info["card"] == _card(MAP) and info["serve"]["auth"] is True
    assert info["serve"]["max_files"] == 4 and info["runs_on"].startswith("cpu")


def _slow_client(port: int) -> int:
    """Declare 1000 bytes, send 10, then stall past the server's 2 s timeout: 408 expected."""
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.sendall(f"POST /v1/inspect HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n"
                  f"Authorization: Bearer {TOKEN}\r\n\r\n".encode() + b"\x89PNG\r\n\x1a\n00")
        data = s.recv(4096)
    return int(data.split(b" ", 2)[1])


def test_bad_request_corpus_gets_4xx_and_the_server_stays_up(server: Server, assets: dict) -> None:
    good = (assets["images"] / "dark2.jpg").read_bytes()
    png, jpg = {"Content-Type": "image/png", **AUTH}, {"Content-Type": "image/jpeg", **AUTH}
    too_many, too_many_type = multipart([(f"{i}.jpg", good, "image/jpeg") for i in range(5)])
    before = _metrics(server.port)
    cases = {  # name: (status, kind, reply, words the error must contain)
        "truncated": (422, "decode", request(server.port, "POST", "/v1/inspect?name=cut.jpg", good[:200], jpg),
                      "cut.jpg: truncated JPEG"),
        "not an image": (422, "decode", request(server.port, "POST", "/v1/inspect", b"hello world", png),
                         "not an image"),
        "pixel bomb": (422, "decode", request(server.port, "POST", "/v1/inspect", png_header_bomb(), png),
                       "image too large"),
        "huge body": (413, "body_too_large", request(server.port, "POST", "/v1/inspect", b"\0" * 300_000, png),
                      "exceeds the limit"),
        "huge chunked body": (413, "body_too_large", request(server.port, "POST", "/v1/inspect",
                                                             iter([b"\0" * 100_000] * 3),
                                                             png),  # no Content-Length: chunked
                              "exceeds the limit"),
        "wrong content type": (415, "unsupported_media_type",
                               request(server.port, "POST", "/v1/inspect", good, {"Content-Type": "text/plain", **AUTH}),
                               "text/plain"),
        "empty body": (400, "empty_body", request(server.port, "POST", "/v1/inspect", b"", png), "empty"),
        "too many files": (400, "bad_multipart", request(server.port, "POST", "/v1/inspect", too_many,
                                                         {"Content-Type": too_many_type, **AUTH}), "Too many files"),
        "bad top_k": (400, "bad_request", request(server.port, "POST", "/v1/inspect?top_k=zero", good, jpg),
                      "top_k"),
        "missing token": (401, "auth", request(server.port, "POST", "/v1/inspect", good,
                                               {"Content-Type": "image/jpeg"}), "missing bearer token"),
        "wrong token": (401, "auth", request(server.port, "POST", "/v1/inspect", good,
                                             {"Content-Type": "image/jpeg", "Authorization": "Bearer nope"}),
                        "wrong bearer token"),
        "metrics without token": (401, "auth", request(server.port, "GET", "/metrics"), "bearer"),
    }
    for name, (status, kind, reply, words) in cases.items():
        assert reply.status == status, (name, reply.status, reply.body)
        body = reply.json()
        assert body["kind"] == kind and words in body["error"], (name, body)
        assert server.alive(), name
    assert _slow_client(server.port) == 408
    assert server.alive()
    after = _metrics(server.port)
    for kind, n in {"decode": 3, "body_too_large": 2, "auth": 3, "timeout": 1, "unsupported_media_type": 1}.items():
        series = f'inspection_errors_total{{kind="{kind}"}}'
        assert _value(after, series) - _value(before, series) == n, kind
    assert _post(server.port, assets["images"] / "spot.png")[0]["verdict"] == "NG"  # still serving


def test_concurrent_requests_are_micro_batched_and_counted(server: Server, assets: dict) -> None:
    before = _metrics(server.port)
    spot = assets["images"] / "spot.png"
    with ThreadPoolExecutor(16) as pool:
        rows = list(pool.map(lambda _: _post(server.port, spot), range(32)))
    assert all(r[0]["verdict"] == "NG" for r in rows)
    after = _metrics(server.port)
    delta = {s: _value(after, s) - _value(before, s) for s in (
        'inspection_images_total{verdict="NG"}', "inspection_batch_images_count", "inspection_batch_images_sum",
        'inspection_requests_total{route="/v1/inspect",code="200"}', "inspection_request_duration_seconds_count")}
    assert delta['inspection_images_total{verdict="NG"}'] == 32 and delta["inspection_batch_images_sum"] == 32
    assert delta['inspection_requests_total{route="/v1/inspect",code="200"}'] == 32
    assert delta["inspection_request_duration_seconds_count"] == 32
    assert delta["inspection_batch_images_count"] < 32  # several requests shared a session run


def test_jsonl_log_has_inspect_rows(server: Server, assets: dict) -> None:
    rows = _post(server.port, assets["images"] / "faint.png")
    time.sleep(0.1)
    logged = list(read_rows(assets["root"] / "log.jsonl"))
    assert logged and logged[-1] == {k: v for k, v in rows[0].items() if k != "card_version"}


def test_graceful_shutdown_finishes_in_flight_requests(assets: dict, tmp_path: Path) -> None:
    srv = Server(assets["model"], "--max-wait-ms", "1500", "--max-batch", "8", "--log-jsonl",
                 str(tmp_path / "log.jsonl"))
    replies: list = []
    body = (assets["images"] / "spot.png").read_bytes()
    t = threading.Thread(target=lambda: replies.append(
        request(srv.port, "POST", "/v1/inspect?name=late.png", body, {"Content-Type": "image/png"})))
    t.start()
    time.sleep(0.5)  # the request now waits in the batcher for company
    code, err = srv.stop()
    t.join(30)
    assert code == 0 and "serve: stopped" in err, err
    assert replies and replies[0].status == 200 and replies[0].json()[0]["path"] == "late.png"
    assert [r["path"] for r in read_rows(tmp_path / "log.jsonl")] == ["late.png"]


def test_bad_setup_exits_2_naming_the_problem(assets: dict, tmp_path: Path) -> None:
    (tmp_path / "short").write_text("abc\n")
    for args, words in [((str(tmp_path / "none.onnx"),), "model file not found"),
                        ((str(assets["model"]), "--token-file", str(tmp_path / "short")), "at least 16 characters"),
                        ((str(assets["model"]), "--log-jsonl", "x.csv"), "must end in .jsonl"),
                        ((str(assets["model"]), "--max-batch", "0"), "--max-batch must be > 0")]:
        proc = subprocess.run([sys.executable, "-m", "inspection.edge", "serve", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and words in proc.stderr and proc.stderr.startswith("error: "), proc.stderr


@pytest.mark.slow
def test_the_edge_install_serves_without_torch(assets: dict, tmp_path: Path) -> None:
    from test_edge_install import _edge_venv

    py = _edge_venv()  # a fresh venv with `pip install '.[edge,serve]'` only
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = "import importlib.util as u; print([m for m in ('torch', 'typer') if u.find_spec(m)])"
    assert subprocess.run([str(py), "-c", probe], env=env, capture_output=True, text=True).stdout.strip() == "[]"
    srv = Server(assets["model"], python=str(py), cwd=tmp_path, env=env)
    try:
        body = (assets["images"] / "spot.png").read_bytes()
        r = request(srv.port, "POST", "/v1/inspect?name=spot.png", body, {"Content-Type": "image/png"})
        assert r.status == 200 and r.json()[0]["verdict"] == "NG", r.body
    finally:
        code, err = srv.stop()
    assert code == 0, err


def test_main_cli_serve_is_the_same_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "inspection.cli.main", "serve", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: inspection serve") and "--log-jsonl" in proc.stdout
