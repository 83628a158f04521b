"""How much a busy Python thread slows a thread that issues torch calls, per GIL switch interval.

The torch engine's device thread gives up the GIL inside every torch call and must take it back after; while
the writer (CSV rows) or the readers' result thread runs Python, it waits up to one switch interval (Python's
default: 5 ms). This measures that mechanism on any machine (no GPU needed): a thread runs batches of 60 small
torch calls while the main thread either sleeps or runs pure Python. Writes benchmarks/results/gil_switch_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inspection.evaluation.machine import device_tag, machine_info  # noqa: E402


def batch_of_calls(a: torch.Tensor, calls: int) -> None:
    x = a
    for _ in range(calls):
        x = torch.mm(x, a) * 1e-3  # each call releases the GIL and takes it back


def busy_python(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(200))


def ms_per_batch(interval_s: float, main_busy: bool, batches: int, calls: int) -> float:
    sys.setswitchinterval(interval_s)
    a, times, done = torch.randn(160, 160), [], threading.Event()

    def device() -> None:
        for _ in range(batches):
            t = time.perf_counter()
            batch_of_calls(a, calls)
            times.append(time.perf_counter() - t)
        done.set()

    th = threading.Thread(target=device)
    th.start()
    while not done.is_set():
        busy_python(0.008) if main_busy else time.sleep(0.008)
    th.join()
    return 1000 * sum(times) / len(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=150)
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    a = ap.parse_args()
    torch.set_num_threads(1)
    default = sys.getswitchinterval()
    batch_of_calls(torch.randn(160, 160), a.calls)  # warm-up
    res: dict = {"machine": machine_info(), "calls_per_batch": a.calls, "batches": a.batches, "rounds": a.rounds,
                 "ms_per_batch": {}}
    settings = [(busy, interval) for busy in (False, True) for interval in (0.005, 0.001, 0.0002)]
    try:
        for _ in range(a.rounds):  # rounds interleaved: the convoy is sensitive to scheduling, so show its spread
            for busy, interval in settings:
                key = f"{'main_busy' if busy else 'main_idle'}_switch_{interval * 1000:g}ms"
                res["ms_per_batch"].setdefault(key, []).append(round(ms_per_batch(interval, busy, a.batches,
                                                                                  a.calls), 2))
                print(key, res["ms_per_batch"][key][-1], flush=True)
    finally:
        sys.setswitchinterval(default)
    m = {k: statistics.median(v) for k, v in res["ms_per_batch"].items()}
    res["median_slowdown_busy_vs_idle"] = {k: round(m[f"main_busy_switch_{k}"] / m[f"main_idle_switch_{k}"], 2)
                                           for k in ("5ms", "1ms", "0.2ms")}
    res["range_slowdown_busy_vs_idle"] = {
        k: [round(min(res["ms_per_batch"][f"main_busy_switch_{k}"]) / m[f"main_idle_switch_{k}"], 2),
            round(max(res["ms_per_batch"][f"main_busy_switch_{k}"]) / m[f"main_idle_switch_{k}"], 2)]
        for k in ("5ms", "1ms", "0.2ms")}
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"gil_switch_{device_tag(res['machine'])}.json"
    path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(f"wrote {path}\n" + json.dumps({k: v for k, v in res.items() if "slowdown" in k}))


if __name__ == "__main__":
    main()
