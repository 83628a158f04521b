"""The edge install on its own: a fresh venv with `inspection[edge,serve]` only (no torch) inspects a folder
(and, in test_serve.py, serves HTTP)."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from edge_helpers import make_dataset, train_on_manifest

from inspection.data.manifest import load_manifest
from inspection.export import export_model

REPO = Path(__file__).resolve().parents[2]


def _edge_venv() -> Path:
    """`.venv-edge/` beside the repo's .venv, rebuilt when pyproject.toml or the package's code changes (the install
    is a copy, not editable; ~1 minute)."""
    venv = REPO / ".venv-edge"
    stamp = venv / ".source-sha256"
    h = hashlib.sha256((REPO / "pyproject.toml").read_bytes())
    for f in sorted((REPO / "inspection").rglob("*.py")):
        h.update(f.read_bytes())
    want = h.hexdigest()
    py = venv / "bin" / "python"
    if not (py.exists() and stamp.exists() and stamp.read_text() == want):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        # A non-editable install of the package itself: the box gets exactly what the wheel ships.
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", f"{REPO}[edge,serve]"], capture_output=True,
                           text=True)
        if r.returncode != 0:
            pytest.fail(f"pip install '.[edge,serve]' failed:\n{r.stderr[-3000:]}")
        stamp.write_text(want)
    return py


@pytest.mark.slow
def test_edge_only_venv_inspects_a_folder(tmp_path):
    py = _edge_venv()
    r = subprocess.run([str(py), "-c", "import importlib.util as u; print([m for m in ('torch', 'ray') "
                        "if u.find_spec(m)])"], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]", f"the edge install pulled in {r.stdout.strip()}"
    csv_path = make_dataset(tmp_path / "data", "pill", n_per_class=4, size=32)
    m = load_manifest(csv_path)
    ckpt = train_on_manifest(m, csv_path, tmp_path / "model.pt", size=32, steps=5)
    report = export_model(ckpt, tmp_path / "export")
    onnx = report.exported.onnx_path
    images = m.image_root
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([str(py), "-m", "inspection.edge", str(onnx), str(images), "--out", str(tmp_path / "r.csv"),
                          "--device", "cpu", "--fail-on", "error"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(m.rows) and all(r["verdict"] in ("OK", "NG", "REVIEW") for r in rows)
    # the installed package is the venv's copy, not this checkout
    where = subprocess.run([str(py), "-c", "import inspection, sys; print(inspection.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert ".venv-edge" in where
    # the training CLI is not installed there: its console script says what to run instead
    cli = subprocess.run([str(py.parent / "inspection"), "--help"], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert cli.returncode != 0 and "python -m inspection.edge" in cli.stderr and "[train]" in cli.stderr
