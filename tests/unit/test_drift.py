"""Drift: i.i.d. chunks raise few false alarms; a class-mix shift, harder images and darker images are caught;
the label-free accuracy estimate tracks the true accuracy; the CLI exits 1 on drift."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from inspection.evaluation.drift import DriftConfig, chunks, run_drift
from inspection.evaluation.drift_stats import categorical_test, mmd_test, psi

CLASSES = ["crazing", "inclusion", "patches", "pitted", "rolled", "scratches"]


def simulate(n: int, seed: int, hard_share: float = 0.2, mix: list[float] | None = None,
             brightness: float = 120.0) -> pd.DataFrame:
    """A calibrated model: easy images get confident right answers, hard ones unsure and often wrong answers;
    a prediction is right with probability equal to its confidence."""
    rng = np.random.default_rng(seed)
    label = rng.choice(CLASSES, n, p=mix)
    hard = rng.random(n) < hard_share
    conf = np.where(hard, rng.beta(4, 4, n) * 0.6 + 0.3, rng.beta(30, 1.2, n))
    right = rng.random(n) < conf
    pred = np.array([lab if r else rng.choice([c for c in CLASSES if c != lab]) for lab, r in zip(label, right)])
    return pd.DataFrame({"path": [f"img/{seed}_{i}.png" for i in range(n)], "label": label, "predicted": pred,
                         "confidence": conf, "img_mean": rng.normal(brightness, 10, n)})


def test_iid_chunks_raise_few_false_alarms():
    ref = simulate(1000, 0)
    cur = simulate(8000, 1)
    rep = run_drift(ref, cur, DriftConfig(chunk=200))
    assert len(rep["chunks"]) == 40
    assert rep["n_drifted_chunks"] <= 4, [c["reasons"] for c in rep["chunks"] if c["drift"]]


def test_no_multiple_testing_guard_would_alarm_more():
    """The false-alarm test above has teeth: each single test at alpha alone fires on some chunks."""
    ref, cur = simulate(1000, 0), simulate(8000, 1)
    rep = run_drift(ref, cur, DriftConfig(chunk=200, alpha=0.5))
    assert rep["n_drifted_chunks"] >= 10


@pytest.mark.parametrize("change", ["class_mix", "harder", "darker"])
def test_changes_are_detected_at_200_images(change):
    ref = simulate(1000, 0)
    kwargs = {"class_mix": {"mix": [0.4, 0.3, 0.1, 0.1, 0.05, 0.05]}, "harder": {"hard_share": 0.6},
              "darker": {"brightness": 84.0}}[change]
    detected = sum(run_drift(ref, simulate(200, 10 + s, **kwargs))["drift"] for s in range(10))
    assert detected >= 9


def test_cbpe_tracks_true_accuracy_under_shift():
    ref = simulate(2000, 0)
    for hard in (0.1, 0.4, 0.7):
        rep = run_drift(ref, simulate(1000, 5, hard_share=hard))
        perf = rep["chunks"][0]["performance"]
        assert abs(perf["estimate_error"]) < 0.03, (hard, perf)
    assert rep["chunks"][0]["performance"]["drift"]  # 70% hard images: the estimate itself alarms


def test_chunks_in_order_find_where_the_change_starts():
    ref = simulate(1000, 0)
    cur = pd.concat([simulate(500, 1), simulate(500, 2, hard_share=0.7)], ignore_index=True)
    rep = run_drift(ref, cur, DriftConfig(chunk=250))
    assert [c["drift"] for c in rep["chunks"]] == [False, False, True, True]
    assert chunks(pd.DataFrame(index=range(1100)), 500) == [(0, 500), (500, 1100)]


def test_embedding_summaries_are_compared_by_mmd():
    ref, cur = simulate(300, 0), simulate(300, 1)
    rng = np.random.default_rng(0)
    for df, shift in ((ref, 0.0), (cur, 0.7)):
        for k in range(4):
            df[f"emb_{k}"] = rng.normal(shift, 1, len(df))
    rep = run_drift(ref, cur)
    assert rep["chunks"][0]["tests"]["embedding"]["drift"] and rep["chunks"][0]["reasons"] == ["embedding"]


def test_statistics():
    assert psi(np.array([50, 50]), np.array([50, 50])) == pytest.approx(0)
    assert psi(np.array([50, 50]), np.array([80, 20])) == pytest.approx(0.3 * np.log(1.6) - 0.3 * np.log(0.4))
    t = categorical_test(["a"] * 50 + ["b"] * 50, ["a"] * 80 + ["b"] * 20)
    assert t["p_value"] < 0.001 and t["categories"] == ["a", "b"]
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (100, 4))
    assert mmd_test(x, rng.normal(0, 1, (100, 4)), n_perm=100)["p_value"] > 0.05
    assert mmd_test(x, rng.normal(0.8, 1, (100, 4)), n_perm=100)["p_value"] < 0.05


def test_cli_reads_inspect_rows_and_exits_1_on_drift(tmp_path):
    import typer
    from typer.testing import CliRunner

    from inspection.cli import drift_cmd

    ref = simulate(600, 0)
    ref.drop(columns="img_mean").to_csv(tmp_path / "predictions.csv", index=False)

    def inspect_rows(df: pd.DataFrame, path):
        rows = [{"path": r.path, "verdict": "NG", "predicted": r.predicted, "confidence": r.confidence,
                 "p_ng": 1.0, "top_k": [{"class": r.predicted, "prob": r.confidence}], "error": None}
                for r in df.itertuples()]
        rows.append({"path": "broken.png", "verdict": "ERROR", "predicted": None, "confidence": None,
                     "p_ng": None, "top_k": [], "error": "truncated"})
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    inspect_rows(simulate(400, 3), tmp_path / "same.jsonl")
    inspect_rows(simulate(400, 4, hard_share=0.7), tmp_path / "harder.jsonl")
    app = typer.Typer()
    drift_cmd.register(app)
    app.command("noop")(lambda: None)
    run = CliRunner().invoke
    ok = run(app, ["drift", str(tmp_path / "predictions.csv"), str(tmp_path / "same.jsonl"), "--out",
                   str(tmp_path / "a"), "--chunk", "200"])
    assert ok.exit_code == 0, ok.output
    bad = run(app, ["drift", str(tmp_path / "predictions.csv"), str(tmp_path / "harder.jsonl"), "--out",
                    str(tmp_path / "b")])
    assert bad.exit_code == 1 and "DRIFT" in bad.output
    rep = json.loads((tmp_path / "b" / "drift.json").read_text())
    assert rep["current"]["n"] == 400 and rep["reference"]["calibrated"]
    assert "estimated accuracy" in rep["chunks"][0]["reasons"]
    assert "<img src=\"data:image/png;base64," in (tmp_path / "b" / "drift.html").read_text()
    missing = run(app, ["drift", str(tmp_path / "nope.csv"), str(tmp_path / "same.jsonl"), "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "nope.csv" in missing.output


@pytest.mark.parametrize("verb", ["slices", "drift"])
def test_verbs_are_registered_with_help(verb):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "inspection.cli.main", verb, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "--out" in r.stdout and "--manifest" in r.stdout
