"""`inspection slices`: error analysis on slices of a run's predictions (class, meta_*, quality, clusters)."""

from __future__ import annotations

from pathlib import Path

import typer

from inspection.core.errors import InspectionError, user_errors


@user_errors
def slices_cmd(
    predictions: Path = typer.Argument(..., help="evaluate's predictions.csv, or an inspect output (.csv/.jsonl)."),
    manifest: Path = typer.Option(..., "--manifest", help="manifest.csv giving labels and meta_* columns."),
    out: Path = typer.Option(..., "--out", help="Folder for slices.md, slices.csv, slices.png, slices.json."),
    quality: Path | None = typer.Option(None, help="The audit's quality.csv: sharpness/brightness bins, flags."),
    embeddings: Path | None = typer.Option(None, help="Penultimate features (.npy, one row per predictions row)."),
    checkpoint: Path | None = typer.Option(None, help="model.pt: compute its penultimate features for the "
                                                      "clusters (instead of --embeddings)."),
    clusters: int = typer.Option(8, help="k-means clusters of --embeddings / --checkpoint features."),
    min_size: int = typer.Option(20, help="Smallest slice tested (rows)."),
    alpha: float = typer.Option(0.05, help="Flag slices whose corrected p-value is below this."),
    correction: str = typer.Option("bh", help="bh (Benjamini-Hochberg) | holm."),
    conjunctions: bool = typer.Option(True, help="Also test pairs of predicates on different columns."),
    top: int = typer.Option(10, help="Slices shown in slices.md (slices.csv has all)."),
) -> None:
    """Where does the model fail? Per-slice accuracy, macro-F1, escape/overkill with 95% CIs, tested vs the rest, ranked."""
    import numpy as np
    import pandas as pd

    from inspection.curation.review_queue import write_contact_sheet
    from inspection.data.manifest import load_manifest
    from inspection.evaluation.slices import SliceConfig, find_slices
    from inspection.evaluation.slices_report import write_slices_report
    from inspection.evaluation.slices_stats import CORRECTIONS
    from inspection.evaluation.slices_table import add_clusters, build_table, read_predictions

    if embeddings is not None and checkpoint is not None:
        raise InspectionError("give --embeddings or --checkpoint, not both")
    if correction not in CORRECTIONS:
        raise InspectionError(f"--correction must be one of {CORRECTIONS}, got {correction!r}")
    m = load_manifest(manifest)
    q = None
    if quality is not None:
        if not quality.is_file():
            raise InspectionError(f"{quality}: quality.csv not found")
        q = pd.read_csv(quality, dtype={"path": str}, keep_default_na=False)
    table = build_table(read_predictions(predictions), m, str(predictions), q)
    if embeddings is not None:
        if not embeddings.is_file():
            raise InspectionError(f"{embeddings}: embeddings not found")
        add_clusters(table, np.load(embeddings), clusters, source=str(embeddings))
    elif checkpoint is not None:
        from inspection.evaluation.embeddings import penultimate_features
        from inspection.models.checkpoint import load_checkpoint

        feats = penultimate_features(load_checkpoint(checkpoint), [m.abspath(p) for p in table.rows["path"]])
        add_clusters(table, feats, clusters, source=str(checkpoint), per_row=True)
    cfg = SliceConfig(min_size=min_size, alpha=alpha, correction=correction, conjunctions=conjunctions)
    found = find_slices(table, cfg)

    def sheet(paths, captions, png):
        return write_contact_sheet(paths, captions, png, cols=8, tile=112)

    md = write_slices_report(found, table, m, out, str(predictions), sheet, top,
                             settings={"alpha": alpha, "correction": correction, "min_size": min_size,
                                       "conjunctions": conjunctions})
    n_flag = int(found["flagged"].sum())
    head = found.iloc[0]["slice"] if len(found) else "none"
    typer.echo(f"{len(found)} slices, {n_flag} significantly worse than the rest; top: {head} → {md}")


def register(app: typer.Typer) -> None:
    """Add `slices` to the main app."""
    app.command("slices")(slices_cmd)
