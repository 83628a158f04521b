"""A bad run setup ends in one `error:` line and exit 2 before any image is read; verify refuses an edited card
(issue 15, cases 8-11)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch
import typer
from edge_helpers import assert_clean_error, small_exported_model
from tiny_onnx import tiny_card, write_images, write_tiny_onnx
from typer.testing import CliRunner

from inspection.cli import export_cmds
from inspection.core.errors import ManifestError
from inspection.data.manifest import load_manifest
from inspection.edge.inspector import CARD_KEY


def _inspection(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "INSPECTION_ROOT": str(cwd)}
    return subprocess.run([sys.executable, "-m", "inspection.cli.main", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _cli(*args: str | Path):
    """`inspection export|verify` in this process (torch is already loaded: no 5 s interpreter start)."""
    app = typer.Typer()
    export_cmds.register(app)
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_setup")
    return (tmp, *small_exported_model(tmp))


def _edit_card(src: Path, dst: Path, edit) -> Path:
    """A copy of model.onnx whose card (ONNX metadata) was changed by `edit(card_dict)`."""
    model = onnx.load(str(src))
    for prop in model.metadata_props:
        if prop.key == CARD_KEY:
            card = json.loads(prop.value)
            edit(card)
            prop.value = json.dumps(card)
    onnx.save(model, str(dst))
    return dst


def test_verify_compares_the_whole_decision_configuration(exported, tmp_path):
    """A card edited to ok = ng = 1.0 passed verify (and `inspect --fail-on ng` then reported NG 0)."""
    root, csv, ckpt, onnx_path = exported

    def thresholds_to_one(card):
        card["thresholds"].update(ok=1.0, ng=1.0)

    edited = _edit_card(onnx_path, tmp_path / "edited.onnx", thresholds_to_one)
    r = _cli("verify", edited, csv, "--checkpoint", ckpt)
    assert r.exit_code == 1, r.output
    assert "FAILED" in r.output
    assert "thresholds.ng differs: checkpoint 0.5 vs ONNX card 1.0" in r.output
    assert "thresholds.ok differs: checkpoint 0.5 vs ONNX card 1.0" in r.output

    def forget_checkpoint(card):
        card["lineage"]["checkpoint"] = str(tmp_path / "gone.pt")

    lost = _edit_card(onnx_path, tmp_path / "lost.onnx", forget_checkpoint)
    r = _cli("verify", lost, csv)
    assert r.exit_code == 1 and "FAILED" in r.output and "cannot be checked" in r.output, r.output
    r = _cli("verify", onnx_path, csv)
    assert r.exit_code == 0 and "PASSED" in r.output, r.output


def test_every_class_ok_card_is_refused_before_any_image(exported, tmp_path):
    root, csv, _, onnx_path = exported

    def every_class_ok(card):
        card["thresholds"]["ok_classes"] = list(card["class_names"])

    edited = _edit_card(onnx_path, tmp_path / "all_ok.onnx", every_class_ok)
    r = _inspection("inspect", edited, load_manifest(csv).image_root, "--out", tmp_path / "r.csv", cwd=tmp_path)
    assert_clean_error(r, "all_ok.onnx", "names every class")
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("change", [{"preprocess": {"height": 8, "width": 8, "pad_value": 999,
                                                    "resize": "letterbox"}},
                                    {"card_version": "two"}, {"preprocess": []}, {"thresholds": [0.5, 0.5]}])
def test_malformed_card_stops_inspect_before_any_image(tmp_path, change):
    """pad_value 999 made every image an ERROR row with exit 0; the others were tracebacks."""
    model = write_tiny_onnx(tmp_path / "m.onnx", tiny_card(**change))
    write_images(tmp_path / "imgs", 2)
    r = subprocess.run([sys.executable, "-m", "inspection.edge", str(model), str(tmp_path / "imgs"), "--out",
                        str(tmp_path / "r.csv")], capture_output=True, text=True, timeout=120)
    assert_clean_error(r, "m.onnx: malformed model card", next(iter(change)))
    assert not (tmp_path / "r.csv").exists()


def test_checkpoint_with_malformed_thresholds_is_an_error(exported, tmp_path):
    """A model.pt whose `thresholds` is a string ended `export` with an AttributeError traceback."""
    _, _, ckpt, _ = exported
    payload = torch.load(ckpt, weights_only=True)
    payload["thresholds"] = "strict"
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    r = _cli("export", bad, "--out", tmp_path / "x")
    assert r.exit_code == 2 and "error:" in r.output, r.output
    assert "bad.pt" in r.output and "thresholds must be an object" in r.output, r.output
    assert not (tmp_path / "x").exists()


def test_manifest_paths_are_normalised_and_bad_rows_named(exported, tmp_path):
    """`./a/b.png` in test and `a//b.png` in train beside `a/b.png` passed validation: a split leak. A 300-char
    name and an extra field on a row ended in tracebacks."""
    _, csv, _, _ = exported
    header, first, *rest = csv.read_text().splitlines()
    path, tail = first.split(",", 1)
    leak = [header, first, *rest, f"./{path},{tail}", f"{path.replace('/', '//')},{tail}"]
    bad = {
        "leak.csv": (leak, ["duplicate paths", f"./{path}", path.replace("/", "//")]),
        "long.csv": ([header, f"{'x' * 300}.png,{tail}", *rest], ["long.csv", "File name too long", "row 2"]),
        "extra.csv": ([header, first + ",surplus", *rest], ["extra.csv", "row 2 has"]),
    }
    for name, (lines, expected) in bad.items():  # ManifestError: `error:` + exit 2 in every verb's shell
        variant = csv.with_name(name)
        variant.write_text("\n".join(lines) + "\n")
        with pytest.raises(ManifestError) as e:
            load_manifest(variant)
        for text in expected:
            assert text in str(e.value), (name, text, str(e.value))
    assert_clean_error(_inspection("data", "validate", csv.with_name("extra.csv"), cwd=tmp_path), "row 2 has")
