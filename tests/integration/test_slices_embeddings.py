"""Slice clusters from the model's own penultimate features (`inspection slices --checkpoint`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import typer
from edge_helpers import make_dataset, train_on_manifest
from typer.testing import CliRunner

from inspection.cli import slices_cmd
from inspection.core.preprocess import load_model_input
from inspection.data.manifest import load_manifest
from inspection.evaluation.embeddings import penultimate_features
from inspection.models.checkpoint import load_checkpoint
from inspection.models.normalize import Normalize


def test_penultimate_features_feed_the_slice_clusters(tmp_path: Path) -> None:
    csv = make_dataset(tmp_path / "ds", n_per_class=8, size=32)
    m = load_manifest(csv)
    ckpt = train_on_manifest(m, csv, tmp_path / "model.pt", steps=10)
    model = load_checkpoint(ckpt)
    paths = [m.abspath(p) for p in m.rows["path"]] + [tmp_path / "missing.png"]
    feats = penultimate_features(model, paths, batch_size=16)
    x = torch.from_numpy(np.stack([load_model_input(p, model.spec) for p in paths[:5]]))
    with torch.inference_mode():
        want = model.net.head[:2](model.net.features(Normalize(model.spec)(x))).numpy()
    assert feats.shape == (len(paths), want.shape[1]) and np.isnan(feats[-1]).all()
    np.testing.assert_allclose(feats[:5], want, rtol=1e-4, atol=1e-5)

    pd.DataFrame({"path": [str(p) for p in paths[:-1]], "label": m.rows["label"],
                  "predicted": m.rows["label"], "error": ""}).to_csv(tmp_path / "pred.csv", index=False)
    app = typer.Typer()
    slices_cmd.register(app)
    app.command("noop")(lambda: None)
    r = CliRunner().invoke(app, ["slices", str(tmp_path / "pred.csv"), "--manifest", str(csv), "--out",
                                 str(tmp_path / "out"), "--checkpoint", str(ckpt), "--clusters", "3",
                                 "--min-size", "5"])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "out" / "slices.json").read_text())
    assert "cluster" in summary["features"] and summary["n_flagged"] == 0  # every prediction right: nothing worse
