"""The steps every importer shares (check the source, list, hash, decode-check, split, copy, write), so NEU, MVTec
and class folders differ only in how they list their files."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from inspection.core.errors import ImageDecodeError, ManifestError, listing
from inspection.core.files import IMAGE_EXTENSIONS
from inspection.core.image import decode_image, read_encoded
from inspection.core.listing import Skipped, iter_image_files
from inspection.data.manifest import Manifest, validate, write_manifest
from inspection.data.near_duplicates import NearDupConfig, find_clusters
from inspection.data.splits import stratified_group_split

Fractions = tuple[float, float, float]
log = logging.getLogger("inspection.data")


@dataclass(frozen=True)
class ImportOptions:
    """How every importer splits and stores: split seed and fractions, copy or reference, skip unreadable files,
    and which images count as near-duplicates that must share a split (None: byte-identical ones only)."""

    seed: int = 0
    fractions: Fractions = (0.6, 0.2, 0.2)
    copy: bool = True
    skip_bad: bool = False
    near_dup: NearDupConfig | None = NearDupConfig()


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
    if copy and is_within(Path(out_dir).resolve(), src.resolve()):
        raise ManifestError(f"{out_dir}: output folder must be outside the source folder {src} when copying")
    return src


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (core.listing: recursive, regular files only), sorted; every entry it skips (a
    FIFO, an unlistable folder) is logged as a named warning."""
    return sorted(Path(p) for p in iter_image_files(folder, _warn_skipped))


def _warn_skipped(entry: Skipped) -> None:
    log.warning("%s", entry)


MASK_SUFFIXES = ("_mask", "-mask")  # MVTec: ground_truth/<type>/<n>_mask.png


def is_mask_name(path: Path) -> bool:
    """A segmentation mask by its name (`003_mask.png`), not an image to classify."""
    return path.stem.lower().endswith(MASK_SUFFIXES)


def drop_masks(files: list[Path], where: Path) -> tuple[list[Path], list[Path]]:
    """(images, masks) of a listing; masks are left out with a warning naming how many and an example."""
    masks = [f for f in files if is_mask_name(f)]
    if masks:
        log.warning("%s: %d mask file(s) left out, not images to classify (e.g. %s)", where, len(masks), masks[0])
    return [f for f in files if not is_mask_name(f)], masks


def _check_one(path: Path) -> tuple[str, str | None]:
    """(sha256, why it does not decode or None): one read serves both the hash and the decode check."""
    try:
        data = read_encoded(path)  # bounded, and never blocks on a FIFO given by name
    except ImageDecodeError as e:
        return "", e.reason
    digest = hashlib.sha256(data).hexdigest()
    try:
        decode_image(data, str(path))
    except ImageDecodeError as e:
        return digest, e.reason
    return digest, None


def _name_problem(rel: str) -> str | None:
    """Why a file name cannot go into a manifest (a UTF-8 CSV), or None."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8 (rename the file)"
    return None


def build_manifest(images: Sequence[SourceImage], name: str, classes: list[str], src_root: Path, out_dir: Path,
                   options: ImportOptions, ok_classes: Iterable[str] = (), info: dict | None = None) -> Manifest:
    """Check every image decodes, hash, split (grouped by near-duplicate cluster), copy, validate and write."""
    out_dir = Path(out_dir)
    seed, fractions, copy, skip_bad = options.seed, options.fractions, options.copy, options.skip_bad
    if not images:
        raise ManifestError(f"{src_root}: no images found ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    unknown_ok = sorted(set(ok_classes) - set(classes))
    if unknown_ok:  # before decoding and copying every image
        raise ManifestError(f"{src_root}: OK class(es) {unknown_ok} are not among the classes found: {list(classes)}")
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # cv2 decode releases the GIL
        checked = list(pool.map(_check_one, [im.src for im in images]))
    checked = [(sha, err or _name_problem(im.rel)) for im, (sha, err) in zip(images, checked, strict=True)]
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
    src_of = {im.rel: im.src for im, _ in keep}
    near = _near_duplicate_groups(rows, [src_of[p] for p in rows["path"]], options.near_dup)
    rows["split"] = stratified_group_split(rows["label"].tolist(), near.pop("group"), fractions, seed)

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
    meta["near_duplicates"] = near  # kept together by the split too (docs/datasets.md)
    meta["skipped"] = [{"path": im.rel, "reason": err} for im, err in sorted(bad, key=lambda b: b[0].rel)]
    manifest = Manifest(name, list(classes), rows, image_root, list(ok_classes), meta)
    csv = out_dir / "manifest.csv"
    validate(manifest, csv)  # before writing: a manifest on disk is always a valid one
    write_manifest(manifest, csv)
    return manifest


def _near_duplicate_groups(rows: pd.DataFrame, paths: list[Path], cfg: NearDupConfig | None) -> dict:
    """Split group per row (the sha256 of its cluster's first row) and what dataset.json says about the clusters."""
    sha = rows["sha256"].tolist()
    if cfg is None:
        return {"group": sha, "max_distance": None}
    c = find_clusters(paths, sha, cfg)
    groups = [sorted(rows["path"].iloc[g]) for g in c.groups() if len(set(rows["sha256"].iloc[g])) > 1]
    return {"group": [sha[i] for i in c.label], "max_distance": cfg.max_distance, "clusters": groups,
            "lookalike_images": c.lookalike}


def is_within(p: Path, root: Path) -> bool:
    """`p` is `root` or lies below it."""
    return p == root or root in p.parents
