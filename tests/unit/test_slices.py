"""Slice analysis: planted slices are found first with intervals that exclude the rest; random metadata flags
nothing beyond the chosen error rate; the statistics agree with their textbook definitions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact

from inspection.data.manifest import Manifest
from inspection.evaluation.metrics import confusion_matrix, per_class_scores
from inspection.evaluation.slices import SliceConfig, find_slices
from inspection.evaluation.slices_stats import adjust_pvalues, macro_f1_boot, worse_than_rest_p
from inspection.evaluation.slices_table import add_clusters, build_table

CLASSES = ["crazing", "inclusion", "patches", "pitted", "rolled", "scratches"]


def make_run(n: int = 600, seed: int = 0, base_err: float = 0.1, planted: dict | None = None,
             classes: list[str] = CLASSES, ok_classes: list[str] | None = None):
    """A manifest with random camera/lot/line metadata and predictions wrong at `base_err`, or at a planted
    error rate inside the rows of `planted` = {"column": ..., "value": ..., "error": ...}."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(classes, n)
    rows = pd.DataFrame({"path": [f"img/{i:04d}.png" for i in range(n)], "label": labels, "split": "test",
                         "sha256": [f"{i:064x}" for i in range(n)],
                         "meta_camera": rng.choice(["cam1", "cam2", "cam3", "cam4"], n),
                         "meta_lot": rng.choice([f"L{i}" for i in range(5)], n),
                         "meta_line": rng.choice(["north", "south"], n)})
    err_rate = np.full(n, base_err)
    if planted:
        err_rate[(rows[planted["column"]] == planted["value"]).to_numpy()] = planted["error"]
    wrong = rng.random(n) < err_rate
    pred = labels.copy()
    for i in np.nonzero(wrong)[0]:
        pred[i] = rng.choice([c for c in classes if c != labels[i]])
    m = Manifest("planted", list(classes), rows, Path("/data/planted"), list(ok_classes or []))
    predictions = pd.DataFrame({"path": [f"/data/planted/{p}" for p in rows["path"]], "label": labels,
                                "predicted": pred, "error": ""})
    return m, predictions


def test_planted_camera_ranks_first_with_an_interval_excluding_the_rest():
    m, pred = make_run(planted={"column": "meta_camera", "value": "cam2", "error": 0.4})
    found = find_slices(build_table(pred, m, "pred.csv"), SliceConfig(n_boot=500))
    top = found.iloc[0]
    assert top["slice"] == "meta_camera=cam2"
    assert top["flagged"] and top["accuracy_hi"] < top["rest_accuracy"] and top["gap_lo"] > 0
    # Nothing else is flagged: no other single slice, and no conjunction (none adds to the camera).
    assert found.loc[found["flagged"], "slice"].tolist() == ["meta_camera=cam2"]


def test_a_conjunction_that_adds_is_flagged_and_its_parents_are_not_needed():
    m, pred = make_run(n=1200, seed=11, base_err=0.08)
    inside = ((m.rows["meta_camera"] == "cam3") & (m.rows["meta_lot"] == "L1")).to_numpy()
    rng = np.random.default_rng(2)
    flip = inside & (rng.random(len(inside)) < 0.6)
    pred.loc[flip, "predicted"] = [next(c for c in CLASSES if c != lab) for lab in pred.loc[flip, "label"]]
    found = find_slices(build_table(pred, m, "pred.csv"), SliceConfig(n_boot=300))
    pair = found[found["slice"] == "meta_camera=cam3 & meta_lot=L1"].iloc[0]
    assert pair["flagged"] and pair["kind"] == "pair"
    assert pair["excess_errors"] >= found[found["kind"] == "pair"]["excess_errors"].max()


def test_mislabelled_lot_is_found_through_the_quality_and_cluster_routes():
    m, pred = make_run(seed=3, planted={"column": "meta_lot", "value": "L3", "error": 0.45})
    lot3 = (m.rows["meta_lot"] == "L3").to_numpy()
    rng = np.random.default_rng(1)
    quality = pd.DataFrame({"path": m.rows["path"], "sharpness": rng.normal(5, 1, len(lot3)) - 3 * lot3,
                            "brightness": rng.normal(100, 5, len(lot3)),
                            "flags": np.where(lot3, "blur", "")})
    m.rows = m.rows.drop(columns="meta_lot")  # the lot is unknown: only image quality and embeddings see it
    table = build_table(pred, m, "pred.csv", quality)
    emb = rng.normal(0, 1, (len(lot3), 16)) + 6 * lot3[:, None]
    add_clusters(table, emb, k=4)
    found = find_slices(table, SliceConfig(n_boot=300))
    flagged = found[found["flagged"] & (found["kind"] == "single")]["slice"].tolist()
    assert "q_blur=yes" in flagged and any(s.startswith("cluster=") for s in flagged)
    # The top slice is one of the lot's proxies: the blur flag, the low-sharpness bin, or the lot's own cluster.
    lot_cluster = table.rows.loc[lot3, "cluster"].mode()[0]
    assert found.iloc[0]["slice"] in {"q_blur=yes", f"cluster={lot_cluster}"} or \
        found.iloc[0]["slice"].startswith("q_sharpness=low")


