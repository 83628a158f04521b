"""Curate: consensus labels + the clarified rule for ambiguous images + removals → the next version and its log.

The test split is never touched: curate checks that its rows leave exactly as they came in.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from inspection.core.errors import ConfigError, ManifestError
from inspection.core.files import atomic_write_text
from inspection.curation.consensus import AGREED, AMBIGUOUS, REJECT, REJECTED
from inspection.curation.curate_inputs import check_tables
from inspection.data.manifest import LABELER_PREFIX, REQUIRED_COLUMNS, Manifest, write_manifest

REMOVABLE_FLAGS = ["blur", "underexposed", "overexposed", "cutoff", "unreadable"]


@dataclass
class CurationConfig:
    """What curate may change (conf/curation/default.yaml)."""

    # The clarified rule: when boxes name several defect types (meta_multi_defect) or labelers tie,
    # label = the first class of this list among the candidates. None: no rule written yet.
    ambiguous_priority: list[str] | None = None
    unresolved_ambiguous: str = "remove"  # a tie no rule resolves: "remove" or "keep" (the given label)
    remove_rejected: bool = True  # reviewers called the image unusable
    # Quality-flagged images are removed unless reviewers agreed on a class and none called them unusable.
    remove_quality_flags: list[str] = field(default_factory=lambda: list(REMOVABLE_FLAGS))
    remove_test_duplicates: bool = True  # a byte-identical train/val copy of a test image inflates the test score
    remove_near_test_duplicates: bool = False  # near copies too (dHash; check them first, textures hash alike)
    # Confident learning's label issues that nobody reviewed (beyond the relabel budget): remove them
    # ("prune") instead of training on labels the audit believes are wrong. Needs the audit's issues table.
    prune_unreviewed_issues: bool = False
    version: str = "v2"


@dataclass
class CurationResult:
    """The new version, what changed and where it was written."""

    manifest: Manifest
    changes: pd.DataFrame  # path, action (relabel/remove), from, to, reason, why
    summary: dict
    manifest_csv: Path


def _rule(candidates: list[str], priority: list[str] | None) -> str | None:
    if not priority:
        return None
    return next((c for c in priority if c in candidates), None)


def curate(manifest: Manifest, consensus: pd.DataFrame | None, cfg: CurationConfig | None, out_dir: str | Path,
           quality: pd.DataFrame | None = None, issues: pd.DataFrame | None = None,
           sources: dict[str, str] | None = None) -> CurationResult:
    """Apply consensus, rule and removals to train/val rows → `<out_dir>/manifest_<version>.csv` + changelog."""
    cfg = cfg or CurationConfig()
    bad = [c for c in cfg.ambiguous_priority or [] if c not in manifest.classes]
    if bad:
        raise ManifestError(f"ambiguous_priority names unknown classes {bad} (classes: {manifest.classes})")
    if cfg.unresolved_ambiguous not in ("remove", "keep"):
        raise ConfigError(f"unresolved_ambiguous must be 'remove' or 'keep', got {cfg.unresolved_ambiguous!r}")
    check_tables(manifest, {"consensus": consensus, "quality": quality, "issues": issues}, sources or {})
    rows = manifest.rows.copy()
    cons = consensus.set_index("path") if consensus is not None else pd.DataFrame()
    flags = (quality.set_index("path")["flags"].fillna("").astype(str).to_dict() if quality is not None else {})
    if cfg.prune_unreviewed_issues and issues is None:
        raise ConfigError("prune_unreviewed_issues needs the audit's label issues (label_issues.csv)")
    flagged = set()
    if issues is not None:
        flagged = set(issues.loc[issues["is_issue"].astype(str).isin(["True", "true", "1"]), "path"])
    changes, drop = [], set()

    def log(path: str, action: str, old: str, new: str, reason: str, why: str) -> None:
        changes.append({"path": path, "action": action, "from": old, "to": new, "reason": reason, "why": why})

    def remove(i: int, reason: str, why: str) -> None:
        drop.add(i)
        log(rows.at[i, "path"], "remove", rows.at[i, "label"], "", reason, why)

    for i, r in rows.iterrows():
        if r["split"] == "test":
            continue
        path, given = r["path"], r["label"]
        c = cons.loc[path] if path in cons.index else None
        status = c["status"] if c is not None else ""
        f = set(flags.get(path, "").split(";")) - {""}
        if cfg.remove_rejected and status == REJECTED:
            remove(i, "rejected", f"reviewers: unusable ({c['votes']})")
            continue
        bad_q = sorted(f & set(cfg.remove_quality_flags))
        vouched = status == AGREED and REJECT not in str(c["votes"])  # everyone who looked saw a usable image
        if bad_q and not vouched:
            remove(i, "quality", f"{', '.join(bad_q)}; not vouched for by the reviewers")
            continue
        if cfg.remove_test_duplicates and "duplicate_of_test" in f:
            remove(i, "test_duplicate", "byte-identical copy of a test image")
            continue
        if cfg.remove_near_test_duplicates and "near_duplicate_of_test" in f and status != AGREED:
            remove(i, "test_duplicate", "near copy of a test image")
            continue
        multi = str(r.get("meta_multi_defect", "")) == "1"
        if multi or status == AMBIGUOUS:
            cands = str(r.get("meta_box_classes", "")).split("|") if multi else str(c["candidates"]).split("|")
            new = _rule(cands, cfg.ambiguous_priority)
            if new is not None:
                if new != given:
                    rows.at[i, "label"] = new
                    log(path, "relabel", given, new, "rule", f"priority among {'|'.join(sorted(cands))}")
                continue
            if status == AMBIGUOUS:
                if cfg.unresolved_ambiguous == "remove":
                    remove(i, "tie", f"labelers tie ({c['votes']}), no rule")
                continue
        if status == AGREED and c["consensus"] not in ("", REJECT) and c["consensus"] != given:
            rows.at[i, "label"] = c["consensus"]
            log(path, "relabel", given, c["consensus"], "consensus", f"votes {c['votes']}")
        elif cfg.prune_unreviewed_issues and c is None and path in flagged:
            remove(i, "unreviewed_issue", "confident learning: label likely wrong, not reviewed")

    # The reviewers' votes stay visible in v2's labeler columns (an "unusable" vote is not a class: left blank).
    vote_cols = [x for x in cons.columns if x.startswith(LABELER_PREFIX)]
    kept = rows["path"].isin(cons.index) & ~rows.index.isin(drop)
    for col in vote_cols:
        if col not in rows.columns:
            rows[col] = ""
        v = cons.loc[rows.loc[kept, "path"], col].astype(str).replace(REJECT, "").to_numpy()
        rows.loc[kept, col] = v
    new_rows = rows.drop(index=sorted(drop)).reset_index(drop=True)
    _check_test_untouched(manifest.rows, new_rows)
    v2 = manifest.with_rows(new_rows)
    out = Path(out_dir)
    csv = write_manifest(v2, out / f"manifest_{cfg.version}.csv")
    table = pd.DataFrame(changes, columns=["path", "action", "from", "to", "reason", "why"])
    summary = _summary(manifest, v2, table, cfg)
    atomic_write_text(out / "changelog.json", json.dumps({"summary": summary, "changes": changes}, indent=2) + "\n")
    atomic_write_text(out / "changelog.md", _markdown(summary, table, manifest.name))
    return CurationResult(v2, table, summary, csv)


def _check_test_untouched(before: pd.DataFrame, after: pd.DataFrame) -> None:
    cols = list(REQUIRED_COLUMNS)
    a = before.loc[before["split"] == "test", cols].reset_index(drop=True)
    b = after.loc[after["split"] == "test", cols].reset_index(drop=True)
    if not a.equals(b):
        raise AssertionError("curation changed the test split; this is a bug")


def _summary(v1: Manifest, v2: Manifest, table: pd.DataFrame, cfg: CurationConfig) -> dict:
    tv1, tv2 = (m.rows[m.rows["split"] != "test"] for m in (v1, v2))
    s = {
        "version": cfg.version, "config": asdict(cfg), "train_val_before": len(tv1), "train_val_after": len(tv2),
        "relabelled": int((table["action"] == "relabel").sum()), "removed": int((table["action"] == "remove").sum()),
        "by_reason": {f"{a} ({r})": int(n) for (a, r), n in table.groupby(["action", "reason"]).size().items()},
    }
    if "meta_gold" in tv1.columns:  # simulated campaign: how much noise is left
        s["noise_before"] = float((tv1["label"] != tv1["meta_gold"]).mean())
        s["noise_after"] = float((tv2["label"] != tv2["meta_gold"]).mean()) if len(tv2) else 0.0
        if "meta_bad_acquisition" in tv1.columns:
            s["bad_acquisitions_left"] = int((tv2["meta_bad_acquisition"].astype(str) != "").sum())
    return s


def _markdown(s: dict, table: pd.DataFrame, name: str) -> str:
    lines = [f"# Change log — {name} {s['version']}", "",
             f"- train/val images: {s['train_val_before']} → {s['train_val_after']}",
             f"- relabelled: {s['relabelled']}", f"- removed: {s['removed']}", "- test split: unchanged", ""]
    if "noise_before" in s:
        lines += [f"- label noise against gold (simulation): {s['noise_before']:.1%} → {s['noise_after']:.1%}", ""]
    lines += ["| action (reason) | n |", "|---|---|", *[f"| {k} | {v} |" for k, v in s["by_reason"].items()], ""]
    lines += ["| path | action | from | to | reason | details |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['path']} | {r['action']} | {r['from']} | {r['to']} | {r['reason']} | {r['why']} |"
              for r in table.head(500).to_dict("records")]
    if len(table) > 500:
        lines.append(f"\n… {len(table) - 500} more in changelog.json")
    return "\n".join(lines) + "\n"
