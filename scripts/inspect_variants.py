"""Torch-engine configurations timed side by side, with where the device thread's time goes (used by
bench_gpu_inspect.py; kept apart so the benchmark stays readable)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from inspection.edge.runner import Progress, run_inspection
from inspection.engines.torch_engine import TorchInspector


@dataclass(frozen=True)
class Variant:
    """One engine configuration."""

    gpu_decode: bool
    readers: str
    n: int  # reader threads or processes
    streams: int = 1
    share: float = 0.0  # share of JPEGs the readers decode on the CPU
    switch_ms: float | None = None  # the interpreter's GIL switch interval during the run (Python's default: 5)
    compile: str | None = None  # a torch.compile mode; "reduce-overhead" = CUDA graphs, fewer GIL round trips

    @property
    def name(self) -> str:
        return (f"{'nvjpeg' if self.gpu_decode else 'cpu_decode'}_{self.n}_{self.readers}_streams{self.streams}"
                + (f"_cpushare{self.share:g}" if self.share else "")
                + (f"_switch{self.switch_ms:g}ms" if self.switch_ms else "")
                + (f"_compile-{self.compile}" if self.compile else ""))


VARIANTS = [Variant(True, "threads", 2), Variant(True, "processes", 4), Variant(True, "processes", 4, switch_ms=0.5),
            Variant(True, "processes", 8), Variant(True, "processes", 8, streams=2),
            Variant(True, "processes", 8, share=0.25), Variant(True, "processes", 8, share=0.4),
            Variant(True, "processes", 12, share=0.4), Variant(True, "processes", 12, share=0.5),
            Variant(True, "processes", 12, share=0.4, switch_ms=0.5),
            Variant(True, "processes", 8, streams=2, share=0.4), Variant(False, "processes", 16),
            Variant(True, "processes", 4, compile="reduce-overhead"),
            Variant(True, "processes", 12, share=0.4, switch_ms=0.5, compile="reduce-overhead")]
SHM_VARIANTS = [Variant(True, "threads", 2), Variant(True, "processes", 8)]


def run_engine(engine, list_file: Path, out: Path, batch: int, workers: int | None) -> dict:
    s = run_inspection(engine, [str(list_file)], out, batch_size=batch, workers=workers,
                       progress=Progress(enabled=False), overwrite=True)
    return {"images": s.n_new, "errors": s.errors, "img_per_s": s.images_per_s, "engine": engine.describe()}


def time_device_phases(eng: TorchInspector) -> dict:
    """Wrap the engine's device-side steps to add up where its time goes (seconds, summed over batches).

    classify_s: the device thread's busy time; on_stream_s: the same plus its wait for the reads. Inside it:
    decode_s, the nvJPEG call, and decode_cpu_s, that thread's CPU time in it (near decode_s: the Huffman
    decoding ran on this CPU thread, not on the GPU's hardware decoder); network_launch_s; verdicts_s. The rest of
    classify_s is the copy back (waiting for the GPU), Python, and waits for the GIL.
    """
    acc = dict.fromkeys(("classify_s", "on_stream_s", "decode_s", "decode_cpu_s", "network_launch_s",
                         "verdicts_s"), 0.0)

    def timed(fn, key, cpu_key=None):
        def call(*args):
            t, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*args)
            finally:
                acc[key] += time.perf_counter() - t
                if cpu_key:
                    acc[cpu_key] += time.thread_time() - c
        return call

    eng._classify = timed(eng._classify, "classify_s")
    eng._classify_on_stream = timed(eng._classify_on_stream, "on_stream_s")
    eng._gpu_jpegs = timed(eng._gpu_jpegs, "decode_s", "decode_cpu_s")
    eng.predict_tensor = timed(eng.predict_tensor, "network_launch_s")
    eng.decide = timed(eng.decide, "verdicts_s")
    return acc


def engine_variants(ckpt: Path, list_file: Path, out: Path, batch: int, variants: list[Variant]) -> dict:
    """img/s per variant: `cold` is the first run (reader processes start inside it), `warm` the second, with the
    device thread's phases over the warm run's wall."""
    res = {}
    default_switch = sys.getswitchinterval()
    for v in variants:
        eng = TorchInspector(ckpt, device="auto", precision="fp16", gpu_decode=v.gpu_decode, streams=v.streams,
                             readers=v.readers, cpu_decode_share=v.share, compile=v.compile or False)
        # A thread that wants the GIL back waits up to one switch interval while another holds it (the writer,
        # the readers' result thread); the device thread takes it back after every torch call.
        sys.setswitchinterval(v.switch_ms / 1000 if v.switch_ms else default_switch)
        try:
            cold = run_engine(eng, list_file, out, batch, v.n)["img_per_s"]
            acc = time_device_phases(eng)
            t = time.perf_counter()
            warm = run_engine(eng, list_file, out, batch, v.n)["img_per_s"]
            res[v.name] = {"cold": cold, "warm": warm, "wall_s": time.perf_counter() - t,
                           **{k: round(x, 3) for k, x in acc.items()}}
        except Exception as e:  # one configuration failing (e.g. a compile mode) must not lose the others
            res[v.name] = {"error": f"{type(e).__name__}: {e}"}
        finally:
            sys.setswitchinterval(default_switch)
            eng.close()
        print(v.name, json.dumps(res[v.name]), flush=True)
    return res
