"""Issue 21: a user's second dataset never gets the first one's results, and a degenerate model is called out.

Generated class-folder datasets (tiny images), two in a row through import, train, compare and evaluate; a model
that answers "OK" for everything through evaluate, export (int8 gate) and verify.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspection.data.manifest import load_manifest

TILES = ["Free", "oxide scale of plate system", "oxide scale of temperature system"]
STEEL = ["good", "crack", "pit", "scratch"]


def make_folder(root: Path, classes: list[str], n: int = 10, size: int = 20, seed: int = 0) -> Path:
    """src/<class>/<i>.png: each class its own brightness and stripe, so a short run can tell them apart."""
    rng = np.random.default_rng(seed)
    for k, c in enumerate(classes):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = np.full((size, size, 3), 40 + 50 * k, np.uint8)
            img[:, (3 * k) % size] = 250
            img = np.clip(img + rng.integers(0, 30, img.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / c / f"{seed}_{i:03d}.png"), img)
    return root


@pytest.fixture()
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("INSPECTION_ROOT", str(tmp_path / "work"))
    (tmp_path / "work").mkdir()
    return tmp_path


def _prepare(overrides: list[str]) -> Path:
    from inspection.cli.compose import compose_train
    from inspection.cli.config import prepare_dataset

    return prepare_dataset(compose_train(["data=folder", *overrides]).data)


def test_data_prepare_src_imports_each_dataset_and_checks_ok_classes(root) -> None:
    from inspection.core.errors import InspectionError

    steel = make_folder(root / "steel", STEEL, n=6, seed=1)
    tiles = make_folder(root / "tiles", TILES, n=5, seed=2)
    first = load_manifest(_prepare([f"data.prepare.src={steel}", "data.prepare.ok_classes=[good]"]))
    assert first.classes == sorted(STEEL) and len(first.rows) == 24
    csv = _prepare([f"data.prepare.src={tiles}", "data.prepare.ok_classes=[Free]"])
    second = load_manifest(csv)
    assert second.classes == TILES and second.ok_classes == ["Free"] and len(second.rows) == 15
    assert not (csv.parent / "images" / "good").exists()  # the first import's images are gone, not mixed in
    stamp = csv.stat().st_mtime_ns
    assert _prepare([f"data.prepare.src={tiles}", "data.prepare.ok_classes=[Free]"]) == csv
    assert csv.stat().st_mtime_ns == stamp  # same inputs: reused, not imported again
    with pytest.raises(InspectionError, match="Nope"):
        _prepare([f"data.prepare.src={tiles}", "data.prepare.ok_classes=[Nope]"])
    cv2.imwrite(str(tiles / "Free" / "extra.png"), np.zeros((20, 20, 3), np.uint8))  # the source changed
    assert len(load_manifest(_prepare([f"data.prepare.src={tiles}", "data.prepare.ok_classes=[Free]"])).rows) == 16


def test_a_manifest_made_by_someone_else_from_another_source_is_refused(root) -> None:
    from inspection.core.errors import InspectionError
    from inspection.data.importers import import_folder

    steel = make_folder(root / "steel", STEEL, n=5, seed=1)
    tiles = make_folder(root / "tiles", TILES, n=5, seed=2)
    import_folder(steel, root / "work" / "data" / "folder")  # `inspection data import folder`: no stamp
    with pytest.raises(InspectionError, match="imported from .*steel"):
        _prepare([f"data.prepare.src={tiles}"])


def test_a_dataset_recorded_inside_the_source_tree_is_the_same_import(root) -> None:
    """NEU records <src>/IMAGES as its source: a derived manifest (compare's campaign, a curated v2) with that
    dataset.json is reused when data.prepare.src names the tree (compare data=neu failed here in its search)."""
    from inspection.data.importers import import_folder

    tree = root / "tree"
    make_folder(tree / "IMAGES", STEEL, n=5, seed=1)
    import_folder(tree / "IMAGES", root / "work" / "data" / "folder")
    manifest = _prepare([f"data.prepare.src={tree}"])
    assert manifest == root / "work" / "data" / "folder" / "manifest.csv"


def test_folder_import_leaves_masks_out_with_a_warning(tmp_path, caplog) -> None:
    from inspection.data.importers import import_folder

    src = make_folder(tmp_path / "src", ["good", "crack"], n=4)
    for f in sorted((src / "crack").glob("*.png")):
        cv2.imwrite(str(f.with_name(f.stem + "_mask.png")), np.zeros((20, 20), np.uint8))
    (src / "ground_truth" / "crack").mkdir(parents=True)
    cv2.imwrite(str(src / "ground_truth" / "crack" / "000_mask.png"), np.zeros((20, 20), np.uint8))
    with caplog.at_level(logging.WARNING):
        m = import_folder(src, tmp_path / "out", ok_classes=["good"])
    assert m.classes == ["crack", "good"] and len(m.rows) == 8
    assert not any("_mask" in p for p in m.rows["path"])
    assert "4 mask file(s) left out" in caplog.text and "ground_truth: holds only masks" in caplog.text


def _constant_ok_checkpoint(manifest: Path, out: Path) -> Path:
    """A tiny CNN whose last layer is zero with a bias on the OK class: 'good' for every image."""
    import torch

    from inspection.core.postprocess import Thresholds
    from inspection.core.preprocess import PreprocessSpec
    from inspection.models.checkpoint import save_checkpoint
    from inspection.models.factory import create_backbone

    m = load_manifest(manifest)
    net = create_backbone("tiny_cnn", len(m.classes), 3)
    last = net.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([3.0 if c in m.ok_classes else 0.0 for c in m.classes]))
    spec = PreprocessSpec(16, 16, 3, (0.5,) * 3, (0.25,) * 3)
    extra = {"dataset": {"name": m.name, "manifest": str(manifest.resolve())}}
    return save_checkpoint(out, net, "tiny_cnn", m.classes, spec, Thresholds(tuple(m.ok_classes)), extra)


def test_constant_model_is_called_out_by_evaluate_export_and_verify(tmp_path) -> None:
    from inspection.data.importers import import_folder
    from inspection.evaluation.evaluate import evaluate_checkpoint
    from inspection.export.gated_export import export_model
    from inspection.export.verify import verify_model

    src = make_folder(tmp_path / "src", STEEL, n=20)
    manifest = tmp_path / "data" / "manifest.csv"
    import_folder(src, manifest.parent, ok_classes=["good"])
    ckpt = _constant_ok_checkpoint(manifest, tmp_path / "model.pt")
    m = evaluate_checkpoint(ckpt, manifest, "test", tmp_path / "eval")
    assert m["okng"]["escape_rate"] == 1.0 and any("predicts 'good'" in w for w in m["warnings"])
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["warnings"] == m["warnings"]
    report = export_model(ckpt, tmp_path / "onnx", "int8", manifest, calibration_limit=8)
    assert report.accepted  # the gate compares the model with itself: it passes, and must not pass silently
    assert "WARNING: degenerate model" in report.to_text()
    card = json.loads((tmp_path / "onnx" / "model.json").read_text())
    assert any("predicts 'good'" in w for w in card["metrics"]["warnings"])
    v = verify_model(tmp_path / "onnx" / "model.onnx", manifest, split="test")
    text = v.to_text()
    assert v.warnings and "WARNING: degenerate model" in text and "escape 100.0%" in text, text


def test_int8_gate_override_is_recorded_in_the_card(tmp_path, monkeypatch) -> None:
    import inspection.export.gated_export as ge
    from inspection.data.importers import import_folder
    from inspection.export.quantize import precision_gate

    src = make_folder(tmp_path / "src", STEEL, n=10)
    manifest = tmp_path / "data" / "manifest.csv"
    import_folder(src, manifest.parent, ok_classes=["good"])
    ckpt = _constant_ok_checkpoint(manifest, tmp_path / "model.pt")

    def strict(*args, **kwargs):  # a gate nothing passes: one accuracy point is too many
        return precision_gate(*args, **kwargs, max_accuracy_drop_pt=-1.0)

    monkeypatch.setattr(ge, "precision_gate", strict)
    rejected = ge.export_model(ckpt, tmp_path / "a", "int8", manifest, calibration_limit=8)
    assert not rejected.accepted and not (tmp_path / "a" / "model.onnx").exists()
    kept = ge.export_model(ckpt, tmp_path / "b", "int8", manifest, calibration_limit=8,
                           override_gate="small validation set; checked by hand on 200 line images")
    assert kept.accepted and "gate OVERRIDDEN: small validation set" in kept.to_text()
    gate = json.loads((tmp_path / "b" / "model.json").read_text())["metrics"]["gate"]
    assert gate["override"].startswith("small validation set") and not gate["passed"] and gate["reasons"]


def test_lightning_ctrl_c_reaches_the_caller_as_keyboard_interrupt(tmp_path, monkeypatch) -> None:
    from inspection.core.preprocess import PreprocessSpec
    from inspection.data.datamodule import DataConfig
    from inspection.data.importers import import_folder
    from inspection.models.classifier import DefectClassifier
    from inspection.training.fit import ModelConfig, OptimConfig, TrainerConfig, fit_classifier

    src = make_folder(tmp_path / "src", STEEL, n=6)
    import_folder(src, tmp_path / "data")

    def interrupted(self, batch, idx):
        raise KeyboardInterrupt

    monkeypatch.setattr(DefectClassifier, "training_step", interrupted)
    data = DataConfig(manifest=str(tmp_path / "data" / "manifest.csv"), spec=PreprocessSpec(16, 16, 3), batch_size=8)
    with pytest.raises(KeyboardInterrupt):  # Lightning alone: SystemExit(1), and the Optuna trial stays RUNNING
        fit_classifier(data, ModelConfig("tiny_cnn"), OptimConfig(), TrainerConfig(max_epochs=1, accelerator="cpu",
                       enable_progress_bar=False), tmp_path / "run")


def test_compare_ctrl_c_says_so_and_exits_130(monkeypatch) -> None:
    from typer.testing import CliRunner

    import inspection.cli.compare_cmd as cc
    from inspection.cli.main import app

    def interrupted(overrides):
        raise KeyboardInterrupt

    monkeypatch.setattr(cc, "run_compare", interrupted)
    r = CliRunner().invoke(app, ["compare", "compare=tiny"])
    assert r.exit_code == 130 and "interrupted (Ctrl-C)" in r.output and "resume" in r.output


FAST = ["debug=fast", "model=tiny_cnn", "data.image_size=16", "data.batch_size=8", "trainer.max_epochs=1"]


@pytest.mark.slow
def test_two_folder_datasets_in_a_row_train_and_evaluate(root, capsys) -> None:
    from inspection.cli.compose import compose_train
    from inspection.cli.hydra_entry import run_train
    from inspection.core.errors import InspectionError

    steel = make_folder(root / "steel", STEEL, n=6, seed=1)
    tiles = make_folder(root / "tiles", TILES, n=8, seed=2)
    work = root / "work"

    def train(src: Path, ok: str, out: str) -> dict:
        cfg = compose_train(["data=folder", f"data.prepare.src={src}", f"data.prepare.ok_classes=[{ok}]", *FAST])
        return run_train(cfg, out_dir=work / out, quiet=True)

    train(steel, "good", "outputs/a")
    train(tiles, "Free", "outputs/b")
    summary = json.loads((work / "outputs/b/train_summary.json").read_text())
    assert summary["dataset"]["name"] == "tiles", summary["dataset"]
    with pytest.raises(InspectionError, match="Lime"):
        train(tiles, "Lime", "outputs/c")
    assert load_manifest(work / "data/folder/manifest.csv").classes == TILES  # a failed import keeps the data
    # evaluate without data=: the checkpoint's own manifest, not a synthetic steel set made on the way
    from inspection.cli.compose import compose_config
    from inspection.cli.hydra_entry import run_evaluate

    cfg = compose_config("evaluate", [f"checkpoint={work / 'outputs/b/model.pt'}", "split=test", "device=cpu"])
    m = run_evaluate(cfg, data_given=False)  # what `inspection evaluate checkpoint=… split=test` does
    assert m["class_names"] == TILES and not (work / "data" / "synth_steel").exists()
    assert "escape_rate" in capsys.readouterr().out


TINY = ["compare=tiny", "compare.seeds=[0]", "compare.model_centric.n_trials=1",
        "compare.recipe=['model=tiny_cnn','data.image_size=16','data.batch_size=8','trainer.max_epochs=1']",
        "compare.model_centric.recipe=['data.image_size=16','data.batch_size=8','trainer.max_epochs=1']",
        "compare.model_centric.space={model:{type:categorical,choices:[tiny_cnn]}}",
        "compare.audit.k=2", "compare.audit.recipe.image_size=16", "compare.audit.recipe.max_epochs=1"]


@pytest.mark.slow
def test_two_folder_datasets_in_a_row_compare(root, capsys) -> None:
    from inspection.cli.compare_cmd import run_compare

    steel = make_folder(root / "steel", STEEL, n=10, seed=1)
    tiles = make_folder(root / "tiles", TILES, n=12, seed=2)
    a = run_compare(["data=folder", f"data.prepare.src={steel}", "data.prepare.ok_classes=[good]", *TINY])
    capsys.readouterr()
    b = run_compare(["data=folder", f"data.prepare.src={tiles}", "data.prepare.ok_classes=[Free]", *TINY])
    text = capsys.readouterr().out
    assert "done earlier, reusing" not in text and "(v1 → v2 done earlier)" not in text
    assert a["config"]["out_dir"] != b["config"]["out_dir"]
    assert set(b["arms"]["baseline"]["per_class_recall"]) == set(TILES)
    gold = load_manifest(root / "work" / "data" / "folder" / "manifest.csv")
    assert b["n_test"] == len(gold.split("test")) and gold.classes == TILES
    again = run_compare(["data=folder", f"data.prepare.src={tiles}", "data.prepare.ok_classes=[Free]", *TINY])
    assert again["config"]["out_dir"] == b["config"]["out_dir"]  # the same dataset: resumed, nothing retrained
    assert "training …" not in capsys.readouterr().out
    assert again["wall_seconds"] == pytest.approx(b["wall_seconds"])
