"""Streaming batch inspection with any Inspector: bounded memory, rows flushed as produced, resume, summary."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from inspection.core.defect_map import summarize_map
from inspection.core.errors import InspectionError
from inspection.core.files import atomic_write_text, output_lock, printable
from inspection.core.listing import Skipped
from inspection.core.results import ImageResult
from inspection.edge.engine import Inspector
from inspection.edge.sources import expand_sources
from inspection.edge.writers import DEFECT_COLUMNS, ResultWriter, output_format, read_rows, row_key

FAIL_ON = ("ng", "review", "error")
MAX_THUMBNAILS = 120  # the report shows at most this many NG/REVIEW images: memory stays bounded
MAX_SKIPPED_KEPT = 1000  # skipped entries listed in the summary sidecar (all are counted and warned about)
log = logging.getLogger("inspection.edge")


def done_marker(out: str | os.PathLike) -> Path:
    """`<out>.done.json`: the run's summary, written last; a results file without it is unfinished."""
    return Path(f"{os.fspath(out)}.done.json")


def to_row(r: ImageResult, class_names: list[str], top_k: int, model_hash: str,
           defect_threshold: float | None = None) -> dict:
    """Result → output row (path, verdict, predicted, confidence, p_ng, top_k, model_hash, error).

    With `defect_threshold` (a map model) the row also has DEFECT_COLUMNS: None when the image has no map."""
    row: dict = {"path": r.path, "verdict": None, "predicted": None, "confidence": None, "p_ng": None,
                 "top_k": [], "model_hash": model_hash, "error": r.error}
    if defect_threshold is not None:
        # Keys only for map models: a classifier's rows (and so old result files) keep exactly their columns.
        row.update(dict.fromkeys(DEFECT_COLUMNS))
        if r.defect_map is not None and r.verdict is not None:
            s = summarize_map(r.defect_map, defect_threshold)
            values = (s.peak, s.peak_x, s.peak_y, s.area)
            row.update(zip(DEFECT_COLUMNS, (round(v, 6) for v in values), strict=True))
    if r.verdict is not None and r.probs is not None:
        # The verdict's probs are already Python floats in class order; sorted() is stable like argsort(stable).
        pairs = list(r.verdict.probs.items()) if len(r.verdict.probs) == len(class_names) else \
            [(c, float(p)) for c, p in zip(class_names, r.probs, strict=True)]
        top = sorted(pairs, key=lambda cp: -cp[1])[:top_k]
        row.update(verdict=r.verdict.verdict, predicted=r.verdict.predicted,
                   confidence=round(r.verdict.confidence, 6), p_ng=round(r.verdict.p_ng, 6),
                   top_k=[(c, round(p, 6)) for c, p in top])
    else:
        row["verdict"] = "ERROR"
    return row


@dataclass
class RunSummary:
    """Counts over every row in the output (resumed ones included) and this run's throughput."""

    output: str
    model_hash: str
    device: str
    n_new: int = 0
    n_resumed: int = 0
    verdicts: Counter = field(default_factory=Counter)
    classes: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0
    flagged: list[dict] = field(default_factory=list)  # NG/REVIEW rows for report thumbnails (capped)
    n_flagged: int = 0
    defect_threshold: float | None = None  # the card's pixel threshold for map models: rows and report use it
    n_skipped: int = 0  # entries the listing met but did not inspect (special files, unlistable folders)
    skipped: list[str] = field(default_factory=list)

    @property
    def n_total(self) -> int:
        return self.n_new + self.n_resumed

    @property
    def errors(self) -> int:
        return self.verdicts.get("ERROR", 0)

    @property
    def images_per_s(self) -> float:
        return self.n_new / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def add(self, row: dict, defect_map: np.ndarray | None = None) -> None:
        """Count one row; keep NG/REVIEW ones (and their defect map, if any) for the report."""
        verdict = row.get("verdict") or ("ERROR" if row.get("error") else "")
        self.verdicts[verdict] += 1
        if verdict != "ERROR" and row.get("predicted"):
            self.classes[row["predicted"]] += 1
        if verdict in ("NG", "REVIEW"):
            self.n_flagged += 1
            if len(self.flagged) < MAX_THUMBNAILS:
                keys = ("path", "verdict", "predicted", "confidence")
                keys += DEFECT_COLUMNS if self.defect_threshold is not None else ()
                keep = {k: row.get(k) for k in keys}
                if defect_map is not None:  # float16 copy: ~120 small maps, no second model pass for overlays
                    keep["defect_map"] = np.asarray(defect_map, np.float16).copy()
                self.flagged.append(keep)

    def to_text(self) -> str:
        v = self.verdicts
        lines = [
            f"inspected {self.n_total} images ({self.n_new} new, {self.n_resumed} resumed) in {self.elapsed_s:.1f} s"
            f" - {self.images_per_s:.1f} img/s on {self.device}",
            f"verdicts: OK {v.get('OK', 0)}  NG {v.get('NG', 0)}  REVIEW {v.get('REVIEW', 0)}  errors {self.errors}",
            "classes: " + (", ".join(f"{c} {n}" for c, n in sorted(self.classes.items())) or "-"),
            f"results: {self.output}  (model {self.model_hash})",
        ]
        if self.n_skipped:
            lines.insert(2, f"skipped {self.n_skipped} entries that are not image files (warnings above)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"output": self.output, "model_hash": self.model_hash, "device": self.device, "n_total": self.n_total,
                "n_new": self.n_new, "n_resumed": self.n_resumed, "verdicts": dict(self.verdicts),
                "classes": dict(self.classes), "errors": self.errors, "elapsed_s": round(self.elapsed_s, 3),
                "images_per_s": round(self.images_per_s, 2), "n_skipped": self.n_skipped, "skipped": self.skipped}

    def skip(self, entry: Skipped) -> None:
        """Count and warn about an entry the listing did not return."""
        self.n_skipped += 1
        if len(self.skipped) < MAX_SKIPPED_KEPT:
            self.skipped.append(printable(str(entry)))
        log.warning("%s", printable(str(entry)))


