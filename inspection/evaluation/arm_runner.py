"""Training a comparison's arm runs: one after the other in this process, or several at once in worker processes.

An arm is handed over as soon as it is known, so with workers the baseline, data-centric and oracle runs train
while the model-centric search is still choosing its recipe (on a 2-core CPU, two single-threaded trainings at once
use the cores better than one with two threads). Finished runs (their eval files exist) are reused: an interrupted
comparison resumes where it stopped.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inspection.evaluation.compare import Arm

TrainFn = Callable[["Arm", int, Path], Path]  # (arm, seed, out_dir) → run folder holding eval_test/


class ArmRunner:
    """Trains every seed of each arm it is given; `finish()` waits for all and returns the run folders per arm."""

    def __init__(self, train_fn: TrainFn, out_dir: Path, seeds: Sequence[int], n_arms: int, workers: int = 1,
                 progress: Callable[[str], None] = print):
        self.train_fn, self.out_dir, self.seeds, self.progress = train_fn, Path(out_dir), list(seeds), progress
        self.total, self.count = n_arms * len(self.seeds), 0
        self.runs: dict[str, list[Path]] = {}
        self._same: dict[tuple, str] = {}
        self._pending: dict[Future, tuple[str, Path]] = {}
        self._start, self.workers = time.perf_counter(), workers
        self._pool = (ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
                      if workers > 1 else None)

    def __enter__(self) -> ArmRunner:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def add(self, arm: Arm, train_fn: TrainFn | None = None, splits: Sequence[str] = ("test",)) -> None:
        """Train (or queue) every seed of `arm`, scored on `splits`. An arm with the same labels and recipe as an
        earlier one (model-centric when the search kept the baseline recipe) shares that arm's runs: training is
        deterministic, so a rerun would repeat the same numbers."""
        key = (str(Path(arm.manifest).resolve()), tuple(arm.overrides))
        if key in self._same:
            self.runs[arm.name] = list(self.runs[self._same[key]])
            self.count += len(self.seeds)
            self.progress(f"[compare {self.count}/{self.total}] {arm.name}: same labels and recipe as "
                          f"{self._same[key]}, its runs")
            return
        self._same[key] = arm.name
        self.runs[arm.name] = []
        fn = train_fn or self.train_fn
        for seed in self.seeds:
            self.count += 1
            run_dir = self.out_dir / "runs" / arm.name / f"seed{seed}"
            label = f"[compare {self.count}/{self.total}] {arm.name} seed {seed}"
            self.runs[arm.name].append(run_dir)
            if (run_dir / "train_summary.json").is_file() and all(
                    (run_dir / f"eval_{s}" / "metrics.json").is_file() for s in splits):
                self.progress(f"{label}: done earlier, reusing")
            elif self._pool is None:
                self.progress(f"{label}: training …")
                fn(arm, seed, run_dir)
            else:
                self._pending[self._pool.submit(fn, arm, seed, run_dir)] = (label, run_dir)

    def wait_for(self, run_dir: Path) -> Path:
        """The run folder once that run has finished (at once when it trained here or earlier)."""
        for future, (_, queued) in list(self._pending.items()):
            if queued == run_dir:
                self._collect({future})
        return run_dir

    def finish(self) -> dict[str, list[Path]]:
        """Wait for every queued run (the first failure is raised here, the rest cancelled)."""
        if self._pending:
            self.progress(f"[compare] training {len(self._pending)} runs, {self.workers} at a time …")
        while self._pending:
            done, _ = wait(set(self._pending), return_when=FIRST_COMPLETED)
            self._collect(done)
        return self.runs

    def _collect(self, futures: set[Future]) -> None:
        for future in futures:
            future.result()  # a worker's exception, re-raised here with its own traceback text
            label, _ = self._pending.pop(future)
            self.progress(f"{label}: trained ({time.perf_counter() - self._start:.0f} s)")


def run_arms(arms: list[Arm], seeds: list[int], train_fn: TrainFn, out_dir: Path,
             progress: Callable[[str], None] = print, workers: int = 1) -> dict[str, list[Path]]:
    """Every arm × seed (resuming finished runs); returns the run folders per arm."""
    with ArmRunner(train_fn, out_dir, seeds, len(arms), workers, progress) as runner:
        for arm in arms:
            runner.add(arm)
        return runner.finish()
