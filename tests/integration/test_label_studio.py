"""Label Studio round trip: audit → tasks + config → (reviewers in Label Studio) → export → relabel → consensus."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

from inspection.curation.audit import AuditConfig, run_audit
from inspection.curation.label_issues import trainval_rows
from inspection.curation.label_studio import LOCAL_FILES, defect_book_rules, label_config
from inspection.curation.relabel import load_extra_labels, relabel
from inspection.curation.review_queue import QueueConfig
from inspection.data.importers import import_folder


def _dataset(tmp: Path):
    src = tmp / "src"
    for k, label in enumerate(("good", "crack", "spot")):
        (src / label).mkdir(parents=True)
        for i in range(10):
            rng = np.random.default_rng([i, k])
            img = (120 + rng.normal(0, 8, (32, 32))).clip(0, 255).astype(np.uint8)
            cv2.imwrite(str(src / label / f"{label}_{i}.png"), img)
    return import_folder(src, tmp / "ds", ok_classes=["good"])


def _exported(tasks: list[dict], answer) -> list[dict]:
    """What Label Studio's JSON export holds after review: ids, annotations with results, prediction ids."""
    out = []
    for tid, t in enumerate(tasks, start=1):
        anns = []
        for aid, (who, choice, origin) in enumerate(answer(t), start=1):
            anns.append({"id": tid * 10 + aid, "completed_by": who, "was_cancelled": choice is None,
                         "result": [] if choice is None else [
                             {"value": {"choices": [choice]}, "id": f"r{tid}{aid}", "from_name": "label",
                              "to_name": "image", "type": "choices", "origin": origin}],
                         "ground_truth": False, "created_at": "2026-06-01T10:00:00.000000Z",
                         "updated_at": "2026-06-01T10:00:05.000000Z", "lead_time": 4.2, "prediction": {},
                         "result_count": 0, "task": tid, "project": 3, "parent_prediction": tid,
                         "parent_annotation": None, "last_action": None})
        out.append({"id": tid, "annotations": anns, "drafts": [], "predictions": [tid], "data": t["data"],
                    "meta": {}, "created_at": "2026-06-01T09:00:00.000000Z", "inner_id": tid,
                    "total_annotations": len(anns), "cancelled_annotations": 0, "total_predictions": 1,
                    "project": 3, "updated_by": 1, "comment_authors": [], "file_upload": None})
    return out


def test_audit_to_label_studio_and_back(tmp_path):
    m = _dataset(tmp_path)
    tv = trainval_rows(m)
    probs = np.full((len(tv), 3), 0.1)
    probs[np.arange(len(tv)), tv["label"].map(m.classes.index)] = 0.8
    wrong = np.arange(0, len(tv), 4)  # the model disagrees with every fourth label
    probs[wrong] = 0.1
    probs[wrong, (tv["label"].map(m.classes.index).to_numpy()[wrong] + 1) % 3] = 0.8
    audit = run_audit(tmp_path / "ds" / "manifest.csv", tmp_path / "audit",
                      AuditConfig(queue=QueueConfig(budget=0.5, fill_budget=True)), probs=probs, progress=False)
    tasks = json.loads((tmp_path / "audit" / "label_studio_tasks.json").read_text())
    assert [t["data"]["path"] for t in tasks] == audit.queue["path"].tolist()
    by_path = dict(zip(tv["path"], probs))
    for t in tasks:
        assert t["data"]["image"] == LOCAL_FILES + t["data"]["path"]
        pre = t["predictions"][0]
        choice = pre["result"][0]["value"]["choices"][0]
        assert choice == t["data"]["suggested"]
        assert pre["score"] == round(by_path[t["data"]["path"]][m.classes.index(choice)], 4)
    # The config names what the pre-annotations refer to; the choices are the classes + reject.
    root = ET.fromstring((tmp_path / "audit" / "label_studio_config.xml").read_text())
    choices = root.find("Choices")
    assert choices.get("name") == "label" and choices.get("toName") == "image"
    assert root.find("Image").get("name") == "image" and root.find("Image").get("value") == "$image"
    assert [c.get("value") for c in choices.findall("Choice")] == [*m.classes, "reject"]
    headers = [h.get("value") for h in root.iter("Header")]
    assert any("rule" in h.lower() for h in headers)  # the defect book's Rule lines travel as instructions

    # Reviewer 1 accepts the suggestion; eve calls the first image unusable and skips the second.
    def answer(t):
        first = t["data"]["rank"] == 1
        eve = "reject" if first else (None if t["data"]["rank"] == 2 else t["data"]["suggested"].capitalize())
        return [(1, t["data"]["suggested"], "prediction"), ({"id": 2, "email": "eve@plant.org"}, eve, "manual")]

    (tmp_path / "export.json").write_text(json.dumps(_exported(tasks, answer)))
    extra = load_extra_labels(tmp_path / "export.json", m)
    assert set(extra.columns) == {"labeler_ls1", "labeler_eve"}
    res = relabel(m, audit.queue, extra, tmp_path / "rel")
    c = res.consensus.set_index("path")
    first, second = tasks[0]["data"]["path"], tasks[1]["data"]["path"]
    assert c.loc[first, "labeler_eve"] == "_reject" and c.loc[second, "labeler_eve"] == ""
    others = [t["data"] for t in tasks[2:]]
    agreed_changed = [d["path"] for d in others if d["suggested"] != d["given"]]
    assert agreed_changed and all(c.loc[p, "consensus"] == by for p, by in
                                  ((d["path"], d["suggested"]) for d in others))
    assert res.summary["with_extra_labels"] == len(tasks)


def test_config_escapes_rules_and_class_names(tmp_path):
    book = tmp_path / "defect_book.md"
    book.write_text("### crack\n\n- Definition: a dark line\n- Rule: longer than 2 mm & not a \"scratch\"\n")
    rules = defect_book_rules(book)
    assert rules == ["crack: definition: a dark line", 'crack: rule: longer than 2 mm & not a "scratch"']
    root = ET.fromstring(label_config(["a<b", "good"], rules))
    assert [c.get("value") for c in root.iter("Choice")] == ["a<b", "good", "reject"]
    assert 'crack: rule: longer than 2 mm & not a "scratch"' in [h.get("value") for h in root.iter("Header")]


def test_audit_spends_its_budget_on_a_chosen_slice(tmp_path, monkeypatch):
    import pytest

    from inspection.core.errors import ManifestError

    m = _dataset(tmp_path)
    tv = trainval_rows(m)
    probs = np.full((len(tv), 3), 1 / 3)
    cfg = AuditConfig(queue=QueueConfig(budget=0.5, fill_budget=True))
    a = run_audit(tmp_path / "ds" / "manifest.csv", tmp_path / "audit", cfg, probs=probs, progress=False,
                  focus="class=crack")
    n_crack = int((tv["label"] == "crack").sum())
    assert set(a.queue["given"]) == {"crack"} and len(a.queue) == round(0.5 * n_crack)
    assert a.summary["focus"] == "class=crack" and a.summary["budget"] == round(0.5 * n_crack)
    tasks = json.loads((tmp_path / "audit" / "label_studio_tasks.json").read_text())
    assert {t["data"]["given"] for t in tasks} == {"crack"}

    def no_training(*args, **kwargs):
        raise AssertionError("a bad slice must be refused before any training")

    monkeypatch.setattr("inspection.curation.audit.out_of_fold_predictions", no_training)
    with pytest.raises(ManifestError, match="meta_camera"):
        run_audit(tmp_path / "ds" / "manifest.csv", tmp_path / "a2", cfg, progress=False, focus="meta_camera=c2")
