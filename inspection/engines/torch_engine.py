"""Torch inspection engine for GPU servers: nvJPEG batch decode on the GPU, fp16 + channels_last, optional compile.

An `edge.engine.Inspector` like edge.OnnxInspector, so the edge batch runner, writers, resume and report work
unchanged. Non-JPEG files and every file on a CPU-only machine go
through the shared core decode + resize; JPEGs at the model's size are decoded straight into GPU memory.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from inspection.core.errors import ImageDecodeError, InspectionError
from inspection.core.file_chunks import FileChunk, read_chunk
from inspection.core.files import file_sha256
from inspection.core.model_card import ModelCard
from inspection.core.preprocess import decode_model_input
from inspection.core.results import ImageResult
from inspection.edge.engine import CardBacked
from inspection.models.checkpoint import load_checkpoint
from inspection.models.normalize import Normalize
from inspection.models.segdec import MAP_CARD, has_defect_map

READERS = ("auto", "threads", "processes")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DEFAULT_BATCH_SIZE = 256  # the batch its H200 throughput was measured at (benchmarks/results/inspect_*.json)
log = logging.getLogger(__name__)


class TorchInspector(CardBacked):
    """A checkpoint (model.pt) run by torch; `device` cuda or cpu; `precision` fp32 | fp16 | bf16; `compile` True
    or a torch.compile mode ("reduce-overhead": CUDA graphs, one launch per batch instead of one per layer)."""

    def __init__(self, checkpoint: str | os.PathLike, device: str = "auto", precision: str = "fp16",
                 compile: bool | str = False, gpu_decode: bool = True, require_gpu: bool = False,
                 streams: int | None = None, readers: str = "auto", cpu_decode_share: float = 0.0):
        if not 0.0 <= cpu_decode_share <= 1.0:
            raise InspectionError(f"cpu_decode_share must be within [0, 1], got {cpu_decode_share}")
        if readers not in READERS:
            raise InspectionError(f"readers must be one of {', '.join(READERS)}, got {readers!r}")
        if precision not in PRECISIONS:
            raise InspectionError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        p = Path(checkpoint)
        want_cuda = device in ("cuda", "auto")
        if want_cuda and not torch.cuda.is_available():
            if device == "cuda" or require_gpu:
                msg = f"--engine torch --device {device}: CUDA is not available (torch {torch.__version__})"
                if require_gpu:
                    raise InspectionError(msg)
                log.warning("%s; running on CPU", msg)
        self.device = torch.device("cuda" if want_cuda and torch.cuda.is_available() else "cpu")
        model = load_checkpoint(p)  # CheckpointError names the file and the problem
        self.path = p
        on_gpu = self.device.type == "cuda"
        self.card = ModelCard(class_names=list(model.class_names), preprocess=model.spec, thresholds=model.thresholds,
                              backbone=model.backbone, precision=precision if on_gpu else "fp32",
                              dataset=dict(model.extra.get("dataset") or {}),
                              lineage=dict(model.extra.get("lineage") or {}),
                              defect_map=dict(MAP_CARD) if has_defect_map(model.net) else {})
        self.model_hash = file_sha256(p)[:12]
        self.dtype = PRECISIONS[precision] if on_gpu else torch.float32
        net = model.net.to(self.device, dtype=self.dtype).eval()
        self.norm = Normalize(model.spec, channels_last=on_gpu).to(self.device)
        if on_gpu:
            net = net.to(memory_format=torch.channels_last)
        # default mode unless told: compiles in seconds, not minutes
        self.net = torch.compile(net, mode=compile if isinstance(compile, str) else None) if compile else net
        self.gpu_decode = gpu_decode and on_gpu
        # Batches in flight at once, each on its own CUDA stream (one decodes while another runs the network).
        # Default 1: on the H200 box 2 streams measured within noise of 1 (12.3k vs 12.1k img/s with reader
        # processes; benchmarks/results/inspect_*.json): torchvision's nvJPEG decoder serves one call at a time.
        self.streams = max(1, streams) if streams else 1
        # auto: reader processes where nvJPEG decodes (reader threads hold the GIL the decoding thread needs:
        # on the H200 box 4 processes measured 12.1k img/s vs 7.7k with 2 threads), threads otherwise.
        self.readers = readers if readers != "auto" else ("processes" if self.gpu_decode else "threads")
        self.cpu_decode_share = cpu_decode_share if self.gpu_decode else 0.0
        self._pool: Executor | None = None  # reader pool, kept across runs (processes take a moment to start)
        self._pool_size = 0
        self._local = threading.local()
        self._runs_on = (f"torch {self.device.type} {precision if on_gpu else 'fp32'}"
                         f"{' compiled' if compile else ''}{f' {compile}' if isinstance(compile, str) else ''}"
                         f"{' nvjpeg' if self.gpu_decode else ''}"
                         f"{f' {self.streams} streams' if self.streams > 1 else ''}"
                         f"{' reader processes' if self.readers == 'processes' else ''}"
                         f"{f' cpu decode share {self.cpu_decode_share:g}' if self.cpu_decode_share else ''}")

    @torch.inference_mode()
    def predict_tensor(self, x_u8_nhwc: torch.Tensor) -> torch.Tensor:
        return self.predict_tensor_with_map(x_u8_nhwc)[0]

    @torch.inference_mode()
    def predict_tensor_with_map(self, x_u8_nhwc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(probabilities [N, C], defect maps [N, h, w] or None), as the exported graph's two outputs."""
        x = self.norm(x_u8_nhwc.to(self.device, non_blocking=True)).to(self.dtype)
        if not self.card.defect_map:
            return torch.softmax(self.net(x).float(), dim=1), None
        logits, map_logits = self.net(x, with_map=True)
        return torch.softmax(logits.float(), dim=1), torch.sigmoid(map_logits.float())[:, 0]

    def predict(self, batch_u8_nhwc: np.ndarray) -> np.ndarray:
        if len(batch_u8_nhwc) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        return self.predict_tensor(torch.from_numpy(np.ascontiguousarray(batch_u8_nhwc))).cpu().numpy()

    def describe(self) -> str:
        return f"{self.path.name} [{self.model_hash}] on {self.runs_on()}"

    def runs_on(self) -> str:
        return self._runs_on

    def _gpu_jpegs(self, datas: list[torch.Tensor]) -> torch.Tensor | None:
        """nvJPEG batch decode → uint8 NHWC at the model size, or None when this batch needs the CPU path."""
        from torchvision.io import ImageReadMode, decode_jpeg

        mode = ImageReadMode.GRAY if self.spec.channels == 1 else ImageReadMode.RGB
        try:
            imgs = decode_jpeg(datas, mode=mode, device=self.device)
        except RuntimeError:
            return None  # a corrupt file in the batch: let the CPU path report it per image
        out = []
        for im in imgs:
            if im.shape[1:] != (self.spec.height, self.spec.width):
                if self.spec.resize != "stretch":
                    return None
                # Antialiased bilinear approximates cv2 INTER_AREA; the parity check measures the gap.
                im = F.interpolate(im[None].float(), (self.spec.height, self.spec.width), mode="bilinear",
                                   antialias=True, align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
            out.append(im)
        return torch.stack(out).permute(0, 2, 3, 1)

    def default_workers(self) -> int:
        """Reader threads or processes when the caller names none."""
        cpus = os.cpu_count() or 1
        if self.readers == "processes":
            return max(1, min(4, cpus))  # 4 measured best on the H200 box (8 and 16: no faster)
        # Reading is mostly Python under the GIL, so reader threads contend; CPU decoding releases the GIL
        # (OpenCV), so that path gets more threads.
        return 2 if self.gpu_decode else min(16, cpus)

    def _reader_pool(self, n: int) -> Executor:
        if self._pool is None or self._pool_size != n:
            self.close()
            if self.readers == "processes":
                # spawn, not fork: this process holds CUDA and threads, which a fork would copy half-made. The
                # children import the caller's main module and the torch-free core (inspection.core.file_chunks).
                self._pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))
            else:
                self._pool = ThreadPoolExecutor(n, thread_name_prefix="read")
            self._pool_size = n
        return self._pool

    def close(self) -> None:
        """Stop the reader threads or processes (they are otherwise kept for the next run)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def iter_results(self, paths: Iterable[str], batch_size: int | None = None, workers: int | None = None,
                     prefetch: int = 2) -> Iterator[list[ImageResult]]:
        """Read files in reader threads or processes; decode (nvJPEG for JPEGs) and classify up to `streams`
        batches concurrently.

        Results come back in input order; at most prefetch + streams - 1 batches are read ahead (bounded memory).
        Each batch is split over the readers, so one batch's files are read in parallel.
        """
        batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
        if batch_size < 1:
            raise InspectionError(f"batch size must be >= 1, got {batch_size}")
        it = iter(paths)
        n = max(1, workers or self.default_workers())
        part = max(8, -(-batch_size // n))
        read = partial(read_chunk, spec=self.spec, keep_jpeg=self.gpu_decode, cpu_share=self.cpu_decode_share)
        readers = self._reader_pool(n)
        with ThreadPoolExecutor(max_workers=self.streams, thread_name_prefix="device") as device_workers:
            pending: deque = deque()

            def submit() -> None:
                batch = list(islice(it, batch_size))
                if batch:
                    # starts reading (and CPU decoding) now; the device worker waits for it
                    reads = readers.map(read, [batch[i : i + part] for i in range(0, len(batch), part)])
                    pending.append(device_workers.submit(self._classify_on_stream, reads))

            for _ in range(max(1, prefetch) + self.streams - 1):
                submit()
            while pending:
                try:
                    done = pending.popleft().result()
                except BrokenProcessPool as e:
                    self.close()
                    raise InspectionError(f"a reader process failed ({e}); if this runs from a script, guard its "
                                          "entry with `if __name__ == '__main__':`, or use readers='threads'") from e
                submit()
                yield done

    def _classify_on_stream(self, reads: Iterable[FileChunk]) -> list[ImageResult]:
        chunk = FileChunk.concat(reads)
        if self.device.type != "cuda":
            return self._classify(chunk)
        stream = getattr(self._local, "stream", None)
        if stream is None:  # one stream per device worker thread, reused for every batch it handles
            stream = self._local.stream = torch.cuda.Stream(device=self.device)
        with torch.cuda.stream(stream):
            return self._classify(chunk)

    def _classify(self, chunk: FileChunk) -> list[ImageResult]:
        results = [ImageResult(p, error=e) for p, e in zip(chunk.paths, chunk.errors, strict=True)]
        jpeg_idx = [i for i, d in enumerate(chunk.data) if d is not None]
        cpu_idx = [i for i, px in enumerate(chunk.pixels) if px is not None]
        tensors, slots = [], []
        if jpeg_idx:
            batch = self._gpu_jpegs([torch.frombuffer(bytearray(chunk.data[i]), dtype=torch.uint8) for i in jpeg_idx])
            if batch is None:  # a corrupt JPEG in the batch: decode these on the CPU, each error reported per file
                for i in jpeg_idx:
                    try:
                        chunk.pixels[i] = decode_model_input(chunk.data[i], chunk.paths[i], self.spec)
                        cpu_idx.append(i)
                    except ImageDecodeError as e:
                        results[i].error = e.reason
            else:
                tensors.append(batch)
                slots += jpeg_idx
        if cpu_idx:
            cpu_idx.sort()
            tensors.append(torch.from_numpy(np.stack([chunk.pixels[i] for i in cpu_idx])).to(self.device))
            slots += cpu_idx
        if tensors:
            # Waits for the network, so this stream is idle before its next nvJPEG decode: torchvision's CUDA
            # decoder writes into blocks the caller's stream may still be reading (pytorch/vision PR #9606), so a
            # copy back left in flight here could let the next batch's decode overwrite this one's input.
            probs_t, maps_t = self.predict_tensor_with_map(torch.cat(tensors))
            probs = probs_t.cpu().numpy()
            maps = maps_t.cpu().numpy() if maps_t is not None else [None] * len(slots)
            for k, verdict, p, m in zip(slots, self.decide(probs), probs, maps, strict=True):
                results[k].probs, results[k].verdict, results[k].defect_map = p, verdict, m
        return results
