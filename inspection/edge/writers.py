"""Result writers (CSV, JSONL): one row per image, flushed per batch; resume-read that drops a half-written line.

A failed write (disk full) cuts the file back to its last complete row and raises OutputWriteError, so the file
always holds whole rows and `--resume` finishes it. CSV cells are made safe for spreadsheets (no control characters,
no formulas: OWASP CSV injection); JSONL keeps every value exact.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inspection.core.errors import InspectionError
from inspection.core.files import printable

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


class OutputWriteError(InspectionError):
    """The results file could not be written (disk full, I/O error); it was cut back to its complete rows."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNUSUAL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")  # control characters or undecodable name bytes
_FORMULA_START = ("=", "+", "-", "@", "'")  # a leading ' is escaped too, so neutralising stays one-to-one


def csv_cell(text: str) -> str:
    """A text value as written to CSV: undecodable name bytes and control characters (\\r, \\n, tab) as \\xNN
    escapes (a cell never spans lines), and a leading =, +, -, @ or ' prefixed with ' (not read as a formula)."""
    if _UNUSUAL.search(text):  # the common name costs one regex scan
        text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", printable(text))
    return "'" + text if text.startswith(_FORMULA_START) else text


def row_key(path: str, fmt: str) -> str:
    """How `path` reads back from an output of format `fmt` (what --resume compares with)."""
    return csv_cell(path) if fmt == "csv" else path


def _cell(v: Any) -> Any:
    return "" if v is None else csv_cell(v) if isinstance(v, str) else v


def _json_line(row: dict[str, Any]) -> str:
    text = json.dumps(jsonl_row(row), ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a non-UTF-8 file name: \udcXX escapes keep it exact and the file valid UTF-8
        text = json.dumps(jsonl_row(row))
    return text + "\n"


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """CSV lines for a batch of rows: one writer per batch (a writer per row cost as much as the row itself)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        flat = {k: row.get(k) for k in columns}
        for i, (cls, prob) in enumerate(row.get("top_k") or [], start=1):
            flat[f"top{i}_class"], flat[f"top{i}_prob"] = cls, prob
        writer.writerow([_cell(flat.get(c)) for c in columns])
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
    """Append rows to a CSV or JSONL file, one write per batch straight to the OS, so a killed run loses nothing
    written; a failed write is undone to the last complete row (OutputWriteError)."""

    def __init__(self, path: str | os.PathLike, top_k: int, append: bool = False, defect_map: bool = False):
        self.path = Path(path)
        self.format = output_format(self.path)
        self.columns = csv_columns(top_k, defect_map)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if append and self.path.exists():
            self._truncate_partial_line()  # a half-written last row (killed mid-write) is dropped and redone
        appending = append and self.path.exists() and self.path.stat().st_size > 0
        if appending:
            self._check_header()
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if appending else os.O_TRUNC)
        self._fd: int | None = os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0), 0o666)
        self._good = os.lseek(self._fd, 0, os.SEEK_END)  # bytes of complete rows: what a failed write returns to
        if not appending and self.format == "csv":
            self._write((",".join(self.columns) + "\n").encode("utf-8"))

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

    def _write(self, data: bytes) -> None:
        assert self._fd is not None, "writer is closed"
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as e:
            self._fail(e)
        self._good += len(data)

    def _fail(self, e: OSError) -> None:
        """Cut the file back to its complete rows, close it, and raise OutputWriteError saying what to do."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, self._good)
            except OSError:
                pass
            os.close(fd)
        reason = "no space left on device" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e))
        raise OutputWriteError(f"{self.path}: cannot write the results: {reason}; the file keeps its complete rows "
                               "- free space and rerun with --resume to finish") from None

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        """Write one batch of rows (one write call, no buffer in between)."""
        if not rows:
            return
        if self.format == "csv":
            text = _csv_text(rows, self.columns)
        else:
            text = "".join(_json_line(r) for r in rows)
        self._write(text.encode("utf-8"))

    def close(self) -> None:
        """fsync and close; a failed fsync (data not on disk) raises OutputWriteError like a failed write."""
        if self._fd is None:
            return
        try:
            os.fsync(self._fd)
        except OSError as e:
            self._fail(e)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and self._fd is not None:  # an error elsewhere: keep the rows, skip the fsync check
            os.close(self._fd)
            self._fd = None
            return
        self.close()
