"""Result writers (CSV, JSONL): one row per image, flushed per batch; resume-read that drops a half-written line."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inspection.core.errors import InspectionError

FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
# Defect-aware models only (edge.runner.to_row fills them); a classifier's header stays as it always was.
DEFECT_COLUMNS = ("defect_peak", "defect_peak_x", "defect_peak_y", "defect_area")


def output_format(path: str | os.PathLike) -> str:
    """'csv' or 'jsonl' from the file name; anything else is an error before any work starts."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InspectionError(f"{path}: output must end in .csv or .jsonl")
    return fmt


def csv_columns(top_k: int, defect_map: bool = False) -> list[str]:
    """Fixed CSV header: identity, decision, [defect map summary], top-k (class, prob), provenance, error."""
    cols = ["path", "verdict", "predicted", "confidence", "p_ng"]
    cols += list(DEFECT_COLUMNS) if defect_map else []
    for i in range(1, top_k + 1):
        cols += [f"top{i}_class", f"top{i}_prob"]
    return cols + ["model_hash", "error"]


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """CSV lines for a batch of rows: one writer per batch (a writer per row cost as much as the row itself)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        flat = {k: row.get(k) for k in columns}
        for i, (cls, prob) in enumerate(row.get("top_k") or [], start=1):
            flat[f"top{i}_class"], flat[f"top{i}_prob"] = cls, prob
        writer.writerow(["" if flat.get(c) is None else flat[c] for c in columns])
    return buf.getvalue()


def jsonl_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as JSONL and the HTTP service write it: top_k as [{"class", "prob"}]."""
    out = dict(row)
    out["top_k"] = [{"class": c, "prob": p} for c, p in row.get("top_k") or []]
    return out


def _complete_prefix(path: Path) -> int:
    """Byte length of the file up to and including its last newline (a killed writer may leave a partial line)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        pos = size
        while pos > 0:
            step = min(1 << 16, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            k = chunk.rfind(b"\n")
            if k >= 0:
                return pos - step + k + 1
            pos -= step
    return 0


def read_rows(path: str | os.PathLike) -> Iterator[dict[str, str]]:
    """Stream the complete rows of an existing output (CSV → dicts of strings, JSONL → dicts)."""
    p = Path(path)
    end = _complete_prefix(p)
    with open(p, encoding="utf-8", newline="") as f:
        text_iter = _limited_lines(f, end)
        if output_format(p) == "csv":
            yield from csv.DictReader(text_iter)
        else:
            for line in text_iter:
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a corrupted line: that image is simply done again


def _limited_lines(f, end_bytes: int) -> Iterator[str]:
    consumed = 0
    for line in f:
        consumed += len(line.encode("utf-8"))
        if consumed > end_bytes:
            return
        yield line


class ResultWriter:
    """Append rows to a CSV or JSONL file, flushing after every batch so a killed run loses nothing written."""

    def __init__(self, path: str | os.PathLike, top_k: int, append: bool = False, defect_map: bool = False):
        self.path = Path(path)
        self.format = output_format(self.path)
        self.columns = csv_columns(top_k, defect_map)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if append and self.path.exists():
            self._truncate_partial_line()  # a half-written last row (killed mid-write) is dropped and redone
        if append and self.path.exists() and self.path.stat().st_size > 0:
            self._check_header()
            self._f = open(self.path, "a", encoding="utf-8", newline="")
        else:
            self._f = open(self.path, "w", encoding="utf-8", newline="")
            if self.format == "csv":
                self._f.write(",".join(self.columns) + "\n")
                self._f.flush()

    def _truncate_partial_line(self) -> None:
        end = _complete_prefix(self.path)
        if end < self.path.stat().st_size:
            with open(self.path, "r+b") as f:
                f.truncate(end)

    def _check_header(self) -> None:
        if self.format != "csv":
            return
        with open(self.path, encoding="utf-8", newline="") as f:
            header = next(csv.reader(f), [])
        if header != self.columns:
            raise InspectionError(f"{self.path}: existing columns {header} differ from this run's {self.columns} "
                                  "(different --top-k, or a model with/without a defect map?); resume with "
                                  "the same options or write a new file")

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        """Write one batch of rows and flush it to the OS."""
        if not rows:
            return
        if self.format == "csv":
            text = _csv_text(rows, self.columns)
        else:
            text = "".join(json.dumps(jsonl_row(r), ensure_ascii=False) + "\n" for r in rows)
        self._f.write(text)
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
