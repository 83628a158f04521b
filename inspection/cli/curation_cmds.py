"""`inspection simulate-labels | audit | relabel | curate`: the data-centric loop, one verb per step.

Defaults live in conf/labeling/default.yaml and conf/curation/default.yaml; any key can be overridden with extra
`key=value` arguments (`audit.k=3`, `curate.ambiguous_priority=[a,b]`). The composed DictConfig is turned into the
library's plain dataclasses here and goes no further.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from inspection.cli.compose import compose_group
from inspection.cli.typed import to_dataclass
from inspection.core.errors import InspectionError, user_errors

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def _confusion(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    if path.suffix == ".npy":
        return np.load(path)
    data = json.loads(path.read_text())
    if "confusion_matrix" not in data:
        raise InspectionError(f"{path}: no 'confusion_matrix' (expected a metrics.json of `inspection evaluate`)")
    return np.asarray(data["confusion_matrix"])


@user_errors
def simulate_labels_cmd(
    ctx: typer.Context,
    manifest: Path = typer.Argument(..., help="Gold manifest.csv (the dataset's own labels)."),
    out: Path = typer.Option(..., "--out", help="Campaign folder: manifest_gold/v1.csv, hidden_labels.csv, images/."),
    confusion: Path | None = typer.Option(None, help="metrics.json (or .npy) whose confusion matrix picks pairs."),
    seed: int | None = typer.Option(None, help="Campaign seed (labeling.seed)."),
) -> None:
    """Simulate a labelling campaign (K labelers, bad acquisitions) on real images → v1. Overrides: key=value."""
    from inspection.curation.simulate import V1_MANIFEST, LabelingConfig, simulate_campaign
    from inspection.data.manifest import load_manifest

    values = compose_group("labeling", ctx.args + ([f"seed={seed}"] if seed is not None else []))
    cfg = to_dataclass(LabelingConfig, values)
    v1 = simulate_campaign(load_manifest(manifest), cfg, out, _confusion(confusion))
    stats = json.loads((out / "simulation.json").read_text())
    typer.echo(f"v1: {len(v1.rows)} rows, noise {stats['v1_noise_rate']:.1%} against gold, "
               f"{stats['n_bad_acquisitions']} bad acquisitions, pairs {stats['confusable_pairs']}")
    typer.echo(f"wrote {out / V1_MANIFEST} (hidden labels for relabel: {out / 'hidden_labels.csv'})")


@user_errors
def audit_cmd(
    ctx: typer.Context,
    manifest: Path = typer.Argument(..., help="manifest.csv to audit (its train/val labels)."),
    out: Path = typer.Option(..., "--out", help="Audit folder."),
    k: int | None = typer.Option(None, help="Folds (audit.k)."),
    budget: float | None = typer.Option(None, help="Review budget: ≤ 1 share, > 1 count (audit.queue.budget)."),
    probs: Path | None = typer.Option(None, help="Precomputed out-of-fold probabilities (.npy) to skip training."),
    slice_: str | None = typer.Option(None, "--slice", help="Spend the review budget on one slice only, e.g. "
                                                            "'meta_camera=cam2' or 'class=crack & meta_lot=L4'."),
) -> None:
    """Audit labels: agreement, label issues (k-fold + confident learning), quality, review queue, defect book."""
    from inspection.curation.audit import AuditConfig, run_audit

    extra = ([f"audit.k={k}"] if k is not None else []) + ([f"audit.queue.budget={budget}"] if budget is not None else [])
    cfg = to_dataclass(AuditConfig, compose_group("curation", ctx.args + extra)["audit"], "audit.")
    res = run_audit(manifest, out, cfg, np.load(probs) if probs else None, focus=slice_)
    if res.score:
        q = res.score["queue"]
        typer.echo(f"against gold: queue precision {q['precision']:.2f}, recall {q['recall']:.2f}")
    typer.echo(f"open {out / 'audit.md'}, {out / 'review_queue.png'}, {out / 'defect_book.md'}")


@user_errors
def relabel_cmd(
    ctx: typer.Context,
    manifest: Path = typer.Argument(..., help="The audited manifest.csv."),
    labels: Path = typer.Option(..., "--labels", help="hidden_labels.csv (simulation), a filled CSV, or a Label "
                                                      "Studio JSON export."),
    out: Path = typer.Option(..., "--out", help="Folder for consensus.csv and the summary."),
    queue: Path = typer.Option(..., "--queue", help="review_queue.csv from the audit."),
    method: str | None = typer.Option(None, help="auto | majority | cleanlab (relabel.method)."),
    probs: Path | None = typer.Option(None, help="oof_probs.npy from the audit (cleanlab consensus)."),
) -> None:
    """Collect extra labels for the queued images only and form consensus; ties are reported as ambiguous."""

    from inspection.curation.relabel import load_extra_labels, relabel
    from inspection.data.manifest import load_manifest, read_csv_table

    cfg = compose_group("curation", ctx.args + ([f"relabel.method={method}"] if method else []))["relabel"]
    m = load_manifest(manifest)
    if not queue.is_file():
        raise InspectionError(f"{queue}: review queue not found (run `inspection audit` first)")
    q = read_csv_table(queue)
    res = relabel(m, q, load_extra_labels(labels, m), out, cfg["method"], np.load(probs) if probs else None)
    s = res.summary
    typer.echo(f"{s['queued']} queued: {s['agreed']} agreed ({s['label_changed']} changed), {s['ambiguous']} "
               f"ambiguous, {s['rejected']} unusable → {res.consensus_csv}")


@user_errors
def curate_cmd(
    ctx: typer.Context,
    manifest: Path = typer.Argument(..., help="The audited manifest.csv (v1)."),
    out: Path = typer.Option(..., "--out", help="Folder for manifest_<version>.csv and the change log."),
    consensus: Path | None = typer.Option(None, help="consensus.csv from relabel."),
    quality: Path | None = typer.Option(None, help="quality.csv from the audit (removes unusable images)."),
    issues: Path | None = typer.Option(None, help="label_issues.csv from the audit (for prune_unreviewed_issues)."),
    priority: str | None = typer.Option(None, help="Rule for ambiguous images: comma-separated class priority."),
) -> None:
    """Apply consensus, the clarified rule and removals → a new version (test split untouched) + changelog."""

    from inspection.curation.curate import CurationConfig, curate
    from inspection.data.manifest import load_manifest, read_csv_table

    extra = [f"curate.ambiguous_priority=[{priority}]"] if priority else []
    cfg = to_dataclass(CurationConfig, compose_group("curation", ctx.args + extra)["curate"], "curate.")
    tables = []
    for p in (consensus, quality, issues):
        if p is not None and not p.is_file():
            raise InspectionError(f"{p}: not found")
        tables.append(read_csv_table(p) if p is not None else None)
    sources = {k: str(p) for k, p in (("consensus", consensus), ("quality", quality), ("issues", issues)) if p}
    res = curate(load_manifest(manifest), tables[0], cfg, out, tables[1], tables[2], sources)
    s = res.summary
    typer.echo(f"{cfg.version}: relabelled {s['relabelled']}, removed {s['removed']} "
               f"({s['train_val_before']} → {s['train_val_after']} train/val images) → {res.manifest_csv}")


def register(app: typer.Typer) -> None:
    """Add the curation verbs to the main app."""
    app.command("simulate-labels", context_settings=_EXTRA)(simulate_labels_cmd)
    app.command("audit", context_settings=_EXTRA)(audit_cmd)
    app.command("relabel", context_settings=_EXTRA)(relabel_cmd)
    app.command("curate", context_settings=_EXTRA)(curate_cmd)
