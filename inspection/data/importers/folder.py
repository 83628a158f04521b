"""Import a class-per-folder image tree (src/<class>/**/*.png), optionally with a multi-labeler CSV.

Also home of the steps every importer shares (check, hash, copy, split, write), so NEU and MVTec differ only in
how they list their files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from inspection.core.errors import ImageDecodeError, ManifestError, listing
from inspection.core.image import decode_image
from inspection.data.manifest import LABELER_PREFIX, Manifest, validate, write_manifest
from inspection.data.splits import stratified_group_split

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
Fractions = tuple[float, float, float]


@dataclass
class SourceImage:
    """One image found by an importer: where it is, its path inside the dataset, label and extra columns."""

    src: Path
    rel: str  # posix path relative to the image root, identical with and without copying
    label: str
    columns: dict[str, str] = field(default_factory=dict)  # meta_* / labeler_* values


def check_source(src: Path, out_dir: Path, copy: bool) -> Path:
    """`src` as a Path; refuses a missing folder or a copy into the source tree (a re-import would read it back)."""
    src = Path(src)
    if not src.is_dir():
        raise ManifestError(f"{src}: source folder not found")
    if copy and _is_within(Path(out_dir).resolve(), src.resolve()):
        raise ManifestError(f"{out_dir}: output folder must be outside the source folder {src} when copying")
    return src


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (recursive, extension case-insensitive, hidden entries skipped), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [
            Path(dirpath) / f for f in filenames if not f.startswith(".") and f.lower().endswith(IMAGE_EXTS)
        ]
    return sorted(found)


def _check_one(path: Path) -> tuple[str, str | None]:
    """(sha256, why it does not decode or None): one read serves both the hash and the decode check."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return "", f"cannot read: {e.strerror or e}"
    digest = hashlib.sha256(data).hexdigest()
    try:
        decode_image(data, str(path))
    except ImageDecodeError as e:
        return digest, e.reason
    return digest, None


def build_manifest(
    images: Sequence[SourceImage],
    *,
    name: str,
    classes: list[str],
    src_root: Path,
    out_dir: Path,
    seed: int,
    fractions: Fractions,
    copy: bool,
    skip_bad: bool,
    ok_classes: Iterable[str] = (),
    info: dict | None = None,
) -> Manifest:
    """Check every image decodes, hash, split (grouped by content hash), copy, validate and write the manifest."""
    out_dir = Path(out_dir)
    if not images:
        raise ManifestError(f"{src_root}: no images found ({', '.join(IMAGE_EXTS)})")
    unknown_ok = sorted(set(ok_classes) - set(classes))
    if unknown_ok:  # before decoding and copying every image
        raise ManifestError(f"{src_root}: OK class(es) {unknown_ok} are not among the classes found: {list(classes)}")
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # cv2 decode releases the GIL
        checked = list(pool.map(_check_one, [im.src for im in images]))
    bad = [(im, err) for im, (_, err) in zip(images, checked, strict=True) if err is not None]
    if bad and not skip_bad:
        head = f"{len(bad)} unreadable image(s) (--skip-bad / skip_bad=True leaves them out)"
        raise ManifestError(f"{head}:" + listing([f"{im.src}: {err}" for im, err in bad]))
    keep = [(im, sha) for im, (sha, err) in zip(images, checked, strict=True) if err is None]
    if not keep:
        raise ManifestError(f"{src_root}: none of the {len(images)} images could be read")
    records = [{"path": im.rel, "label": im.label, "sha256": sha, **im.columns} for im, sha in keep]
    rows = (
        pd.DataFrame(records).fillna("").astype(str).sort_values("path", kind="stable").reset_index(drop=True)
    )
    rows["split"] = stratified_group_split(rows["label"].tolist(), rows["sha256"].tolist(), fractions, seed)

    image_root = out_dir / "images" if copy else src_root.resolve()
    if copy:
        for im, _ in keep:
            dest = image_root / im.rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(im.src, dest)
    meta = {"source": str(src_root.resolve()), "seed": seed, "fractions": list(fractions), "copied": copy}
    meta.update(info or {})
    dups = rows[rows["sha256"].duplicated(keep=False)].groupby("sha256", sort=True)["path"]
    meta["duplicates"] = [sorted(g) for _, g in dups]  # byte-identical files (kept together by the split)
    meta["skipped"] = [{"path": im.rel, "reason": err} for im, err in sorted(bad, key=lambda b: b[0].rel)]
    manifest = Manifest(name, list(classes), rows, image_root, list(ok_classes), meta)
    csv = out_dir / "manifest.csv"
    validate(manifest, csv)  # before writing: a manifest on disk is always a valid one
    write_manifest(manifest, csv)
    return manifest


def import_folder(
    src: Path,
    out_dir: Path,
    seed: int = 0,
    copy: bool = True,
    ok_classes: Sequence[str] = (),
    labels_csv: Path | None = None,
    fractions: Fractions = (0.6, 0.2, 0.2),
    skip_bad: bool = False,
) -> Manifest:
    """Import src/<class>/**/<image> into out_dir (manifest.csv, dataset.json, images/ when copying)."""
    src = check_source(src, out_dir, copy)
    out_res = Path(out_dir).resolve()
    class_dirs = sorted(
        d for d in src.iterdir() if d.is_dir() and not d.name.startswith(".") and d.resolve() != out_res
    )
    images: list[SourceImage] = []
    empty = []
    for d in class_dirs:
        files = [f for f in list_images(d) if not _is_within(f.resolve(), out_res)]
        if not files:
            empty.append(d.name)
        images += [SourceImage(f, f.relative_to(src).as_posix(), d.name) for f in files]
    if empty:
        raise ManifestError(f"{src}: class folders without images: {empty}")
    classes = [d.name for d in class_dirs]
    if labels_csv is not None:
        _attach_labelers(images, Path(labels_csv), classes)
    return build_manifest(
        images,
        name=src.resolve().name,
        classes=classes,
        src_root=src,
        out_dir=out_dir,
        seed=seed,
        fractions=fractions,
        copy=copy,
        skip_bad=skip_bad,
        ok_classes=ok_classes,
        info={"importer": "folder", "labels_csv": str(labels_csv) if labels_csv else ""},
    )


def _attach_labelers(images: list[SourceImage], csv: Path, classes: list[str]) -> None:
    """Read a multi-labeler CSV (path + one column per labeler, gaps allowed) into labeler_* columns."""
    if not csv.is_file():
        raise ManifestError(f"{csv}: labels CSV not found")
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except Exception as e:  # pandas raises many types for a broken CSV
        raise ManifestError(f"{csv}: cannot parse CSV ({e})") from None
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


def _is_within(p: Path, root: Path) -> bool:
    return p == root or root in p.parents
