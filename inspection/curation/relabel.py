"""Extra labels for the queued images only, from simulated labelers, a filled CSV or a Label Studio export → consensus.

Every source becomes the same table: index = manifest path, one `labeler_<name>` column per labeler, "" for gaps.
A labeler may answer "unusable" (`_reject`, also spelled reject / unusable) instead of a class.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from inspection.core.errors import ManifestError
from inspection.core.files import atomic_write_text
from inspection.curation.consensus import REJECT, consensus
from inspection.curation.label_issues import trainval_rows
from inspection.data.manifest import LABELER_PREFIX, Manifest, read_csv_table

REJECT_ALIASES = {REJECT, "reject", "unusable", "_unusable"}
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")  # Label Studio prefixes uploaded file names with a short hash


def _normalise(table: pd.DataFrame, classes: list[str], source: str) -> pd.DataFrame:
    """Strip, map reject spellings, prefix columns with labeler_, and refuse unknown labels (naming them)."""
    by_lower: dict[str, list[str]] = {}
    for c in classes:
        by_lower.setdefault(c.lower(), []).append(c)

    def canonical(v: str) -> str:
        if v in classes:
            return v
        if v.lower() in REJECT_ALIASES:
            return REJECT
        same = by_lower.get(v.lower(), [])  # labeling tools often capitalise choices ("Inclusion")
        return same[0] if len(same) == 1 else v

    table = table.fillna("").astype(str).apply(lambda s: s.str.strip().map(canonical))
    table.columns = [c if c.startswith(LABELER_PREFIX) else LABELER_PREFIX + c for c in map(str, table.columns)]
    bad = sorted({v for c in table.columns for v in table[c] if v and v != REJECT and v not in classes})
    if bad:
        raise ManifestError(f"{source}: labels {bad} are not classes {classes} (or '{REJECT}' for unusable)")
    return table


def simulated_labels(hidden_csv: str | Path, manifest: Manifest) -> pd.DataFrame:
    """The simulated labelers' answers (hidden_labels.csv written by simulate_campaign)."""
    p = Path(hidden_csv)
    if not p.is_file():
        raise ManifestError(f"{p}: hidden labels of the simulated campaign not found")
    table = pd.read_csv(p, dtype=str, keep_default_na=False).set_index("path")
    return _normalise(table, list(manifest.classes), str(p))


def read_labels_csv(csv: str | Path, manifest: Manifest) -> pd.DataFrame:
    """A filled CSV: `path` (as in the manifest) + one column per labeler, gaps allowed."""
    p = Path(csv)
    if not p.is_file():
        raise ManifestError(f"{p}: labels CSV not found")
    table = read_csv_table(p)
    table.columns = [str(c).strip() for c in table.columns]
    if "path" not in table.columns:
        raise ManifestError(f"{p}: needs a 'path' column, got {list(table.columns)}")
    table = table.loc[:, [c for c in table.columns if not c.startswith("Unnamed: ")]]
    table["path"] = [str(PurePosixPath(x.replace("\\", "/"))) for x in table["path"]]
    dup = table["path"][table["path"].duplicated()].tolist()
    if dup:
        raise ManifestError(f"{p}: duplicate paths {dup[:5]}")
    known = set(manifest.rows["path"])
    foreign = [x for x in table["path"] if x not in known]
    if foreign:  # a reviewer's label that reaches no image is lost work: say which rows (case, folder, typo)
        raise ManifestError(f"{p}: {len(foreign)} path(s) match no manifest path, e.g. {foreign[:3]}")
    return _normalise(table.set_index("path"), list(manifest.classes), str(p))


def _match_path(ref: str, known: list[str], by_name: dict[str, list[str]]) -> str | None:
    """Manifest path for a Label Studio image reference (URL, upload path or local-files path)."""
    ref = ref.split("?d=")[-1].replace("\\", "/")
    hits = [k for k in known if ref.endswith("/" + k) or ref == k]
    if hits:
        return max(hits, key=len)
    name = PurePosixPath(ref).name
    for cand in (name, _UPLOAD_PREFIX.sub("", name)):
        if len(by_name.get(cand, [])) == 1:
            return by_name[cand][0]
    return None


def read_label_studio(export_json: str | Path, manifest: Manifest) -> pd.DataFrame:
    """A Label Studio JSON export (tasks with data.image and annotations[].result[].value.choices)."""
    p = Path(export_json)
    try:
        tasks = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ManifestError(f"{p}: cannot read Label Studio export ({e})") from None
    if not isinstance(tasks, list):
        raise ManifestError(f"{p}: expected a JSON list of tasks (Label Studio 'JSON' export)")
    known = manifest.rows["path"].tolist()
    by_name: dict[str, list[str]] = {}
    for k in known:
        by_name.setdefault(PurePosixPath(k).name, []).append(k)
    records, unmatched = {}, []
    for t in tasks:
        ref = str((t.get("data") or {}).get("image", ""))
        path = _match_path(ref, known, by_name)
        if path is None:
            unmatched.append(ref)
            continue
        for a in t.get("annotations") or []:
            if a.get("was_cancelled"):
                continue
            who = a.get("completed_by")
            who = (who.get("email", "").split("@")[0] or who.get("id")) if isinstance(who, dict) else who
            choices = [c for r in a.get("result") or [] for c in (r.get("value") or {}).get("choices", [])]
            if choices:
                records.setdefault(path, {})[f"ls{who}" if isinstance(who, int) else str(who)] = choices[0]
    if unmatched:
        raise ManifestError(f"{p}: {len(unmatched)} task image(s) match no manifest path, e.g. {unmatched[:3]}")
    table = pd.DataFrame.from_dict(records, orient="index").fillna("")
    table.index.name = "path"
    return _normalise(table, list(manifest.classes), str(p))


