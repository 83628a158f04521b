"""`inspect --drift-reference`: the run's rows are compared with a reference run and the drift report is written."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import typer
from edge_helpers import make_dataset, train_on_manifest
from typer.testing import CliRunner

from inspection.cli import inspect_cmd
from inspection.data.manifest import load_manifest
from inspection.export import export_model


def test_inspect_writes_a_drift_report_against_a_reference(tmp_path: Path) -> None:
    csv = make_dataset(tmp_path / "ds", n_per_class=8, size=32)
    ckpt = train_on_manifest(load_manifest(csv), csv, tmp_path / "model.pt", steps=30)
    onnx = export_model(ckpt, tmp_path / "fp32").exported.onnx_path
    app = typer.Typer()
    inspect_cmd.register(app)
    app.command("noop")(lambda: None)
    images = csv.parent / "images"
    run = CliRunner().invoke
    ref = run(app, ["inspect", str(onnx), str(images), "--out", str(tmp_path / "ref.csv"), "--device", "cpu",
                    "--quiet"])
    assert ref.exit_code == 0, ref.output
    dark = tmp_path / "dark"
    dark.mkdir()
    for p in sorted(images.rglob("*.png")):
        cv2.imwrite(str(dark / f"{p.parent.name}_{p.name}"), (cv2.imread(str(p)) * 0.3).astype(np.uint8))
    cur = run(app, ["inspect", str(onnx), str(dark), "--out", str(tmp_path / "today.jsonl"), "--device", "cpu",
                    "--quiet", "--drift-reference", str(tmp_path / "ref.csv")])
    assert cur.exit_code == 0, cur.output
    report = json.loads((tmp_path / "today_drift" / "drift.json").read_text())
    assert report["current"]["n"] == report["reference"]["n"] == len(list(images.rglob("*.png")))
    assert (tmp_path / "today_drift" / "drift.html").is_file() and "drift:" in cur.output
    missing = run(app, ["inspect", str(onnx), str(dark), "--out", str(tmp_path / "x.csv"), "--device", "cpu",
                        "--drift-reference", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and not (tmp_path / "x.csv").exists()
