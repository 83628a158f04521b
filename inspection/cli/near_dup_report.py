"""`data validate`'s near-duplicate section: clusters that straddle splits, and `--regroup` to fix them."""

from __future__ import annotations

from pathlib import Path

import typer

from inspection.data.leak_check import manifest_clusters, regroup, straddling_clusters
from inspection.data.manifest import Manifest, write_manifest
from inspection.data.near_duplicates import NearDupConfig


def report_straddling(m: Manifest, csv: Path, cfg: NearDupConfig, fix: bool, n_examples: int = 5) -> None:
    """Print the clusters spanning splits (a few in full); with `fix`, regroup and rewrite the manifest atomically."""
    clusters = manifest_clusters(m, cfg)
    bad = straddling_clusters(m, clusters)
    rows = m.rows
    if clusters.lookalike:
        typer.echo(f"near-duplicates: {clusters.lookalike} look-alike images (one cluster over "
                   f"{100 * cfg.max_cluster_share:.0f}% of the set: a uniform product, not copies) are not grouped")
    if not bad:
        typer.echo(f"near-duplicates (distance ≤ {cfg.max_distance}): no cluster straddles splits")
        return
    n_img = sum(map(len, bad))
    with_test = sum(1 for g in bad if (rows["split"].iloc[g] == "test").any())
    typer.echo(f"warning: {len(bad)} near-duplicate cluster(s) ({n_img} images) straddle splits, {with_test} of "
               f"them reaching into test (distance ≤ {cfg.max_distance}):", err=True)
    for g in bad[:n_examples]:
        typer.echo("  " + ", ".join(f"{rows['path'].iloc[i]} ({rows['split'].iloc[i]})" for i in g[:6])
                   + (f" … {len(g) - 6} more" if len(g) > 6 else ""), err=True)
    if len(bad) > n_examples:
        typer.echo(f"  … {len(bad) - n_examples} more cluster(s)", err=True)
    if not fix:
        typer.echo("  `--regroup` moves train/val members so that none does (the test split stays as it is)", err=True)
        return
    r = regroup(m, clusters)
    write_manifest(r.manifest, csv)
    typer.echo(f"regrouped: {len(r.moved)} image(s) moved between train and val, {len(r.dropped)} train/val "
               f"copies of test images dropped (listed in dataset.json info.regrouped); wrote {csv}")