class Progress:
    """A tiny stderr progress line with img/s (no tqdm on the edge): redrawn on a TTY, periodic lines otherwise."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True, every_s: float | None = None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s = every_s if every_s is not None else (0.25 if self.tty else 10.0)
        self.t0 = time.perf_counter()
        self._last = self.t0  # first line after one interval, not at the first image

    def update(self, done: int, errors: int, final: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not final and now - self._last < self.every_s):
            return
        self._last = now
        rate = done / (now - self.t0) if now > self.t0 else 0.0
        text = f"inspect: {done} images  {rate:.1f} img/s  errors {errors}"
        self.stream.write(("\r" + text + ("\n" if final else "")) if self.tty else text + "\n")
        self.stream.flush()


def _resume_state(out: Path, summary: RunSummary) -> set[str]:
    done: set[str] = set()
    for row in read_rows(out):
        if row.get("model_hash") and row["model_hash"] != summary.model_hash:
            raise InspectionError(f"{out}: rows were made by model {row['model_hash']}, this model is "
                                  f"{summary.model_hash}; resume only with the same model (or write a new file)")
        done.add(row["path"])
        summary.add(row)
    summary.n_resumed = len(done)
    return done


def run_inspection(inspector: Inspector, sources: list[str], out: str | os.PathLike, batch_size: int | None = None,
                   workers: int | None = None, top_k: int = 3, resume: bool = False, overwrite: bool = False,
                   progress: Progress | None = None, finish: Callable[[RunSummary], None] | None = None,
                   also_lock: str | os.PathLike | None = None) -> RunSummary:
    """Inspect every image in `sources`, appending rows to `out`; everything is validated before the first image.

    The run holds a lock on `out` (and `also_lock`, e.g. the report) throughout; `<out>.done.json` is removed first
    and written last, after `finish` (e.g. writing the report), so only a finished run has it."""
    out = Path(out)
    fmt = output_format(out)
    summary = RunSummary(str(out), inspector.model_hash, inspector.runs_on(),
                         defect_threshold=inspector.card.defect_threshold)
    paths = expand_sources(sources, summary.skip)
    first = next(paths, None)  # sources stream lazily (huge lists stay out of memory): peek for an empty run
    if first is None:
        raise InspectionError(f"no images in {', '.join(map(str, sources))}")
    paths = itertools.chain([first], paths)
    if out.exists() and out.stat().st_size > 0 and not (resume or overwrite):
        raise InspectionError(f"{out} already exists: pass --resume to continue it or --overwrite to replace it")
    if top_k < 1:
        raise InspectionError(f"--top-k must be >= 1, got {top_k}")
    try:
        with output_lock(out), (output_lock(also_lock) if also_lock else contextlib.nullcontext()):
            done_marker(out).unlink(missing_ok=True)
            _run_locked(inspector, paths, out, fmt, summary, batch_size, workers, top_k, resume, progress)
            if finish is not None:
                finish(summary)
            atomic_write_text(done_marker(out), json.dumps({"finished": True, **summary.to_dict()}, indent=2) + "\n")
    except InspectionError:
        raise
    except OSError as e:  # a folder where the output should go, a read-only disk: the run never started
        raise InspectionError(f"{out}: cannot write the results ({e.strerror or e})") from None
    return summary


def _run_locked(inspector: Inspector, paths: Iterable[str], out: Path, fmt: str, summary: RunSummary,
                batch_size: int | None, workers: int | None, top_k: int, resume: bool,
                progress: Progress | None) -> None:
    class_names = inspector.card.class_names
    top_k = min(top_k, len(class_names))
    threshold = summary.defect_threshold
    done = _resume_state(out, summary) if resume and out.exists() else set()
    todo = (p for p in paths if row_key(p, fmt) not in done) if done else paths
    progress = progress or Progress()
    t0 = time.perf_counter()
    with ResultWriter(out, top_k, append=resume, defect_map=threshold is not None) as writer:
        for batch in inspector.iter_results(todo, batch_size, workers):
            rows = [to_row(r, class_names, top_k, inspector.model_hash, threshold) for r in batch]
            writer.write_rows(rows)
            for r, row in zip(batch, rows, strict=True):
                summary.add(row, r.defect_map)
            summary.n_new += len(rows)
            progress.update(summary.n_new, summary.errors)
    summary.elapsed_s = time.perf_counter() - t0
    progress.update(summary.n_new, summary.errors, final=True)


def parse_fail_on(values: Iterable[str]) -> set[str]:
    """--fail-on values (repeated and/or comma-separated) → a validated set of ng/review/error."""
    wanted = {w.strip().lower() for item in values for w in str(item).split(",") if w.strip()}
    unknown = wanted - set(FAIL_ON)
    if unknown:
        raise InspectionError(f"--fail-on: unknown {sorted(unknown)}; choose from {', '.join(FAIL_ON)}")
    return wanted


def fail_exit_code(summary: RunSummary, fail_on: Iterable[str]) -> int:
    """1 when rows match any --fail-on category (ng, review, error), else 0."""
    wanted = parse_fail_on(fail_on)
    counts = {"ng": summary.verdicts.get("NG", 0), "review": summary.verdicts.get("REVIEW", 0),
              "error": summary.errors}
    return 1 if any(counts[w] for w in wanted) else 0
