"""Dataset manifests: a folder of images + manifest.csv (one row per image) + dataset.json (classes, task)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from inspection.core.errors import ManifestError, listing
from inspection.core.files import atomic_write_text

REQUIRED_COLUMNS = ("path", "label", "split", "sha256")
SPLITS = ("train", "val", "test")
LABELER_PREFIX = "labeler_"  # one column per labeler, gaps allowed (empty = not labelled)
META_PREFIX = "meta_"  # free metadata: line, camera, lot, boxes...


@dataclass
class Manifest:
    """A labelled image set. `rows` columns: path (relative to image_root), label, split, sha256, labeler_*, meta_*."""

    name: str
    classes: list[str]
    rows: pd.DataFrame
    image_root: Path
    ok_classes: list[str] = field(default_factory=list)  # non-empty → an OK/NG task (e.g. pills: ["good"])
    info: dict = field(default_factory=dict)  # source, version, notes

    @property
    def task(self) -> str:
        return "okng" if self.ok_classes else "multiclass"

    def split(self, name: str) -> pd.DataFrame:
        return self.rows[self.rows["split"] == name].reset_index(drop=True)

    def abspath(self, rel: str) -> Path:
        return self.image_root / rel

    def labeler_columns(self) -> list[str]:
        return [c for c in self.rows.columns if c.startswith(LABELER_PREFIX)]

    def with_rows(self, rows: pd.DataFrame, **info) -> Manifest:
        return Manifest(self.name, list(self.classes), rows.reset_index(drop=True), self.image_root,
                        list(self.ok_classes), {**self.info, **info})


def manifest_hash(manifest: Manifest) -> str:
    """Hash of (path, label, split, sha256) rows: identifies a labelled version independent of row order."""
    cols = list(REQUIRED_COLUMNS)
    text = manifest.rows[cols].sort_values("path").to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fail(csv: Path, problem: str, rows: pd.DataFrame | None = None) -> ManifestError:
    if rows is not None and len(rows):
        lines = ", ".join(f"row {i + 2} ({p})" for i, p in zip(rows.index[:5], rows["path"].astype(str)[:5]))
        more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        problem = f"{problem}: {lines}{more}"
    return ManifestError(f"{csv}: {problem}")


def validate(manifest: Manifest, csv: Path, check_files: bool = True) -> None:
    """Raise ManifestError naming the offending rows: missing files, unknown labels, duplicates, escapes, empty classes."""
    rows = manifest.rows
    missing_cols = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing_cols:
        raise _fail(csv, f"missing columns {missing_cols}")
    if not manifest.classes:
        raise _fail(csv, "no classes declared")
    bad_ok = [c for c in manifest.ok_classes if c not in manifest.classes]
    if bad_ok:
        raise _fail(csv, f"ok_classes {bad_ok} are not among classes {manifest.classes}")
    empty_path = rows[rows["path"].astype(str).str.strip() == ""]
    if len(empty_path):
        raise _fail(csv, "empty path", empty_path)
    # One image under two spellings (./a/b.png, a//b.png, a/x/../b.png) is one image: a duplicate, and across
    # splits a leak. Compared in normal form; the rows keep their spelling.
    normal = rows["path"].astype(str).map(posixpath.normpath)
    dup = rows[normal.duplicated(keep=False)]
    if len(dup):
        raise _fail(csv, "duplicate paths", dup)
    root = manifest.image_root.resolve()
    escaping = rows[[not _inside(root, root / p) for p in rows["path"].astype(str)]]
    if len(escaping):
        raise _fail(csv, f"paths escape the dataset root {root}", escaping)
    unknown = rows[~rows["label"].isin(manifest.classes)]
    if len(unknown):
        raise _fail(csv, f"unknown labels {sorted(unknown['label'].astype(str).unique())}", unknown)
    bad_split = rows[~rows["split"].isin(SPLITS)]
    if len(bad_split):
        raise _fail(csv, f"split must be one of {SPLITS}", bad_split)
    for col in manifest.labeler_columns():
        given = rows[col].dropna()
        given = given[given.astype(str) != ""]
        wrong = rows.loc[given.index[~given.isin(manifest.classes)]]
        if len(wrong):
            raise _fail(csv, f"column {col} has labels outside the classes", wrong)
    empty = [c for c in manifest.classes if not (rows["label"] == c).any()]
    if empty:
        raise _fail(csv, f"classes with no images: {empty}")
    if check_files:
        problems = [_file_problem(root / p) for p in rows["path"].astype(str)]
        missing = rows[[pr is not None for pr in problems]]
        if len(missing):
            other = sorted({pr for pr in problems if pr and pr != "not found"})
            raise _fail(csv, "image files not found" + (f" or unusable ({'; '.join(other)})" if other else ""),
                        missing)


def _file_problem(p: Path) -> str | None:
    """None for a regular file; else why not ("not found", "File name too long", ...)."""
    try:
        return None if p.is_file() else "not found"
    except OSError as e:  # ENAMETOOLONG and the like are raised, not answered with False
        return e.strerror or type(e).__name__


def _inside(root: Path, p: Path) -> bool:
    try:
        p.resolve().relative_to(root)
        return True
    except ValueError:
        return False
    except OSError:  # too long to resolve: judged on its spelling (checked again when the file is looked up)
        rel = posixpath.normpath(os.path.relpath(p, root))
        return rel != ".." and not rel.startswith("../")


def read_csv_table(path: str | os.PathLike) -> pd.DataFrame:
    """A CSV as a table of strings (empty cells stay ""), every row checked to have the header's field count:
    pandas would take an extra field as the row index and shift every column. ManifestError names the rows."""
    path = Path(path)
    try:
        _check_row_widths(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    except ManifestError:
        raise
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except Exception as e:  # pandas raises many types for a broken CSV
        raise ManifestError(f"{path}: cannot parse CSV ({e})") from None


def _check_row_widths(csv_path: Path) -> None:
    """Every row has the header's number of fields: pandas would silently take an extra field as the row index."""
    with open(csv_path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        bad = [f"row {reader.line_num} has {len(r)} fields" for r in reader if r and len(r) != len(header)]
    if bad:
        raise ManifestError(f"{csv_path}: rows with a field count other than the header's {len(header)} "
                            f"({', '.join(header)}):" + listing(bad))


def load_manifest(csv_path: str | os.PathLike, check_files: bool = True) -> Manifest:
    """Load manifest.csv + the dataset.json beside it, and validate."""
    csv = Path(csv_path)
    if not csv.is_file():
        raise ManifestError(f"{csv}: manifest not found")
    meta_path = csv.with_name("dataset.json")
    if not meta_path.is_file():
        raise ManifestError(f"{meta_path}: dataset.json (classes, image_root) not found beside the manifest")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise ManifestError(f"{meta_path}: not valid JSON ({e})") from None
    rows = read_csv_table(csv)
    image_root = Path(meta.get("image_root", "."))
    if not image_root.is_absolute():
        image_root = csv.parent / image_root
    m = Manifest(
        name=str(meta.get("name", csv.parent.name)),
        classes=list(meta.get("classes", [])),
        rows=rows,
        image_root=image_root,
        ok_classes=list(meta.get("ok_classes", [])),
        info=dict(meta.get("info", {})),
    )
    validate(m, csv, check_files=check_files)
    return m


def write_manifest(manifest: Manifest, csv_path: str | os.PathLike) -> Path:
    """Write manifest.csv and dataset.json atomically (image_root stored relative to the CSV when possible)."""
    csv = Path(csv_path)
    missing = [c for c in REQUIRED_COLUMNS if c not in manifest.rows.columns]
    if missing:
        raise ManifestError(f"{csv}: cannot write a manifest without columns {missing}")
    csv.parent.mkdir(parents=True, exist_ok=True)
    try:
        root = os.path.relpath(manifest.image_root.resolve(), csv.parent.resolve())
    except ValueError:  # different drives on Windows
        root = str(manifest.image_root.resolve())
    cols = list(REQUIRED_COLUMNS) + sorted(c for c in manifest.rows.columns if c not in REQUIRED_COLUMNS)
    atomic_write_text(csv, manifest.rows[cols].to_csv(index=False))
    meta = {
        "name": manifest.name,
        "classes": manifest.classes,
        "ok_classes": manifest.ok_classes,
        "image_root": root,
        "info": manifest.info,
    }
    atomic_write_text(csv.with_name("dataset.json"), json.dumps(meta, indent=2) + "\n")
    return csv
