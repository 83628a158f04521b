"""The review queue: label issues, quality flags and labeler disagreement folded into one ranked list.

A team has a relabel budget (default 20% of the train/val images); the queue spends it on the images most likely
to be wrong or unusable. Output: a CSV to work through and a contact sheet to eyeball.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from inspection.core.class_labels import legend as label_legend
from inspection.core.class_labels import short_labels
from inspection.core.defect_map import overlay
from inspection.core.errors import ImageDecodeError
from inspection.core.image import read_image
from inspection.curation.quality import QUALITY_FLAGS
from inspection.data.manifest import Manifest

CAPTION_LABEL_CHARS = 10  # a class label in a caption line ("suggested: <label>" fits a 128 px tile)
MAP_THRESHOLD = 0.5  # outline on review sheets: the pixel probability the exported card counts as defect

QUEUE_COLUMNS = ["rank", "path", "split", "given", "suggested", "score", "reasons", "self_confidence",
                 "quality_flags", "disagreement", "votes"]


@dataclass
class QueueConfig:
    """How signals add up to one score, and how much may be reviewed."""

    budget: float = 0.2  # ≤ 1: share of the train/val images; > 1: a number of images
    w_confidence: float = 1.0  # x (1 - probability of the given label, out of fold)
    w_issue: float = 1.0  # confident learning says the label is wrong
    w_quality: float = 1.5  # blur / exposure / cut-off / unreadable
    w_leak: float = 1.0  # a copy (exact or near) of a test image
    w_disagreement: float = 1.0  # x share of other labelers' votes that differ from the given label
    w_ambiguous: float = 0.5  # the dataset's boxes name several defect types (meta_multi_defect)
    fill_budget: bool = False  # also queue unflagged images (lowest confidence first) up to the budget
    sheet_max: int = 60  # images on the contact sheet


def budget_count(budget: float, n_images: int) -> int:
    """A budget as a fraction (≤ 1) or a count (> 1) → number of images."""
    return int(round(budget * n_images)) if budget <= 1 else min(int(budget), n_images)


def _disagreement(rows: pd.DataFrame, labeler_cols: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Share of labeler votes differing from the given label (0 when nobody else labelled), and the votes."""
    share, votes = np.zeros(len(rows)), []
    for i, (_, r) in enumerate(rows.iterrows()):
        given = [str(r[c]) for c in labeler_cols if str(r[c]) not in ("", "nan")]
        votes.append(",".join(f"{c.removeprefix('labeler_')}:{r[c]}" for c in labeler_cols
                              if str(r[c]) not in ("", "nan")))
        if len(given) >= 2:
            share[i] = float(np.mean([g != r["label"] for g in given]))
    return share, votes


def build_review_queue(manifest: Manifest, issues: pd.DataFrame, quality: pd.DataFrame,
                       cfg: QueueConfig | None = None) -> pd.DataFrame:
    """Rank train/val images by one score; keep the flagged ones (or fill) within the budget."""
    cfg = cfg or QueueConfig()
    rows = manifest.rows[manifest.rows["split"] != "test"].reset_index(drop=True)
    iss = issues.set_index("path").reindex(rows["path"])
    qf = quality.set_index("path").reindex(rows["path"])["flags"].fillna("").astype(str).to_numpy()
    flags = [set(f.split(";")) - {""} for f in qf]
    bad_quality = np.array([bool(f & set(QUALITY_FLAGS)) for f in flags])
    leak = np.array([bool(f & {"duplicate_of_test", "near_duplicate_of_test"}) for f in flags])
    share, votes = _disagreement(rows, manifest.labeler_columns())
    ambiguous = (rows.get("meta_multi_defect", pd.Series([""] * len(rows))).astype(str) == "1").to_numpy()
    conf = iss["self_confidence"].to_numpy(float)
    is_issue = iss["is_issue"].fillna(False).astype(bool).to_numpy()
    score = (cfg.w_confidence * np.nan_to_num(1 - conf, nan=1.0) + cfg.w_issue * is_issue
             + cfg.w_quality * bad_quality + cfg.w_leak * leak + cfg.w_disagreement * share
             + cfg.w_ambiguous * ambiguous)
    reasons = []
    for i in range(len(rows)):
        why = sorted(flags[i] & set(QUALITY_FLAGS)) + sorted(flags[i] & {"duplicate_of_test", "near_duplicate_of_test"})
        why += (["label_issue"] if is_issue[i] else []) + ([f"disagreement {share[i]:.0%}"] if share[i] else [])
        why += ["multi_defect"] if ambiguous[i] else []
        reasons.append("; ".join(why))
    table = pd.DataFrame({
        "path": rows["path"], "split": rows["split"], "given": rows["label"],
        "suggested": iss["suggested"].fillna("").to_numpy(), "score": score.round(4), "reasons": reasons,
        "self_confidence": conf.round(4), "quality_flags": qf, "disagreement": share.round(3), "votes": votes,
    })
    flagged = table["reasons"] != ""
    n = budget_count(cfg.budget, len(rows))
    order = table.assign(_f=flagged).sort_values(["_f", "score"], ascending=False, kind="stable")
    if not cfg.fill_budget:
        order = order[order["_f"]]
    queue = order.head(n).drop(columns="_f").reset_index(drop=True)
    queue.insert(0, "rank", np.arange(1, len(queue) + 1))
    return queue[QUEUE_COLUMNS]


