"""`inspection compare` end to end on the demo's preset at a reduced size: arms, report, resume, gold test split,
and the story `make demo` tells (curated labels beat the baseline; a search never lands below it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from inspection.data.manifest import load_manifest

pytestmark = pytest.mark.slow  # about 2 minutes on 2 cores: 9 small trainings (3 audit folds + 6 runs, 2 at once)


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    os.environ["INSPECTION_ROOT"] = str(root)
    try:
        from inspection.cli.compare_cmd import run_compare

        # The demo's preset (conf/compare/demo.yaml) and data, with 2 seeds instead of 3 and a search of one trial:
        # the baseline recipe itself (issue 21: the search starts from it), whose seed-0 run is the baseline's.
        overrides = ["compare=demo", "compare.seeds=[0,1]", "compare.model_centric.n_trials=1"]
        report = run_compare(overrides)
    finally:
        os.environ.pop("INSPECTION_ROOT")
    return root, Path(report["config"]["out_dir"]), report, overrides


def test_report_has_every_arm_and_the_files(compare_run):
    _, out, report, _ = compare_run
    assert list(report["arms"]) == ["baseline", "model_centric", "data_centric", "oracle"]
    for arm in report["arms"].values():
        assert arm["accuracy"]["n"] == 2 and 0.0 <= arm["accuracy"]["mean"] <= 1.0
        assert set(arm["per_class_recall"]) == {"crazing", "inclusion", "patches", "pitted_surface",
                                                "rolled-in_scale", "scratches"}
    for f in ("report.md", "report.json", "compare.png", "flipped.csv", "search/search.json", "slice_deltas.csv"):
        assert (out / f).is_file(), f
    md = (out / "report.md").read_text()
    assert "| data-centric (v2) |" in md and "relabel budget used" in md
    assert json.loads((out / "report.json").read_text())["n_test"] == report["n_test"]
    # every arm's train/val checked against the gold test split: clean here, so no warning on top
    assert set(report["leak_check"]) == set(report["arms"])
    assert all(c["near_duplicates_of_test"] == 0 for c in report["leak_check"].values()) and "leaked" not in md


def test_gold_test_split_identical_across_arms(compare_run):
    _, out, report, _ = compare_run
    s = report["data_centric_summary"]
    tests = [load_manifest(s[k]).split("test")[["path", "label", "sha256"]].sort_values("path").reset_index(drop=True)
             for k in ("gold_csv", "v1_csv", "v2_csv")]
    assert tests[0].equals(tests[1]) and tests[0].equals(tests[2])
    for arm, runs in ((a, v["runs"]) for a, v in report["arms"].items()):
        for r in runs:
            pred = pd.read_csv(Path(r) / "eval_test/predictions.csv")
            assert sorted(Path(p).name for p in pred["path"]) == sorted(Path(p).name for p in tests[0]["path"]), arm


def test_budget_respected_and_curation_changed_labels(compare_run):
    _, _, report, _ = compare_run
    s = report["data_centric_summary"]
    n_trainval = round(s["relabel_budget_used"] / s["relabel_budget_share"])
    assert 0 < s["relabel_budget_used"] <= round(report["config"]["compare"]["relabel_budget"] * n_trainval)
    c = s["curation"]
    assert c["relabelled"] + c["removed"] > 0
    assert c["noise_after"] < c["noise_before"]


def test_rerun_resumes_without_training(compare_run, capsys):
    root, out, report, overrides = compare_run
    from inspection.cli.compare_cmd import run_compare

    os.environ["INSPECTION_ROOT"] = str(root)
    try:
        again = run_compare(overrides)
    finally:
        os.environ.pop("INSPECTION_ROOT")
    text = capsys.readouterr().out
    assert "training" not in text and text.count("done earlier, reusing") == 6  # baseline, data-centric, oracle
    assert "model_centric: same labels and recipe as baseline, its runs" in text
    assert again["arms"]["oracle"]["accuracy"] == report["arms"]["oracle"]["accuracy"]


def test_the_demo_story_curated_labels_beat_the_baseline(compare_run):
    """The ordering `make demo` shows: data-centric above baseline (mean over seeds), oracle at least as good as the
    v1 arms; a search whose only trial is the baseline recipe selects it, so model-centric equals baseline exactly.

    Training is deterministic here (CPU, fixed seeds), so this is no coin toss: a change to the generator, the
    labelling simulation, the audit or curation that loses the data-centric gain fails it. At this reduced size the
    per-seed gain still swings, so the mean is asserted, and the interval only where the demo promises it (3 seeds:
    `make demo`, benchmarks/results/demo_seeds.json)."""
    _, _, report, _ = compare_run
    arms = report["arms"]
    acc = {a: v["accuracy"]["mean"] for a, v in arms.items()}
    assert acc["data_centric"] > acc["baseline"], acc
    gain = arms["data_centric"]["delta_vs_baseline"]
    assert min(gain["values"]) > 0 and gain["mean"] > 0.03, gain  # every seed; measured +7.7 and +9.3 points
    assert acc["oracle"] >= max(acc["baseline"], acc["model_centric"]), acc
    mc = report["model_centric"]
    assert mc["best_is_baseline"] and mc["trials"][0]["baseline"]
    assert arms["model_centric"]["accuracy"]["values"] == arms["baseline"]["accuracy"]["values"]
