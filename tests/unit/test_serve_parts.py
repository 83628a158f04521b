"""The service's parts without a server: micro-batching, the Prometheus text, settings and the token file."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from inspection.core.errors import ConfigError, InspectionError
from inspection.edge.serve.batcher import MicroBatcher, QueueFull
from inspection.edge.serve.metrics import Histogram, ServeMetrics
from inspection.edge.serve.settings import ServeSettings, read_token


def _fake_model(calls: list[int]):
    """probs = [mean/255, 1 - mean/255] per image; records each run's batch size."""
    def run(x: np.ndarray):
        calls.append(len(x))
        m = x.reshape(len(x), -1).mean(axis=1) / 255
        return np.stack([m, 1 - m], axis=1).astype(np.float32), None
    return run


def _img(v: int) -> np.ndarray:
    return np.full((2, 2, 1), v, np.uint8)


def test_concurrent_requests_share_runs_and_get_their_own_outcomes() -> None:
    calls: list[int] = []

    async def main():
        b = MicroBatcher(_fake_model(calls), max_batch=4, max_wait_s=0.05, max_queue=64)
        b.start()
        outs = await asyncio.gather(*(b.submit([_img(v), _img(v + 1)]) for v in range(0, 20, 2)))
        await b.close()
        return outs

    outs = asyncio.run(main())
    for v, out in zip(range(0, 20, 2), outs, strict=True):
        assert [round(float(p[0]) * 255) for p, m in out] == [v, v + 1] and all(m is None for _, m in out)
    assert sum(calls) == 20 and max(calls) == 4 and len(calls) == 5  # two-image requests, four images per run


def test_a_request_larger_than_max_batch_runs_in_chunks() -> None:
    calls: list[int] = []

    async def main():
        b = MicroBatcher(_fake_model(calls), max_batch=3, max_wait_s=0.0, max_queue=64)
        b.start()
        out = await b.submit([_img(v) for v in range(7)])
        await b.close()
        return out

    out = asyncio.run(main())
    assert [round(float(p[0]) * 255) for p, _ in out] == list(range(7)) and calls == [3, 3, 1]


def test_full_queue_refuses_and_a_model_error_reaches_every_request() -> None:
    gate = threading.Event()

    def slow(x):
        gate.wait(5)
        raise RuntimeError("model broke")

    async def main():
        b = MicroBatcher(slow, max_batch=2, max_wait_s=0.0, max_queue=3)
        b.start()
        first = asyncio.ensure_future(b.submit([_img(1), _img(2)]))
        await asyncio.sleep(0.05)  # the first run holds the session thread
        second = asyncio.ensure_future(b.submit([_img(3), _img(4), _img(5)]))
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull):
            await b.submit([_img(6)])
        gate.set()
        results = await asyncio.gather(first, second, return_exceptions=True)
        await b.close()
        return results

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and "model broke" in str(r) for r in results)


def test_prometheus_text() -> None:
    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.5, 2.0, 0.1):
        h.observe(v)
    assert h.lines("x") == ['x_bucket{le="0.1"} 2', 'x_bucket{le="1"} 3', 'x_bucket{le="+Inf"} 4', "x_sum 2.65",
                            "x_count 4"]
    m = ServeMetrics()
    m.requests[("/v1/inspect", 200)] += 3
    m.verdicts["NG"] += 2
    m.errors['we"ird'] += 1
    text = m.render()
    assert 'inspection_requests_total{route="/v1/inspect",code="200"} 3' in text
    assert 'inspection_images_total{verdict="NG"} 2' in text and 'inspection_errors_total{kind="we\\"ird"} 1' in text
    assert text.count("# TYPE ") == 7 and text.endswith("\n")


def test_settings_and_token_file(tmp_path) -> None:
    assert ServeSettings().host == "127.0.0.1"  # loopback unless told otherwise
    with pytest.raises(ConfigError, match="--max-batch must be > 0.*--port must be 1..65535"):
        ServeSettings(max_batch=0, port=70000)
    with pytest.raises(ConfigError, match="--max-queue"):
        ServeSettings(max_queue=4, max_files=8)
    (tmp_path / "t").write_text("  " + "a" * 32 + "  \nsecond line\n")
    assert read_token(tmp_path / "t") == "a" * 32
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(InspectionError, match="empty: the token must be at least 16"):
        read_token(tmp_path / "empty")
    with pytest.raises(InspectionError, match="missing: cannot read the token file"):
        read_token(tmp_path / "missing")


def test_a_request_that_timed_out_in_the_queue_is_never_run() -> None:
    seen: list[int] = []
    gate = threading.Event()

    def run(x: np.ndarray):
        gate.wait(5)
        seen.extend(int(v) for v in x[:, 0, 0, 0])
        return np.zeros((len(x), 2), np.float32), None

    async def main():
        b = MicroBatcher(run, max_batch=1, max_wait_s=0.0, max_queue=8)
        b.start()
        first = asyncio.ensure_future(b.submit([_img(1)]))
        await asyncio.sleep(0.05)  # image 1 holds the session
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(b.submit([_img(2)]), 0.05)  # the client gave up while queued
        third = asyncio.ensure_future(b.submit([_img(3)]))
        gate.set()
        await asyncio.gather(first, third)
        await b.close()

    asyncio.run(main())
    assert seen == [1, 3]


def test_decoded_pixel_limit_covers_formats_without_a_parsed_header() -> None:
    import cv2

    from inspection.core.errors import ImageDecodeError
    from inspection.core.preprocess import PreprocessSpec, decode_model_input

    bmp = cv2.imencode(".bmp", np.zeros((300, 400, 3), np.uint8))[1].tobytes()
    spec = PreprocessSpec(8, 8, 3)
    assert decode_model_input(bmp, "ok.bmp", spec, max_pixels=120_000).shape == (8, 8, 3)
    with pytest.raises(ImageDecodeError, match=r"big.bmp: image too large \(400x300 pixels > 100000\)"):
        decode_model_input(bmp, "big.bmp", spec, max_pixels=100_000)
