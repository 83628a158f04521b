"""`inspection data ...`: import a source layout, generate a synthetic set, validate a manifest."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import pandas as pd
import typer

from inspection.core.errors import InspectionError, user_errors
from inspection.data.manifest import SPLITS, Manifest, load_manifest
from inspection.data.near_duplicates import NearDupConfig

data_app = typer.Typer(
    help="Datasets: import NEU / MVTec / class folders, generate synthetic sets, validate manifests.",
    no_args_is_help=True,
)


class SourceKind(str, Enum):
    """Source layouts `data import` understands."""

    neu = "neu"
    mvtec = "mvtec"
    folder = "folder"


class SynthKind(str, Enum):
    """Synthetic dataset families."""

    steel = "steel"
    pill = "pill"


def summarize(manifest: Manifest) -> str:
    """Class x split image counts as a small text table, with totals."""
    rows = manifest.rows
    table = pd.crosstab(rows["label"], rows["split"]).reindex(
        index=manifest.classes, columns=list(SPLITS), fill_value=0
    )
    table["total"] = table.sum(axis=1)
    table.loc["total"] = table.sum(axis=0)
    table.index.name, table.columns.name = "class", None
    head = f"{manifest.name}: {len(rows)} images, {len(manifest.classes)} classes, task {manifest.task}"
    extra = []
    if manifest.info.get("skipped"):
        skipped = manifest.info["skipped"]
        extra.append(f"skipped {len(skipped)} unreadable image(s): "
                     + "; ".join(f"{s['path']} ({s['reason']})" for s in skipped[:10])
                     + (f"; … {len(skipped) - 10} more in dataset.json" if len(skipped) > 10 else ""))
    if manifest.labeler_columns():
        extra.append(f"labelers: {', '.join(manifest.labeler_columns())}")
    return "\n".join([head, table.to_string(), *extra])


@data_app.command("import")
@user_errors
def import_cmd(
    kind: SourceKind = typer.Argument(..., help="Source layout."),
    src: Path = typer.Argument(..., help="Source folder."),
    out: Path = typer.Option(
        ..., "--out", help="Output dataset folder (manifest.csv, dataset.json, images/)."
    ),
    seed: int = typer.Option(0, help="Split seed."),
    no_copy: bool = typer.Option(
        False, "--no-copy", help="Reference the source images instead of copying them."
    ),
    ok_class: list[str] | None = typer.Option(
        None, "--ok-class", help="OK class (folder imports; repeatable)."
    ),
    labels_csv: Path | None = typer.Option(None, "--labels-csv", help="Multi-labeler CSV (folder imports)."),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Leave unreadable images out instead of failing."
    ),
    binary: bool = typer.Option(
        False, "--binary", help="MVTec: two classes, good / defect (type kept in meta_defect_type), same split."
    ),
    near_dup_distance: int = typer.Option(
        NearDupConfig.max_distance, "--near-dup-distance", min=-1,
        help="Images within this Hamming distance (of 256 bits; flips, shifts, JPEG and brightness tolerated) share "
             "a split; -1: byte-identical images only.",
    ),
) -> None:
    """Import a source layout into a self-contained dataset folder and print class x split counts."""
    from inspection.data.importers import import_folder, import_mvtec, import_neu

    if kind is not SourceKind.folder and (ok_class or labels_csv):
        raise InspectionError("--ok-class and --labels-csv apply to 'folder' imports only")
    if binary and kind is not SourceKind.mvtec:
        raise InspectionError("--binary applies to 'mvtec' imports only")
    common = {"seed": seed, "copy": not no_copy, "skip_bad": skip_bad,
              "near_dup": NearDupConfig(near_dup_distance) if near_dup_distance >= 0 else None}
    if kind is SourceKind.neu:
        m = import_neu(src, out, **common)
    elif kind is SourceKind.mvtec:
        m = import_mvtec(src, out, binary=binary, **common)
    else:
        m = import_folder(src, out, ok_classes=list(ok_class or []), labels_csv=labels_csv, **common)
    typer.echo(summarize(m))
    near = m.info.get("near_duplicates", {})
    if near.get("clusters"):
        typer.echo(f"near-duplicates: {len(near['clusters'])} cluster(s), "
                   f"{sum(map(len, near['clusters']))} images, each kept in one split (dataset.json)")
    typer.echo(f"wrote {out / 'manifest.csv'}")


@data_app.command("synth")
@user_errors
def synth_cmd(
    kind: SynthKind = typer.Argument(
        ..., help="Synthetic family: steel (6 defect types) or pill (good + defects)."
    ),
    out: Path = typer.Option(..., "--out", help="Output dataset folder."),
    n_per_class: int = typer.Option(60, "--n-per-class", min=1, help="Images per class."),
    size: int = typer.Option(64, "--size", min=16, help="Image side in pixels."),
    seed: int = typer.Option(0, help="Generator and split seed."),
) -> None:
    """Generate a small synthetic dataset (for tests, demos and smoke runs)."""
    from inspection.data.synth import generate_dataset  # lazy: only this command needs the generator

    m = generate_dataset(kind.value, out, n_per_class=n_per_class, size=size, seed=seed)
    typer.echo(summarize(m))
    typer.echo(f"wrote {out / 'manifest.csv'}")


@data_app.command("validate")
@user_errors
def validate_cmd(
    manifest: Path = typer.Argument(..., help="Path to manifest.csv (dataset.json must sit beside it)."),
    check_files: bool = typer.Option(
        True, "--check-files/--no-check-files", help="Check every image file exists (and look for near-duplicates "
                                                     "across splits)."
    ),
    regroup: bool = typer.Option(
        False, "--regroup", help="Rewrite the manifest so no near-duplicate cluster straddles splits: train/val "
                                 "clusters move to one split, train/val copies of test images are dropped; the "
                                 "test split is never changed.",
    ),
    near_dup_distance: int = typer.Option(
        NearDupConfig.max_distance, "--near-dup-distance", min=0, help="Hamming distance (of 256 bits) that counts "
                                                                       "as a near-duplicate."),
) -> None:
    """Validate a manifest, print class x split counts and near-duplicate clusters that straddle splits."""
    m = load_manifest(manifest, check_files=check_files)
    typer.echo(summarize(m))
    if check_files:
        from inspection.cli.near_dup_report import report_straddling

        report_straddling(m, manifest, NearDupConfig(near_dup_distance), regroup)
    elif regroup:
        raise InspectionError("--regroup needs the image files (drop --no-check-files)")
    typer.echo(f"{manifest}: OK")
