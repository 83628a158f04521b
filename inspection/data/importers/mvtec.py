"""Import one MVTec AD category (train/good, test/<defect>, ground_truth/<defect>/<n>_mask.png) as OK/NG classes."""

from __future__ import annotations

import shutil
from pathlib import Path

from inspection.core.errors import ManifestError
from inspection.data.importers.common import (
    Fractions,
    ImportOptions,
    SourceImage,
    build_manifest,
    check_source,
    drop_masks,
    list_images,
)
from inspection.data.manifest import Manifest, write_manifest
from inspection.data.near_duplicates import NearDupConfig

OK_CLASS = "good"
DEFECT_CLASS = "defect"  # the one NG class of a binary import


def import_mvtec(
    src: Path,
    out_dir: Path,
    seed: int = 0,
    copy: bool = True,
    fractions: Fractions = (0.6, 0.2, 0.2),
    skip_bad: bool = False,
    binary: bool = False,
    near_dup: NearDupConfig | None = NearDupConfig(),
) -> Manifest:
    """Pool train/good and test/* and re-split by class, so every defect type appears in train, val and test.

    MVTec's own split keeps defects out of train (it is built for anomaly detection); a classifier needs them.
    Paths stay as in the source (`test/crack/003.jpg`), so a copied and a referenced import share one manifest.
    Masks are always copied to out_dir/masks/ (they are small), and `meta_mask` is relative to out_dir.
    `binary`: two classes, good / defect (the type kept in `meta_defect_type`), on the very same split as the
    per-type import, so the two framings of one task compare image for image.
    """
    src = check_source(src, out_dir, copy)
    train_dir, test_dir, gt_dir = src / "train", src / "test", src / "ground_truth"
    if not (train_dir / OK_CLASS).is_dir() or not test_dir.is_dir():
        raise ManifestError(f"{src}: expected MVTec AD layout with train/good/ and test/<defect>/ inside")
    odd = sorted(d.name for d in train_dir.iterdir() if d.is_dir() and d.name != OK_CLASS)
    if odd:
        raise ManifestError(f"{train_dir}: MVTec train/ should hold only good/, found {odd}")
    defects = sorted(d.name for d in test_dir.iterdir() if d.is_dir() and d.name != OK_CLASS)
    if not defects:
        raise ManifestError(f"{test_dir}: no defect folders")

    images: list[SourceImage] = []
    masks: dict[str, tuple[Path, Path]] = {}  # image path → (source mask, destination relative to out_dir)
    missing_masks = []
    for split_dir in (train_dir, test_dir):
        for cls_dir in sorted(d for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith(".")):
            for f in drop_masks(list_images(cls_dir), cls_dir)[0]:
                cols = {"meta_source_split": split_dir.name, "meta_mask": ""}
                if cls_dir.name != OK_CLASS:
                    mask = gt_dir / cls_dir.name / f.relative_to(cls_dir).with_name(f"{f.stem}_mask.png")
                    if mask.is_file():
                        rel_mask = Path("masks", mask.relative_to(gt_dir))
                        masks[f.relative_to(src).as_posix()] = (mask, rel_mask)
                        cols["meta_mask"] = rel_mask.as_posix()
                    else:
                        missing_masks.append(f.relative_to(src).as_posix())
                images.append(SourceImage(f, f.relative_to(src).as_posix(), cls_dir.name, cols))

    name = src.resolve().name
    manifest = build_manifest(
        images, name if name.startswith("mvtec") else f"mvtec-{name}", [OK_CLASS, *defects], src, out_dir,
        ImportOptions(seed, fractions, copy, skip_bad, near_dup), ok_classes=[OK_CLASS],
        info={"importer": "mvtec", "missing_masks": missing_masks},
    )
    for path in manifest.rows["path"]:  # only for images kept (skip_bad may drop some)
        if path not in masks:
            continue
        mask, rel = masks[path]
        dest = Path(out_dir) / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mask, dest)
    return _binary(manifest, out_dir) if binary else manifest


def _binary(manifest: Manifest, out_dir: Path) -> Manifest:
    """good / defect labels over the per-type split; rewrites out_dir/manifest.csv."""
    rows = manifest.rows.copy()
    rows["meta_defect_type"] = rows["label"].where(rows["label"] != OK_CLASS, "")
    rows.loc[rows["label"] != OK_CLASS, "label"] = DEFECT_CLASS
    binary = Manifest(manifest.name, [OK_CLASS, DEFECT_CLASS], rows, manifest.image_root, [OK_CLASS],
                      {**manifest.info, "labels": "binary good/defect; type in meta_defect_type"})
    write_manifest(binary, Path(out_dir) / "manifest.csv")
    return binary
