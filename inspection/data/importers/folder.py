"""Import a class-per-folder image tree (src/<class>/**/*.png), optionally with a multi-labeler CSV."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from inspection.core.errors import ManifestError, listing
from inspection.data.importers.common import (
    Fractions,
    ImportOptions,
    SourceImage,
    build_manifest,
    check_source,
    drop_masks,
    is_within,
    list_images,
)
from inspection.data.manifest import LABELER_PREFIX, Manifest, read_csv_table
from inspection.data.near_duplicates import NearDupConfig

log = logging.getLogger(__name__)


def import_folder(
    src: Path,
    out_dir: Path,
    seed: int = 0,
    copy: bool = True,
    ok_classes: Sequence[str] = (),
    labels_csv: Path | None = None,
    fractions: Fractions = (0.6, 0.2, 0.2),
    skip_bad: bool = False,
    near_dup: NearDupConfig | None = NearDupConfig(),
) -> Manifest:
    """Import src/<class>/**/<image> into out_dir (manifest.csv, dataset.json, images/ when copying)."""
    src = check_source(src, out_dir, copy)
    out_res = Path(out_dir).resolve()
    class_dirs = sorted(
        d for d in src.iterdir() if d.is_dir() and not d.name.startswith(".") and d.resolve() != out_res
    )
    images: list[SourceImage] = []
    empty, classes, masks = [], [], []
    for d in class_dirs:
        files, found = drop_masks([f for f in list_images(d) if not is_within(f.resolve(), out_res)], d)
        masks += [f.relative_to(src).as_posix() for f in found]
        if not files and found:  # a folder of masks (MVTec's ground_truth/): not a class
            log.warning("%s: holds only masks (%d): not a class, left out", d, len(found))
            continue
        if not files:
            empty.append(d.name)
        classes.append(d.name)
        images += [SourceImage(f, f.relative_to(src).as_posix(), d.name) for f in files]
    if empty:
        raise ManifestError(f"{src}: class folders without images: {empty}")
    if labels_csv is not None:
        _attach_labelers(images, Path(labels_csv), classes)
    return build_manifest(
        images, src.resolve().name, classes, src, out_dir, ImportOptions(seed, fractions, copy, skip_bad, near_dup),
        ok_classes=ok_classes, info={"importer": "folder", "labels_csv": str(labels_csv) if labels_csv else "",
                             "masks_left_out": len(masks)},
    )


def _attach_labelers(images: list[SourceImage], csv: Path, classes: list[str]) -> None:
    """Read a multi-labeler CSV (path + one column per labeler, gaps allowed) into labeler_* columns."""
    if not csv.is_file():
        raise ManifestError(f"{csv}: labels CSV not found")
    table = read_csv_table(csv)
    table.columns = [str(c).strip() for c in table.columns]
    # A trailing comma in a spreadsheet export adds an empty "Unnamed: n" column; it is not a labeler.
    table = table[[c for c in table.columns if not (c.startswith("Unnamed: ") and (table[c] == "").all())]]
    if "path" not in table.columns:
        raise ManifestError(
            f"{csv}: needs a 'path' column (relative to the source folder), got {list(table.columns)}"
        )
    labelers = [c for c in table.columns if c != "path"]
    if not labelers:
        raise ManifestError(f"{csv}: no labeler columns besides 'path'")
    table = table.apply(lambda s: s.str.strip())
    # Row numbers as a spreadsheet shows them: the header is row 1.
    table["path"] = [_norm_rel(p) for p in table["path"]]
    by_rel = {im.rel: im for im in images}
    problems = []
    for i, p in zip(table.index, table["path"], strict=True):
        if p not in by_rel:
            problems.append(f"row {i + 2}: {p!r} is not an image in a class folder")
    for i in table.index[table["path"].duplicated(keep="first")]:
        problems.append(f"row {i + 2}: duplicate path {table.at[i, 'path']!r}")
    known = set(classes)
    for col in labelers:
        for i, v in zip(table.index, table[col], strict=True):
            if v and v not in known:
                problems.append(
                    f"row {i + 2}: labeler {col!r} gives unknown label {v!r} (classes: {classes})"
                )
    if problems:
        raise ManifestError(f"{csv}: {len(problems)} problem(s):" + listing(problems))
    names = {col: col if col.startswith(LABELER_PREFIX) else LABELER_PREFIX + col for col in labelers}
    for im in images:
        im.columns.update({names[col]: "" for col in labelers})  # gaps: images the CSV does not mention
    for _, row in table.iterrows():
        by_rel[row["path"]].columns.update({names[col]: row[col] for col in labelers})


def _norm_rel(p: str) -> str:
    """CSV paths written on Windows or with './' still match the importer's posix paths."""
    parts = PurePosixPath(p.replace("\\", "/")).parts
    return "/".join(x for x in parts if x != ".")
