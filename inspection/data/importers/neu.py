"""Import the NEU steel surface defect set (IMAGES/<class>_<n>.jpg + ANNOTATIONS/<class>_<n>.xml VOC boxes)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from inspection.core.errors import ManifestError
from inspection.data.importers.common import (
    Fractions,
    ImportOptions,
    SourceImage,
    build_manifest,
    check_source,
    list_images,
)
from inspection.data.manifest import Manifest
from inspection.data.near_duplicates import NearDupConfig

NEU_CLASSES = ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"]
# The class is everything before the last "_<n>": "rolled-in_scale_12" → "rolled-in_scale".
_NAME = re.compile(r"^(?P<label>.+)_(?P<n>\d+)$")


def parse_voc_boxes(xml_path: Path) -> list[list]:
    """[[name, xmin, ymin, xmax, ymax], ...] from a Pascal VOC file, in file order."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        raise ManifestError(f"{xml_path}: malformed VOC XML ({e})") from None
    boxes = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        if not name or bb is None:
            raise ManifestError(f"{xml_path}: <object> without <name> or <bndbox>")
        try:
            # Some VOC writers emit "12.0": round-trip through float.
            coords = [int(round(float(bb.findtext(k) or ""))) for k in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            raise ManifestError(
                f"{xml_path}: box of {name!r} has a missing or non-numeric coordinate"
            ) from None
        boxes.append([name, *coords])
    return boxes


def box_columns(boxes: list[list] | None) -> dict[str, str]:
    """meta_boxes / meta_box_classes / meta_multi_defect; all empty when there is no annotation file."""
    if boxes is None:
        return {"meta_boxes": "", "meta_box_classes": "", "meta_multi_defect": ""}
    names = sorted({b[0] for b in boxes})
    return {
        "meta_boxes": json.dumps(boxes, separators=(",", ":")),
        "meta_box_classes": "|".join(names),
        "meta_multi_defect": "1" if len(names) > 1 else "0",
    }


def import_neu(
    src: Path,
    out_dir: Path,
    seed: int = 0,
    fractions: Fractions = (0.6, 0.2, 0.2),
    copy: bool = True,
    skip_bad: bool = False,
    near_dup: NearDupConfig | None = NearDupConfig(),
) -> Manifest:
    """Import NEU-DET into out_dir; boxes become meta columns; byte-identical and near-duplicate images share a split."""
    src = check_source(src, out_dir, copy)
    img_dir, ann_dir = src / "IMAGES", src / "ANNOTATIONS"
    if not img_dir.is_dir():
        raise ManifestError(f"{src}: expected NEU layout with IMAGES/ (and ANNOTATIONS/) inside")
    images, unknown = [], []
    for f in list_images(img_dir):
        m = _NAME.match(f.stem)
        if m is None or m["label"] not in NEU_CLASSES:
            unknown.append(f.name)
            continue
        xml = ann_dir / f"{f.stem}.xml"
        boxes = parse_voc_boxes(xml) if xml.is_file() else None
        images.append(SourceImage(f, f.relative_to(img_dir).as_posix(), m["label"], box_columns(boxes)))
    if unknown:
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        raise ManifestError(
            f"{img_dir}: file names without a NEU class ({'|'.join(NEU_CLASSES)})_<n>: {shown}"
        )
    multi = sum(im.columns["meta_multi_defect"] == "1" for im in images)
    return build_manifest(
        images, "neu-det", NEU_CLASSES, img_dir, out_dir, ImportOptions(seed, fractions, copy, skip_bad, near_dup),
        info={
            "importer": "neu",
            "multi_defect_images": multi,
            "missing_annotations": sum(im.columns["meta_boxes"] == "" for im in images),
        },
    )
