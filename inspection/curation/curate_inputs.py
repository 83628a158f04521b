"""curate's input tables, checked before anything is written: a v2 built from a malformed or foreign table would
pass as a clean new version (unknown labels, silently ignored rows)."""

from __future__ import annotations

import pandas as pd

from inspection.core.errors import ManifestError
from inspection.curation.consensus import AGREED, AMBIGUOUS, REJECT, REJECTED, UNLABELLED
from inspection.data.manifest import Manifest

# what curate reads from each table (relabel writes consensus.csv; the audit the other two)
REQUIRED = {"consensus": ["path", "consensus", "status", "votes", "candidates"],
            "quality": ["path", "flags"], "issues": ["path", "is_issue"]}
STATUSES = (AGREED, AMBIGUOUS, REJECTED, UNLABELLED)


def _rows(df: pd.DataFrame, mask: pd.Series, col: str) -> str:
    bad = df.loc[mask]
    shown = ", ".join(f"row {i + 2} ({p}: {v!r})" for i, p, v in zip(bad.index[:5], bad["path"][:5], bad[col][:5]))
    return shown + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")


def check_tables(manifest: Manifest, tables: dict[str, pd.DataFrame | None], sources: dict[str, str]) -> None:
    """ManifestError naming the file, the column or the rows (CSV line numbers) for the first table that is off."""
    known = set(manifest.rows["path"])
    for kind, df in tables.items():
        if df is None:
            continue
        name = sources.get(kind, f"{kind} table")
        missing = [c for c in REQUIRED[kind] if c not in df.columns]
        if missing:
            raise ManifestError(f"{name}: not a {kind} table, missing columns {missing} "
                                f"(has {list(df.columns)[:8]})")
        df = df.reset_index(drop=True)
        foreign = ~df["path"].isin(known)
        if foreign.any():
            raise ManifestError(f"{name}: paths not in {manifest.name}'s manifest: {_rows(df, foreign, 'path')}")
        if kind == "consensus":
            bad_status = ~df["status"].isin(STATUSES)
            if bad_status.any():
                raise ManifestError(f"{name}: status must be one of {', '.join(STATUSES)}: "
                                    f"{_rows(df, bad_status, 'status')}")
            labels = df["consensus"].fillna("").astype(str)
            bad_label = ~labels.isin([*manifest.classes, "", REJECT])
            if bad_label.any():
                raise ManifestError(f"{name}: consensus labels that are not classes ({', '.join(manifest.classes)}): "
                                    f"{_rows(df, bad_label, 'consensus')}")
