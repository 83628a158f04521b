"""Service metrics in the Prometheus text exposition format (version 0.0.4), rendered by hand.

Four families are enough for a line-side service and need no client library: requests by route and status,
request latency (a histogram), results by verdict, and errors by kind; plus batch sizes and the queue depth.
Updated only on the event loop thread, or under the lock from the session thread.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import Counter

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """Cumulative buckets, sum and count, as Prometheus expects them."""

    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last slot is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str) -> list[str]:
        out, acc = [], 0
        for le, n in zip([*map(_num, self.buckets), "+Inf"], self.counts, strict=True):
            acc += n
            out.append(f'{name}_bucket{{le="{le}"}} {acc}')
        return out + [f"{name}_sum {_num(self.sum)}", f"{name}_count {self.count}"]


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _labels(**kv: str) -> str:
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in kv.items())
    return "{" + inner + "}"


class ServeMetrics:
    """What /metrics reports; `render()` is the response body."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()  # (route, status)
        self.latency = Histogram(LATENCY_BUCKETS)  # POST /v1/inspect, seconds, from first byte to response
        self.verdicts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()  # kind: decode, body_too_large, unsupported_media_type, auth, ...
        self.batch_images = Histogram(BATCH_BUCKETS)
        self.batch_seconds = Histogram(LATENCY_BUCKETS)
        self.queue_depth = lambda: 0  # set by the app: images waiting for the model
        self._lock = threading.Lock()

    def observe_batch(self, n: int, seconds: float) -> None:
        """Called from the session thread after each run."""
        with self._lock:
            self.batch_images.observe(n)
            self.batch_seconds.observe(seconds)

    def render(self) -> str:
        lines = ["# HELP inspection_requests_total HTTP requests by route and status code.",
                 "# TYPE inspection_requests_total counter"]
        lines += [f"inspection_requests_total{_labels(route=r, code=str(c))} {n}"
                  for (r, c), n in sorted(self.requests.items())]
        lines += ["# HELP inspection_request_duration_seconds Answered POST /v1/inspect latency, upload included.",
                  "# TYPE inspection_request_duration_seconds histogram",
                  *self.latency.lines("inspection_request_duration_seconds"),
                  "# HELP inspection_images_total Inspected images by verdict.",
                  "# TYPE inspection_images_total counter"]
        lines += [f"inspection_images_total{_labels(verdict=v)} {n}" for v, n in sorted(self.verdicts.items())]
        lines += ["# HELP inspection_errors_total Refused or failed requests by kind.",
                  "# TYPE inspection_errors_total counter"]
        lines += [f"inspection_errors_total{_labels(kind=k)} {n}" for k, n in sorted(self.errors.items())]
        with self._lock:
            lines += ["# HELP inspection_batch_images Images per ONNX Runtime run.",
                      "# TYPE inspection_batch_images histogram", *self.batch_images.lines("inspection_batch_images"),
                      "# HELP inspection_batch_duration_seconds Seconds per ONNX Runtime run.",
                      "# TYPE inspection_batch_duration_seconds histogram",
                      *self.batch_seconds.lines("inspection_batch_duration_seconds")]
        lines += ["# HELP inspection_queue_images Images waiting for the model.", "# TYPE inspection_queue_images gauge",
                  f"inspection_queue_images {self.queue_depth()}"]
        return "\n".join(lines) + "\n"
