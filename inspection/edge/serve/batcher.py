"""MicroBatcher: images from concurrent requests → one ONNX Runtime run per batch (up to max batch, max wait).

The classic dynamic-batching loop (Triton's `max_queue_delay`, TorchServe's `batch_delay`): the first waiting
image waits at most `max_wait_s` for others; a run never mixes more than `max_batch` images, and a request's
images stay together (a request larger than `max_batch` runs in `max_batch` chunks). One worker thread owns the
session, so runs never overlap; requests keep queueing while it runs and form the next batch. The queue is
bounded in images: past `max_queue` a request is refused at once (QueueFull → HTTP 503) rather than piling up.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

RunFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]  # uint8 NHWC → (probs, maps or None)
Outcome = tuple[np.ndarray, np.ndarray | None]  # one image's probabilities and defect map


class QueueFull(Exception):
    """More images are waiting than the service holds (--max-queue)."""


class Closing(Exception):
    """The service is shutting down and takes no new work."""


@dataclass
class _Job:
    pixels: list[np.ndarray]
    future: asyncio.Future


class MicroBatcher:
    """Queue images, run them in batches on one worker thread, hand each request its own outcomes."""

    def __init__(self, run: RunFn, max_batch: int, max_wait_s: float, max_queue: int,
                 on_batch: Callable[[int, float], None] | None = None):
        self.run, self.max_batch, self.max_wait_s, self.max_queue = run, max_batch, max_wait_s, max_queue
        self.on_batch = on_batch or (lambda n, s: None)
        self.queued_images = 0
        self._jobs: deque[_Job] = deque()
        self._arrived = asyncio.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ort-session")
        self._task: asyncio.Task | None = None
        self._closing = False
        self._busy = False  # a batch is in the worker thread

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="micro-batcher")

    async def submit(self, pixels: list[np.ndarray]) -> list[Outcome]:
        """Queue one request's images (model-size uint8 HWC) and wait for their outcomes, in order."""
        if self._closing:
            raise Closing("the service is shutting down")
        if self.queued_images + len(pixels) > self.max_queue:
            raise QueueFull(f"{self.queued_images} images are already waiting (--max-queue {self.max_queue})")
        job = _Job(pixels, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self.queued_images += len(pixels)
        self._arrived.set()
        return await job.future

    async def _next_batch(self) -> list[_Job]:
        while not self._jobs:
            self._arrived.clear()
            await self._arrived.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while self.queued_images < self.max_batch and (left := deadline - loop.time()) > 0:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
                break
        jobs, n = [], 0
        while self._jobs and (not jobs or n + len(self._jobs[0].pixels) <= self.max_batch):
            job = self._jobs.popleft()
            self.queued_images -= len(job.pixels)
            if not job.future.done():  # a request that timed out or disconnected while queued is skipped
                jobs.append(job)
                n += len(job.pixels)
        return jobs

    def _run_chunks(self, batch: np.ndarray) -> tuple[np.ndarray, list[np.ndarray] | None]:
        probs, maps = [], []
        for i in range(0, len(batch), self.max_batch):  # only a single oversized request needs more than one
            t0 = time.perf_counter()
            p, m = self.run(batch[i : i + self.max_batch])
            self.on_batch(len(p), time.perf_counter() - t0)
            probs.append(p)
            maps.append(m)
        return np.concatenate(probs), None if maps[0] is None else [x for m in maps for x in m]

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._next_batch()
            if not jobs:
                continue
            batch = np.stack([px for job in jobs for px in job.pixels])
            self._busy = True
            try:
                probs, maps = await loop.run_in_executor(self._pool, self._run_chunks, batch)
            except Exception as e:  # the model failed on this batch: every request in it gets the error
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(e)
                continue
            finally:
                self._busy = False
            k = 0
            for job in jobs:
                n = len(job.pixels)
                if not job.future.done():
                    job.future.set_result([(probs[k + j], None if maps is None else maps[k + j]) for j in range(n)])
                k += n

    async def close(self, drain_s: float = 30.0) -> None:
        """Refuse new work, finish what is queued (at most `drain_s`), stop the loop and the worker thread."""
        self._closing = True
        deadline = time.monotonic() + drain_s
        while (self._jobs or self._busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for job in self._jobs:  # only after the drain time ran out
            if not job.future.done():
                job.future.set_exception(Closing("the service shut down before this request ran"))
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._pool.shutdown(wait=True)
