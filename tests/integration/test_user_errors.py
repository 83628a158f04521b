"""A user's mistakes end in one `error: <file or key>: <problem>` line and exit 2 — never a traceback, never a
half-made result. (Bad images inside batch jobs are per-row errors: see test_export_edge / test_torch_engine.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer
from edge_helpers import assert_clean_error, small_exported_model
from typer.testing import CliRunner

from inspection.cli.curation_cmds import register
from inspection.data.manifest import load_manifest


def _inspection(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "INSPECTION_ROOT": str(cwd)}
    return subprocess.run([sys.executable, "-m", "inspection.cli.main", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("user_errors")
    return (tmp, *small_exported_model(tmp))


def test_bad_setting_fails_before_any_work(tmp_path):
    r = _inspection(["train", "debug=fast", "optim.lr=fast"], tmp_path)
    assert_clean_error(r, "optim.lr", "expected float", "'fast'")
    assert not (tmp_path / "data").exists()  # the dataset was not generated first
    assert_clean_error(_inspection(["train", "debug=fast", "trainer.max_epochs=2.5"], tmp_path), "trainer.max_epochs")


def test_every_verb_reports_a_bad_setup_through_the_one_shell(small, tmp_path):
    """The dataset preparer's bad `data.prepare.kind` used to escape as a ValueError traceback; config errors of the
    verbs that compose Hydra configs themselves (compare, audit) and a missing file under a typer verb end the same
    way: one `error:` line, exit 2."""
    missing = tmp_path / "nowhere" / "manifest.csv"
    assert_clean_error(_inspection(["train", f"data.manifest={missing}", "data.prepare.kind=bogus"], tmp_path),
                 "data.prepare.kind", "'bogus'")
    assert_clean_error(_inspection(["compare", "compare=nosuchpreset"], tmp_path), "nosuchpreset")
    assert_clean_error(_inspection(["audit", missing, "--out", tmp_path / "a", "audit.nosuchkey=1"], tmp_path),
                 "nosuchkey")
    assert_clean_error(_inspection(["data", "validate", missing], tmp_path), str(missing))
    assert not (tmp_path / "a").exists()


def test_broken_checkpoints_are_named(small, tmp_path):
    _, csv, ckpt, _ = small
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(ckpt.read_bytes()[:1000])
    text = tmp_path / "notes.pt"
    text.write_text("not a model\n")
    for bad in (truncated, text):
        r = _inspection(["export", bad, "--out", tmp_path / "x"], tmp_path)
        assert_clean_error(r, str(bad.name), "not a checkpoint saved by `inspection train`")
        assert "weights_only" not in r.stderr and not (tmp_path / "x").exists()
    r = _inspection(["evaluate", f"checkpoint={truncated}", f"data.manifest={csv}", "split=test"], tmp_path)
    assert_clean_error(r, str(truncated))


def test_inspect_refuses_nothing_to_do_and_unwritable_output(small, tmp_path):
    root, csv, _, onnx = small
    (tmp_path / "empty").mkdir()
    assert_clean_error(_inspection(["inspect", onnx, tmp_path / "empty", "--out", tmp_path / "r.csv"], tmp_path),
                 "no images in", "empty")
    assert not (tmp_path / "r.csv").exists()
    images = load_manifest(csv).image_root
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    assert_clean_error(_inspection(["inspect", onnx, images, "--out", blocker / "r.csv"], tmp_path), "cannot write")
    assert_clean_error(_inspection(["inspect", onnx, images, "--out", tmp_path / "t.csv", "--top-k", "-1"], tmp_path),
                 "--top-k")


def test_curate_rejects_a_foreign_or_malformed_consensus_and_writes_nothing(small, tmp_path):
    _, csv, _, _ = small
    m = load_manifest(csv)
    rows = m.rows[m.rows["split"] != "test"].head(3)
    good = pd.DataFrame({"path": rows["path"], "consensus": rows["label"], "status": "agreed",
                         "votes": "x", "candidates": ""})
    run = CliRunner().invoke
    app = typer.Typer()
    register(app)
    cases = {
        "labels.csv": (good.assign(consensus=["foo", *good["consensus"][1:]]), "not classes", "'foo'"),
        "status.csv": (good.assign(status="maybe"), "status must be one of", "'maybe'"),
        "paths.csv": (pd.concat([good, good.head(1).assign(path="not/there.png")]), "not in", "not/there.png"),
        "columns.csv": (good[["path", "consensus", "status"]], "missing columns", "votes"),
    }
    for name, (table, *expected) in cases.items():
        table.to_csv(tmp_path / name, index=False)
        r = run(app, ["curate", str(csv), "--consensus", str(tmp_path / name), "--out", str(tmp_path / "v2")])
        assert r.exit_code == 2, (name, r.output)
        for text in (name, *expected):
            assert text in r.output, (name, text, r.output)
        assert not (tmp_path / "v2").exists(), name
    good.to_csv(tmp_path / "good.csv", index=False)
    r = run(app, ["curate", str(csv), "--consensus", str(tmp_path / "good.csv"), "--out", str(tmp_path / "v2")])
    assert r.exit_code == 0, r.output
