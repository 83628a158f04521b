"""The data-centric loop in one call: simulate (or take) labels → audit → relabel within a budget → curate → v2.

Each step's outputs are files; a step whose outputs exist is skipped, so an interrupted compare resumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from inspection.core.files import atomic_write_text
from inspection.curation.audit import AuditConfig, run_audit
from inspection.curation.curate import CurationConfig, curate
from inspection.curation.relabel import relabel, simulated_labels
from inspection.curation.simulate import (
    GOLD_MANIFEST,
    HIDDEN_LABELS,
    V1_MANIFEST,
    LabelingConfig,
    simulate_campaign,
)
from inspection.data.manifest import Manifest

DONE = "data_centric.json"


@dataclass
class DataCentricResult:
    """The three labelled versions (same images, same gold test split) and what the loop did."""

    gold_csv: Path
    v1_csv: Path
    v2_csv: Path
    summary: dict


def run_data_centric(gold: Manifest, out_dir: str | Path, labeling: LabelingConfig, audit: AuditConfig,
                     curation: CurationConfig, relabel_method: str = "auto",
                     progress=print) -> DataCentricResult:
    """Simulated campaign on `gold`'s images, then the audit → relabel → curate loop; resumable."""
    out = Path(out_dir)
    camp = out / "campaign"
    done = out / DONE
    if done.is_file():
        s = json.loads(done.read_text())
        progress(f"[data-centric] reusing {out} (v1 → v2 done earlier)")
        return DataCentricResult(Path(s["gold_csv"]), Path(s["v1_csv"]), Path(s["v2_csv"]), s)
    if not (camp / V1_MANIFEST).is_file():
        progress(f"[data-centric] simulating a labelling campaign ({labeling.n_labelers} labelers) → {camp}")
        simulate_campaign(gold, labeling, camp)
    progress("[data-centric] audit: out-of-fold predictions, label issues, quality flags, review queue")
    a = run_audit(camp / V1_MANIFEST, out / "audit", audit, progress=True)
    progress(f"[data-centric] relabel: {len(a.queue)} queued images asked again")
    extra = simulated_labels(camp / HIDDEN_LABELS, a.manifest)
    r = relabel(a.manifest, a.queue, extra, out / "relabel", method=relabel_method, probs=a.probs)
    progress("[data-centric] curate: consensus labels, the clarified rule, removals → v2")
    c = curate(a.manifest, r.consensus, curation, camp, quality=a.quality, issues=a.issues)
    n_trainval = int(a.manifest.rows["split"].isin(["train", "val"]).sum())
    summary = {
        "gold_csv": str(camp / GOLD_MANIFEST), "v1_csv": str(camp / V1_MANIFEST), "v2_csv": str(c.manifest_csv),
        "relabel_budget_used": len(a.queue), "relabel_budget_share": len(a.queue) / max(1, n_trainval),
        "audit_vs_gold": a.score, "curation": c.summary, "relabel": r.summary,
        "audit_dir": str(out / "audit"), "changelog": str(camp),
    }
    atomic_write_text(done, json.dumps(summary, indent=2, default=str) + "\n")
    return DataCentricResult(camp / GOLD_MANIFEST, camp / V1_MANIFEST, c.manifest_csv, summary)


def load_data_centric(campaign_dir: str | Path, audit_dir: str | Path, relabel_dir: str | Path,
                      curated_dir: str | Path) -> DataCentricResult:
    """The loop's results from the folders an earlier run wrote, e.g. the DVC pipeline's labels → audit →
    relabel → curate stages, so that `compare` trains on exactly the label sets the pipeline versioned."""
    camp, audit, relabel_d, cur = (Path(p) for p in (campaign_dir, audit_dir, relabel_dir, curated_dir))
    need = {camp / GOLD_MANIFEST: "the campaign's gold manifest", camp / V1_MANIFEST: "label set v1",
            audit / "audit.json": "the audit's summary", relabel_d / "relabel_summary.json": "the relabel summary",
            cur / "changelog.json": "the curation change log"}
    missing = [f"{p} ({what})" for p, what in need.items() if not p.is_file()]
    if missing:
        raise FileNotFoundError("label sets: missing " + "; ".join(missing))
    a = json.loads((audit / "audit.json").read_text())
    changelog = json.loads((cur / "changelog.json").read_text())["summary"]
    v2 = cur / f"manifest_{changelog.get('version', 'v2')}.csv"
    if not v2.is_file():
        raise FileNotFoundError(f"label sets: missing {v2} (the curated label set {cur}/changelog.json describes)")
    summary = {
        "gold_csv": str(camp / GOLD_MANIFEST), "v1_csv": str(camp / V1_MANIFEST), "v2_csv": str(v2),
        "relabel_budget_used": int(a["queued"]),
        "relabel_budget_share": int(a["queued"]) / max(1, int(a["train_val_images"])),
        "audit_vs_gold": a.get("score"), "curation": changelog,
        "relabel": json.loads((relabel_d / "relabel_summary.json").read_text()),
        "audit_dir": str(audit), "changelog": str(cur), "label_sets_from": "earlier run (compare label_sets=...)",
    }
    return DataCentricResult(camp / GOLD_MANIFEST, camp / V1_MANIFEST, v2, summary)