@pytest.mark.parametrize("correction", ["bh", "holm"])
def test_random_metadata_flags_nothing_beyond_the_error_rate(correction):
    runs = 20
    flagged_runs = 0
    for seed in range(runs):
        m, pred = make_run(n=400, seed=100 + seed, base_err=0.15)
        found = find_slices(build_table(pred, m, "pred.csv"), SliceConfig(n_boot=50, correction=correction))
        flagged_runs += bool(found["flagged"].any())
        assert len(found) > 10  # many slices were tested, so an uncorrected test would flag something
    # alpha = 0.05: at most one run in 20 expected; without the correction nearly every run flags a slice.
    assert flagged_runs <= 3


def test_uncorrected_tests_would_flag_random_slices():
    """The null test above has teeth: the raw p-values fall below 0.05 somewhere in most runs."""
    hits = 0
    for seed in range(10):
        m, pred = make_run(n=400, seed=100 + seed, base_err=0.15)
        found = find_slices(build_table(pred, m, "pred.csv"), SliceConfig(n_boot=20))
        hits += bool((found["p_value"] < 0.05).any())
    assert hits >= 5


def test_okng_escape_and_overkill_per_slice():
    m, pred = make_run(n=300, seed=5, classes=["good", "crack"], ok_classes=["good"])
    table = build_table(pred, m, "pred.csv")
    found = find_slices(table, SliceConfig(n_boot=100, conjunctions=False)).set_index("slice")
    good = table.rows["label"] == "good"
    expect_overkill = (table.rows.loc[good, "predicted"] == "crack").mean()
    assert found.loc["class=good", "overkill"] == pytest.approx(expect_overkill)
    crack = ~good
    assert found.loc["class=crack", "escape"] == pytest.approx((table.rows.loc[crack, "predicted"] == "good").mean())
    assert np.isnan(found.loc["class=good", "escape"])


def test_inspect_rows_use_the_verdict_and_paths_match_by_suffix():
    m, pred = make_run(n=200, seed=7, classes=["good", "crack"], ok_classes=["good"])
    rows = pd.DataFrame({"path": [p.replace("/data/planted/", "../mnt/line3/") for p in pred["path"]],
                         "verdict": np.where(pred["predicted"] == "good", "OK", "NG"),
                         "predicted": pred["predicted"], "p_ng": 0.5, "error": ""})
    rows.loc[0, "verdict"], rows.loc[0, "predicted"], rows.loc[0, "error"] = "ERROR", "", "truncated"
    table = build_table(rows, m, "results.csv")
    assert table.dropped == 1 and len(table.rows) == 199
    assert table.rows["path"].iloc[0] == m.rows["path"].iloc[1]


def test_unknown_paths_are_named():
    m, pred = make_run(n=50)
    pred.loc[3, "path"] = "/elsewhere/nothing.png"
    with pytest.raises(Exception, match="nothing.png"):
        build_table(pred, m, "pred.csv")


def test_statistics_match_their_definitions():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    assert adjust_pvalues(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust_pvalues(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert worse_than_rest_p(9, 20, 15, 180) == pytest.approx(
        fisher_exact([[9, 11], [15, 165]], alternative="greater")[1])
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    f1, lo, hi = macro_f1_boot(y, pred, 4, 300)
    assert f1 == pytest.approx(per_class_scores(confusion_matrix(y, pred, 4))[2].mean())
    assert lo < f1 < hi


def test_cli_writes_report_csv_plot_and_example_sheets(tmp_path):
    import cv2
    import typer
    from typer.testing import CliRunner

    from inspection.cli import slices_cmd
    from inspection.data.manifest import write_manifest

    m, pred = make_run(n=240, seed=4, planted={"column": "meta_camera", "value": "cam2", "error": 0.5})
    root = tmp_path / "data"
    for p in m.rows["path"]:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / p), np.full((8, 8, 3), 90, np.uint8))
    m.image_root = root
    csv = write_manifest(m, root / "manifest.csv")
    pred["path"] = [str(root / p) for p in m.rows["path"]]
    pred.to_csv(tmp_path / "predictions.csv", index=False)
    app = typer.Typer()
    slices_cmd.register(app)
    app.command("noop")(lambda: None)  # a second verb keeps typer from collapsing the app to one command
    r = CliRunner().invoke(app, ["slices", str(tmp_path / "predictions.csv"), "--manifest", str(csv),
                                 "--out", str(tmp_path / "out"), "--min-size", "15"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "out"
    table = pd.read_csv(out / "slices.csv")
    assert table.iloc[0]["slice"] == "meta_camera=cam2" and bool(table.iloc[0]["flagged"])
    md = (out / "slices.md").read_text()
    assert "meta_camera=cam2" in md and (out / "slices.png").stat().st_size > 0
    assert (out / "slices" / "slice_01.png").is_file() and "slices/slice_01.png" in md
    bad = CliRunner().invoke(app, ["slices", str(tmp_path / "missing.csv"), "--manifest", str(csv),
                                   "--out", str(out)])
    assert bad.exit_code == 2 and "missing.csv" in bad.output
