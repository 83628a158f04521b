"""Hand the review queue to Label Studio: an import of tasks (with the model's suggestion as a pre-annotation)
and the labelling config (classes as choices, `reject`, the defect book's rules as instructions).

The images stay where they are: tasks point at Label Studio's local-files endpoint (`/data/local-files/?d=<path>`)
with paths relative to the dataset's image root, which is what Label Studio serves when started with
LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<image root>.
`relabel` reads the export back: it matches `data.image` to the manifest path and reads `annotations` only,
never the pre-annotations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from inspection.core.files import atomic_write_text
from inspection.data.manifest import Manifest

LOCAL_FILES = "/data/local-files/?d="
FROM_NAME, TO_NAME = "label", "image"  # the config's Choices and Image names; pre-annotations must use them
REJECT_CHOICE = "reject"  # relabel reads it as "unusable"
MODEL_VERSION = "inspection-audit"


def image_ref(path: str, prefix: str = LOCAL_FILES) -> str:
    """The `data.image` value for a manifest path (forward slashes, relative to the image root)."""
    return prefix + path.replace("\\", "/")


def label_studio_tasks(queue: pd.DataFrame, probs_by_path: Mapping[str, np.ndarray] | None, classes: list[str],
                       prefix: str = LOCAL_FILES) -> list[dict]:
    """One task per queued image: image reference, given label, flags, and the model's suggestion with its score."""
    tasks = []
    for r in queue.itertuples(index=False):
        data = {"image": image_ref(str(r.path), prefix), "path": str(r.path), "given": str(r.given),
                "suggested": str(r.suggested), "reasons": str(r.reasons), "rank": int(r.rank)}
        task: dict = {"data": data}
        if str(r.suggested) in classes:
            p = probs_by_path.get(str(r.path)) if probs_by_path else None
            score = float(p[classes.index(str(r.suggested))]) if p is not None else None
            pred = {"model_version": MODEL_VERSION,
                    "result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                                "value": {"choices": [str(r.suggested)]}}]}
            if score is not None:
                pred["score"] = round(score, 4)
                pred["result"][0]["score"] = round(score, 4)
            task["predictions"] = [pred]
        tasks.append(task)
    return tasks


def defect_book_rules(defect_book_md: Path) -> list[str]:
    """The Definition / Rule lines of a defect book (`- Rule: ...`), blanks (`____`) left as they are."""
    if not defect_book_md.is_file():
        return []
    rules, heading = [], ""
    for line in defect_book_md.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            heading = line[4:].strip()
        m = re.match(r"^- (Definition|Rule): (.*)$", line.strip())
        if m:
            rules.append(f"{heading}: {m.group(1).lower()}: {m.group(2)}" if heading else m.group(2))
    return rules


def label_config(classes: list[str], rules: list[str]) -> str:
    """Label Studio labelling config: the image, what the audit says about it, single choice of class or reject."""
    lines = ["<View>",
             '  <Header value="Pick the class of the image; `reject` when it is unusable (blur, cut off, wrong '
             'exposure, not a product)."/>',
             f'  <Image name="{TO_NAME}" value="$image" zoom="true" zoomControl="true"/>',
             '  <Header value="Given label, the model\'s suggestion, why the audit queued it:" size="6"/>',
             '  <Text name="given" value="$given"/>', '  <Text name="suggested" value="$suggested"/>',
             '  <Text name="reasons" value="$reasons"/>',
             f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single-radio" showInline="true" '
             'required="true">']
    lines += [f"    <Choice value={quoteattr(c)}/>" for c in classes]
    lines += [f'    <Choice value="{REJECT_CHOICE}" hint="unusable image"/>', "  </Choices>"]
    if rules:
        lines.append('  <View style="margin-top: 1em"><Header value="Defect book rules" size="5"/>')
        lines += [f'    <Header value={quoteattr(r)} size="6"/>' for r in rules]
        lines.append("  </View>")
    return "\n".join([*lines, "</View>"]) + "\n"


def write_label_studio(queue: pd.DataFrame, manifest: Manifest, out_dir: str | Path,
                       probs_by_path: Mapping[str, np.ndarray] | None = None,
                       defect_book_md: Path | None = None) -> tuple[Path, Path]:
    """label_studio_tasks.json + label_studio_config.xml in out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(manifest.classes)
    tasks = label_studio_tasks(queue, probs_by_path, classes)
    rules = defect_book_rules(defect_book_md) if defect_book_md else []
    atomic_write_text(out / "label_studio_tasks.json", json.dumps(tasks, indent=1) + "\n")
    atomic_write_text(out / "label_studio_config.xml", label_config(classes, rules))
    return out / "label_studio_tasks.json", out / "label_studio_config.xml"
