"""`inspection drift`: has the line changed since the reference run? Exit 1 on drift (cron and CI alerts)."""

from __future__ import annotations

from pathlib import Path

import typer

from inspection.core.errors import InspectionError, user_errors


@user_errors
def drift_cmd(
    reference: Path = typer.Argument(..., help="Reference run: evaluate's predictions.csv (validation) or an "
                                               "earlier inspect output (.csv/.jsonl)."),
    current: Path = typer.Argument(..., help="Current inspect output (.csv/.jsonl), rows in time order."),
    out: Path = typer.Option(..., "--out", help="Folder for drift.json and drift.html."),
    chunk: int | None = typer.Option(None, help="Rows per chunk of the current run, in order (default: all)."),
    manifest: Path | None = typer.Option(None, help="Manifest giving labels (true accuracy) and OK classes (p_ng)."),
    image_stats: bool = typer.Option(False, help="Also test image mean/contrast/sharpness, read from the files."),
    alpha: float = typer.Option(0.05, help="False-alarm rate per chunk, shared by its tests."),
    max_drop: float = typer.Option(0.02, help="Tolerated drop of the estimated accuracy before it alarms."),
) -> None:
    """Compare a run with a reference: class/verdict mix, confidence, p_ng, image stats; CBPE accuracy estimate."""
    from inspection.evaluation.drift import DriftConfig

    if chunk is not None and chunk < 20:
        raise InspectionError(f"--chunk {chunk}: too small to test anything (use ≥ 20 rows)")
    report, page = check_drift(reference, current, out, DriftConfig(alpha=alpha, chunk=chunk, max_drop=max_drop),
                               manifest, image_stats)
    n = len(report["chunks"])
    if report["drift"]:
        bad = [c for c in report["chunks"] if c["drift"]]
        typer.echo(f"DRIFT in {len(bad)} of {n} chunk(s), first at rows {bad[0]['start']}–{bad[0]['end'] - 1}: "
                   f"{', '.join(bad[0]['reasons'])} → {page}")
        raise typer.Exit(1)
    typer.echo(f"no drift in {n} chunk(s) → {page}")


def check_drift(reference: Path, current: Path, out: Path, cfg=None, manifest: Path | None = None,
                image_stats: bool = False) -> tuple[dict, Path]:
    """Load both runs, test, write drift.json + drift.html into `out`; (report, html path)."""
    from inspection.data.manifest import load_manifest
    from inspection.evaluation.drift import run_drift
    from inspection.evaluation.drift_inputs import add_image_stats, load_run
    from inspection.evaluation.drift_report import write_drift_report

    m = load_manifest(manifest, check_files=False) if manifest else None
    ref, cur = load_run(reference, m), load_run(current, m)
    if image_stats:
        for df in (ref, cur):
            add_image_stats(df, m.image_root if m else None)
    report = run_drift(ref, cur, cfg)
    report.update(reference_file=str(reference), current_file=str(current))
    return report, write_drift_report(report, ref, cur, out)[1]


def register(app: typer.Typer) -> None:
    """Add `drift` to the main app."""
    app.command("drift")(drift_cmd)
