"""run_audit: agreement + label issues + image quality + review queue + defect book for one manifest.

Writes files a person can open (audit.md, review_queue.csv/.png, defect_book.md, label_issues.csv, quality.csv,
label_studio_tasks.json + label_studio_config.xml for a Label Studio review,
agreement.json) and audit.json for programs. When the manifest comes from a simulated campaign (it carries
`meta_gold`), the audit is also scored: precision and recall of what it flagged against what is truly wrong.
Gold columns are read only by `score_audit`, after everything else is decided.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from inspection.core.errors import ManifestError
from inspection.core.files import atomic_write_text
from inspection.curation.agreement import AgreementReport, agreement_report
from inspection.curation.defect_book import write_defect_book
from inspection.curation.label_issues import Recipe, find_label_issues, out_of_fold_predictions, trainval_rows
from inspection.curation.label_studio import write_label_studio
from inspection.curation.quality import DUPLICATE_FLAGS, QUALITY_FLAGS, QualityConfig, quality_flags
from inspection.curation.review_queue import QueueConfig, budget_count, build_review_queue, write_review_queue
from inspection.data.manifest import Manifest, load_manifest, manifest_hash
from inspection.evaluation.slices import rows_in_slice


@dataclass
class AuditConfig:
    """Everything an audit needs besides the manifest (conf/curation/default.yaml, `audit` block)."""

    k: int = 5  # folds for out-of-fold probabilities
    seed: int = 0
    recipe: Recipe = field(default_factory=Recipe)
    queue: QueueConfig = field(default_factory=QueueConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    n_examples: int = 6  # per class / per pair in the defect book
    n_pairs: int = 3
    cache_dir: str | None = None  # out-of-fold cache; default <out_dir>/oof (share it across runs to reuse)


@dataclass
class AuditResult:
    """What the audit found; `queue` is what `relabel` takes next."""

    out_dir: Path
    manifest: Manifest
    probs: np.ndarray  # aligned with trainval_rows(manifest)
    issues: pd.DataFrame
    quality: pd.DataFrame
    queue: pd.DataFrame
    agreement: AgreementReport | None
    score: dict | None
    summary: dict


def _pr(flagged: set[str], truth: set[str]) -> dict:
    tp = len(flagged & truth)
    return {"n_flagged": len(flagged), "true_positives": tp,
            "precision": tp / len(flagged) if flagged else float("nan"),
            "recall": tp / len(truth) if truth else float("nan")}


def score_audit(manifest: Manifest, issues: pd.DataFrame, quality: pd.DataFrame, queue: pd.DataFrame) -> dict | None:
    """Precision/recall against gold (v1 label ≠ gold, or a bad acquisition); None without `meta_gold`."""
    rows = trainval_rows(manifest)
    if "meta_gold" not in rows.columns:
        return None
    noisy = rows["label"] != rows["meta_gold"]
    bad = rows.get("meta_bad_acquisition", pd.Series([""] * len(rows))).astype(str) != ""
    truth = set(rows.loc[noisy | bad, "path"])
    qf = quality.set_index("path")["flags"].reindex(rows["path"]).fillna("").astype(str)
    q_paths = {p for p, f in qf.items() if set(f.split(";")) & set(QUALITY_FLAGS)}
    return {
        "n_train_val": len(rows), "n_wrong": len(truth), "base_rate": len(truth) / len(rows),
        "n_label_errors": int((noisy & ~bad).sum()), "n_bad_acquisitions": int(bad.sum()),
        "queue": _pr(set(queue["path"]), truth),
        "queue_recall_ceiling": min(1.0, len(queue) / len(truth)) if truth else float("nan"),  # budget-bound
        "label_issues": _pr(set(issues.loc[issues["is_issue"], "path"]), truth),
        "quality_flags": _pr(q_paths, set(rows.loc[bad, "path"])),
        "queue_recall_label_errors": _pr(set(queue["path"]), set(rows.loc[noisy & ~bad, "path"]))["recall"],
        "queue_recall_bad_acquisitions": _pr(set(queue["path"]), set(rows.loc[bad, "path"]))["recall"],
    }


def run_audit(manifest_path: str | Path, out_dir: str | Path, cfg: AuditConfig | None = None,
              probs: np.ndarray | None = None, progress: bool = True, focus: str | None = None) -> AuditResult:
    """Audit a manifest's train/val labels; `probs` (aligned with trainval_rows) skips the k-fold training;
    `focus` (a slice such as `meta_camera=cam2`, see `inspection slices`) spends the review budget there only."""
    cfg = cfg or AuditConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = load_manifest(manifest_path)
    qm = focus_rows(m, focus) if focus else m  # checked before any training
    cols = m.labeler_columns()
    tv = trainval_rows(m)
    agreement = agreement_report(tv[cols].rename(columns=lambda c: c.removeprefix("labeler_")), m.classes) \
        if len(cols) >= 2 else None
    maps = None
    if probs is None:
        probs, maps = out_of_fold_predictions(m, cfg.recipe, cfg.k, cfg.seed, cfg.cache_dir or out / "oof", progress)
    np.save(out / "oof_probs.npy", probs)
    map_of = None
    if maps is not None:  # a defect-map recipe: the review sheets show where each model saw the defect
        np.save(out / "oof_maps.npy", maps)
        map_of = dict(zip(tv["path"], maps, strict=True))
    issues = find_label_issues(m, probs)
    quality = quality_flags(m, cfg.quality)
    queue = build_review_queue(qm, issues, quality, cfg.queue)
    issues.to_csv(out / "label_issues.csv", index=False)
    quality.to_csv(out / "quality.csv", index=False)
    write_review_queue(queue, m, out, cfg.queue.sheet_max, map_of)
    write_defect_book(m, issues, probs, out, quality, cfg.n_examples, cfg.n_pairs, map_of)
    write_label_studio(queue, m, out, dict(zip(tv["path"], probs, strict=True)), out / "defect_book.md")
    if agreement is not None:
        atomic_write_text(out / "agreement.json", json.dumps(agreement.to_dict(), indent=2) + "\n")
    score = score_audit(m, issues, quality, queue)
    split_flags = quality["flags"].astype(str).str.split(";")
    qcount = {f: int(split_flags.map(lambda fl, f=f: f in fl).sum())
              for f in (*QUALITY_FLAGS, *DUPLICATE_FLAGS)}
    summary = {
        "manifest": str(manifest_path), "manifest_hash": manifest_hash(m), "name": m.name,
        "train_val_images": len(tv), "label_issues": int(issues["is_issue"].sum()),
        "quality_flags": qcount, "queued": len(queue),
        "budget": budget_count(cfg.queue.budget, len(trainval_rows(qm))),
        "focus": focus,
        "agreement": agreement.to_dict() if agreement else None, "score": score,
        "config": asdict(cfg),
        "files": ["audit.md", "review_queue.csv", "review_queue.png", "defect_book.md", "label_issues.csv",
                  "quality.csv", "oof_probs.npy", "label_studio_tasks.json", "label_studio_config.xml"]
        + (["agreement.json"] if agreement else []),
    }
    atomic_write_text(out / "audit.json", json.dumps(summary, indent=2, default=_json_default) + "\n")
    atomic_write_text(out / "audit.md", _markdown(summary, agreement))
    if progress:
        print(f"audit: {summary['label_issues']} label issues, {len(queue)} images queued → {out}", flush=True)
    return AuditResult(out, m, probs, issues, quality, queue, agreement, score, summary)


def focus_rows(m: Manifest, focus: str) -> Manifest:
    """The manifest cut to the train/val rows of a slice (test rows kept: leak checks still see them)."""
    try:
        inside = rows_in_slice(m.rows, focus)
    except ValueError as e:
        raise ManifestError(f"audit --slice: {e}") from None
    keep = inside | (m.rows["split"] == "test").to_numpy()
    if not (inside & (m.rows["split"] != "test").to_numpy()).any():
        raise ManifestError(f"audit --slice {focus!r}: no train/val image of {m.name} is in this slice")
    return m.with_rows(m.rows[keep])


def _json_default(o):
    if isinstance(o, float) and np.isnan(o):
        return None
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    return str(o)


def _markdown(s: dict, agreement: AgreementReport | None) -> str:
    lines = [f"# Label audit — {s['name']}", "", f"- train/val images: {s['train_val_images']}",
             f"- label issues (confident learning, out-of-fold): {s['label_issues']}",
             "- quality flags: " + ", ".join(f"{k} {v}" for k, v in s["quality_flags"].items() if v),
             f"- review queue: {s['queued']} images (budget {s['budget']}) → review_queue.csv, review_queue.png",
             "- draft defect book → defect_book.md", ""]
    if agreement is not None:
        lines += ["## Labeler agreement", "", f"- items labelled by two or more: {agreement.n_items}",
                  f"- Fleiss' kappa: {agreement.fleiss_kappa:.3f}",
                  f"- Krippendorff's alpha (nominal): {agreement.krippendorff_alpha:.3f}", "",
                  "| pair | Cohen's kappa | n |", "|---|---|---|"]
        lines += [f"| {p['a']} / {p['b']} | {p['kappa']:.3f} | {p['n']} |" for p in agreement.pairwise]
        lines += ["", "| labeler | accuracy vs consensus | n |", "|---|---|---|"]
        lines += [f"| {k} | {v['accuracy_vs_consensus']:.3f} | {v['n']} |" for k, v in agreement.per_labeler.items()]
        lines.append("")
    sc = s.get("score")
    if sc:
        lines += ["## Score against gold (simulated campaign)", "",
                  f"- wrong in v1: {sc['n_wrong']} of {sc['n_train_val']} ({sc['base_rate']:.1%}): "
                  f"{sc['n_label_errors']} label errors, {sc['n_bad_acquisitions']} bad acquisitions"]
        for k in ("queue", "label_issues", "quality_flags"):
            v = sc[k]
            lines.append(f"- {k}: precision {v['precision']:.2f}, recall {v['recall']:.2f} ({v['n_flagged']} flagged)")
        lines.append("")
    return "\n".join(lines) + "\n"