def load_extra_labels(source: str | Path, manifest: Manifest) -> pd.DataFrame:
    """Dispatch on the file: *.json → Label Studio; hidden_labels.csv → simulation; other *.csv → filled CSV."""
    p = Path(source)
    if p.suffix.lower() == ".json":
        table = read_label_studio(p, manifest)
    elif p.name == "hidden_labels.csv":
        table = simulated_labels(p, manifest)
    else:
        table = read_labels_csv(p, manifest)
    if not (table != "").to_numpy().any():  # would pass as "every queued label confirmed"
        raise ManifestError(f"{p}: holds no labels (an empty export?)")
    return table


@dataclass
class RelabelResult:
    """Consensus for the queued images and where it was written."""

    consensus: pd.DataFrame  # path, given, labeler_*..., consensus, status, ...
    summary: dict = field(default_factory=dict)
    consensus_csv: Path | None = None


def relabel(manifest: Manifest, queue: pd.DataFrame, extra: pd.DataFrame, out_dir: str | Path,
            method: str = "auto", probs: np.ndarray | None = None) -> RelabelResult:
    """Votes = labels already in the manifest + extra labels, for queued paths only → consensus.csv + summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = list(dict.fromkeys(queue["path"]))
    rows = manifest.rows.set_index("path")
    unknown = [p for p in paths if p not in rows.index]
    if unknown:
        raise ManifestError(f"queue paths not in the manifest {manifest.name}: {unknown[:5]}")
    cols = manifest.labeler_columns()
    votes = rows.loc[paths, cols].astype(str).replace("nan", "") if cols else pd.DataFrame(index=paths)
    if not cols:  # a plain labelled set: its one label is one vote
        votes[LABELER_PREFIX + "given"] = rows.loc[paths, "label"].astype(str)
    outside = int((~extra.index.isin(paths)).sum())
    add = extra.reindex(paths).fillna("")
    for c in add.columns:
        new = add[c].astype(str)
        old = votes[c] if c in votes else pd.Series("", index=paths)
        votes[c] = np.where(new != "", new, old)  # a fresh look replaces an earlier answer of the same labeler
    probs_q = None
    if probs is not None:
        tv = trainval_rows(manifest)
        idx = pd.Series(np.arange(len(tv)), index=tv["path"])
        probs_q = np.asarray(probs)[idx.reindex(paths).to_numpy()]
    res = consensus(votes.reset_index(drop=True), list(manifest.classes), method, probs_q)
    table = pd.concat([pd.DataFrame({"path": paths, "given": rows.loc[paths, "label"].to_numpy()}),
                       votes.reset_index(drop=True), res], axis=1)
    table["changed"] = (table["status"] == "agreed") & (table["consensus"] != table["given"])
    csv = out / "consensus.csv"
    table.to_csv(csv, index=False)
    counts = table["status"].value_counts().to_dict()
    summary = {
        "method": "majority" if method == "majority" or probs is None else "cleanlab",
        "queued": len(paths), "with_extra_labels": int((add != "").any(axis=1).sum()),
        "extra_labels_outside_queue_ignored": outside, "labelers": [c for c in votes.columns],
        "agreed": int(counts.get("agreed", 0)), "ambiguous": int(counts.get("ambiguous", 0)),
        "rejected": int(counts.get("rejected", 0)), "unlabelled": int(counts.get("unlabelled", 0)),
        "label_changed": int(table["changed"].sum()),
        "ambiguous_paths": table.loc[table["status"] == "ambiguous", "path"].tolist(),
    }
    atomic_write_text(out / "relabel_summary.json", json.dumps(summary, indent=2) + "\n")
    md = [f"# Relabel summary — {manifest.name}", "", f"- queued images: {summary['queued']}",
          f"- with extra labels: {summary['with_extra_labels']} (labelers: {', '.join(summary['labelers'])})",
          f"- agreed: {summary['agreed']}, of which the label changes: {summary['label_changed']}",
          f"- rejected as unusable: {summary['rejected']}",
          f"- **ambiguous (ties, left for a rule or removal): {summary['ambiguous']}**",
          f"- extra labels outside the queue, ignored: {outside}", ""]
    atomic_write_text(out / "relabel_summary.md", "\n".join(md))
    return RelabelResult(table, summary, csv)