def _tile(path: Path, size: int) -> np.ndarray:
    try:
        img = read_image(path, 3)
    except ImageDecodeError:
        img = np.full((size, size, 3), 128, np.uint8)
        cv2.line(img, (0, 0), (size - 1, size - 1), (255, 0, 0), 2)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def write_contact_sheet(paths: Sequence[Path], captions: Sequence[Sequence[str]], out: str | Path,
                        cols: int = 8, tile: int = 128, maps: Sequence[np.ndarray | None] | None = None,
                        legend: Sequence[str] = ()) -> Path:
    """A grid of images with up to three caption lines under each, saved as PNG; with `maps` (a defect-map
    model's out-of-fold maps, None where absent) each image carries its heatmap overlay; `legend` lines (the
    full names of shortened class labels) go under the grid."""
    lines = max((len(c) for c in captions), default=1)
    cap_h = 14 * lines + 6
    n_rows = max(1, -(-len(paths) // cols))
    grid_h = n_rows * (tile + cap_h)
    width = max(min(cols, max(1, len(paths))) * tile, max((int(7.5 * len(t)) + 8 for t in legend), default=0))
    sheet = np.full((grid_h + (16 * len(legend) + 8 if legend else 0), width, 3), 255, np.uint8)
    for j, text in enumerate(legend):
        cv2.putText(sheet, str(text), (4, grid_h + 16 + 16 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
    for k, (p, cap) in enumerate(zip(paths, captions)):
        y, x = (k // cols) * (tile + cap_h), (k % cols) * tile
        img = _tile(Path(p), tile)
        if maps is not None and maps[k] is not None:
            img = overlay(img, np.asarray(maps[k], np.float32), MAP_THRESHOLD)
        sheet[y : y + tile, x : x + tile] = img
        for j, text in enumerate(cap):
            cv2.putText(sheet, str(text)[: int(tile / 5.6)], (x + 2, y + tile + 13 + 14 * j),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.32, (0, 0, 0), 1, cv2.LINE_AA)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{out}: could not write PNG")
    return out


def write_review_queue(queue: pd.DataFrame, manifest: Manifest, out_dir: str | Path,
                       sheet_max: int = 60, maps: dict[str, np.ndarray] | None = None) -> tuple[Path, Path]:
    """review_queue.csv (all queued rows) + review_queue.png (the top `sheet_max`, captioned)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "review_queue.csv"
    queue.to_csv(csv, index=False)
    top = queue.head(sheet_max)
    short = short_labels(manifest.classes, CAPTION_LABEL_CHARS)  # class names with spaces stay told apart
    captions = [[f"#{r.rank} given: {short.get(r.given, r.given)}", f"suggested: {short.get(r.suggested, r.suggested)}",
                 r.reasons.split(";")[0]] for r in top.itertuples()]
    png = write_contact_sheet([manifest.abspath(p) for p in top["path"]], captions, out / "review_queue.png",
                              maps=[maps.get(p) for p in top["path"]] if maps else None, legend=label_legend(short))
    return csv, png
