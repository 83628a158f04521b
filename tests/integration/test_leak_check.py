"""Train and evaluate warn when train/val holds near-copies of test images, and record it (metrics.json, the
checkpoint, the model card the edge runtime loads); a clean split stays silent. Real NEU: only true copies."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from planted_copies import write_folder

from inspection.core.model_card import ModelCard
from inspection.core.preprocess import PreprocessSpec
from inspection.data.datamodule import DataConfig
from inspection.data.importers import import_folder, import_neu
from inspection.data.leak_check import leak_check
from inspection.data.manifest import write_manifest
from inspection.evaluation.evaluate import evaluate_checkpoint
from inspection.export.onnx_export import card_from_checkpoint
from inspection.models.checkpoint import load_checkpoint
from inspection.training.fit import ModelConfig, OptimConfig, TrainerConfig, fit_classifier

SPEC = PreprocessSpec(32, 32, channels=1, mean=(0.5,), std=(0.25,))
WARNING = "near-duplicates of test images"


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> tuple[Path, Path, int]:
    """(leaked manifest, clean manifest of the same images, train/val copies of test in the leaked one)."""
    root = tmp_path_factory.mktemp("leak")
    copies = write_folder(root / "src", per_class=10, copied=2)
    clean = import_folder(root / "src", root / "clean", copy=False)
    rows = clean.rows.set_index("path")
    for orig, cs in copies.items():  # what a random split does to augmented copies
        rows.loc[[orig, *cs], "split"] = ["test", "train", "val", "train", "train", "val", "train", "train"]
    write_manifest(clean.with_rows(rows.reset_index()), root / "leaked" / "manifest.csv")
    return root / "leaked" / "manifest.csv", root / "clean" / "manifest.csv", 7 * len(copies)


def _fit(csv: Path, out: Path):
    data = DataConfig(manifest=str(csv), spec=SPEC, batch_size=16, augment_on="cpu")
    return fit_classifier(data, ModelConfig("tiny_cnn"), OptimConfig(),
                          TrainerConfig(max_epochs=1, accelerator="cpu", enable_progress_bar=False), out)


def test_train_warns_and_records_the_leak(manifests, tmp_path: Path, caplog) -> None:
    leaked, _, n = manifests
    with caplog.at_level(logging.WARNING):
        result = _fit(leaked, tmp_path / "run")
    warned = [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]
    assert len(warned) == 1 and f"{n} train/val image(s)" in warned[0] and "copy_" in warned[0]  # once, with examples
    for split in ("val", "test"):
        m = json.loads((tmp_path / "run" / f"eval_{split}" / "metrics.json").read_text())
        assert m["leak_check"]["near_duplicates_of_test"] == n and m["leak_check"]["examples"]
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["dataset"]["leak_check"]["near_duplicates_of_test"] == n
    model = load_checkpoint(result.checkpoint)
    card = card_from_checkpoint(model, result.checkpoint, "fp32", "test")
    edge = ModelCard.from_dict(json.loads(json.dumps(card.to_dict())), "model.json")  # what the edge box loads
    assert edge.dataset["leak_check"] == {"near_duplicates_of_test": n, "max_distance": 24, "unchecked_lookalike": 0}


def test_evaluate_warns_on_leaked_and_stays_silent_on_clean(manifests, tmp_path: Path, caplog) -> None:
    leaked, clean, n = manifests
    ckpt = _fit(clean, tmp_path / "run").checkpoint
    with caplog.at_level(logging.WARNING):
        m = evaluate_checkpoint(ckpt, leaked, "test", tmp_path / "ev_leaked", cache_dir=str(tmp_path / "cache"))
    assert m["leak_check"]["near_duplicates_of_test"] == n
    assert any(WARNING in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        m = evaluate_checkpoint(ckpt, clean, "test", tmp_path / "ev_clean", cache_dir=str(tmp_path / "cache"))
    assert m["leak_check"]["near_duplicates_of_test"] == 0
    assert not [r for r in caplog.records if WARNING in r.getMessage()]
    saved = json.loads((tmp_path / "ev_clean" / "metrics.json").read_text())
    assert saved["leak_check"]["near_duplicates_of_test"] == 0


# Visually confirmed near-duplicates in NEU-DET (the same strip frame shifted a few pixels, or turned by 90°),
# besides the byte-identical patches_101/patches_105: grouping them is right; anything else would be a false alarm.
NEU_NEAR_DUPLICATES = [
    ["inclusion_125.jpg", "inclusion_88.jpg"], ["inclusion_188.jpg", "inclusion_210.jpg"],
    ["pitted_surface_171.jpg", "pitted_surface_292.jpg"], ["scratches_232.jpg", "scratches_247.jpg"],
]


def test_real_neu_groups_only_true_copies(neu_dir: Path, tmp_path: Path) -> None:
    m = import_neu(neu_dir, tmp_path / "neu", copy=False)
    near = m.info["near_duplicates"]
    assert near["clusters"] == NEU_NEAR_DUPLICATES and near["lookalike_images"] == 0
    split = m.rows.set_index("path")["split"]
    for group in [*NEU_NEAR_DUPLICATES, ["patches_101.jpg", "patches_105.jpg"]]:
        assert split[group].nunique() == 1, group
    assert leak_check(m).near_duplicates_of_test == 0
