"""The defect-map model (segdec_resnet18) trains with mixed supervision: masks where a dataset has them, image
labels elsewhere, synthetic defects for OK-only sets; its map localises the defect and exports as a second ONNX
output that matches torch.

Data: a generated OK/NG set (textured plates; NG ones carry a small bright blotch whose mask is written beside
them, as the MVTec importer does), small enough for 2 CPU cores.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from inspection.core.preprocess import PreprocessSpec
from inspection.data.augment import AugmentConfig
from inspection.data.datamodule import DataConfig, DefectDataModule
from inspection.data.importers import import_folder
from inspection.data.manifest import load_manifest, write_manifest
from inspection.data.pixel_targets import SyntheticDefects
from inspection.data.synthetic_anomalies import AnomalyConfig
from inspection.training.fit import ModelConfig, OptimConfig, TrainerConfig, fit_classifier

SIZE = 64
torch.set_num_threads(1)  # as tests/integration/edge_helpers.py: one setting for the whole run


def _plate(rng: np.random.Generator) -> np.ndarray:
    """A textured plate; each one a different tone, so a patch cut from another plate stands out in it."""
    tone = rng.integers(50, 200, 3)
    noise = rng.normal(0, 18, (SIZE, SIZE, 3))
    return cv2.GaussianBlur((tone + noise).clip(0, 255).astype(np.uint8), (5, 5), 0)


def make_defect_set(root: Path, n: int = 28, masks_for: float = 1.0, ok_only: bool = False, seed: int = 0) -> Path:
    """good/ and defect/ folders (defect: a blotch, its mask in masks/); returns the imported manifest.csv."""
    rng = np.random.default_rng(seed)
    src = root / "src"
    for cls in ("good",) if ok_only else ("good", "defect"):
        (src / cls).mkdir(parents=True)
    mask_rel = {}
    for i in range(n):
        cv2.imwrite(str(src / "good" / f"g{i:03d}.png"), _plate(rng))
        if ok_only:
            continue
        img, mask = _plate(rng), np.zeros((SIZE, SIZE), np.uint8)
        cx, cy, r = rng.integers(12, SIZE - 12), rng.integers(12, SIZE - 12), rng.integers(4, 7)
        cv2.ellipse(mask, (int(cx), int(cy)), (int(r), int(r * 0.7)), float(rng.integers(0, 180)), 0, 360, 255, -1)
        img[mask > 0] = np.clip(img[mask > 0].astype(int) + 90, 0, 255).astype(np.uint8)
        cv2.imwrite(str(src / "defect" / f"d{i:03d}.png"), img)
        if i < masks_for * n:
            (root / "out" / "masks").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "out" / "masks" / f"d{i:03d}_mask.png"), mask)
            mask_rel[f"defect/d{i:03d}.png"] = f"masks/d{i:03d}_mask.png"
    m = import_folder(src, root / "out", seed=seed, ok_classes=["good"])
    m.rows["meta_mask"] = [mask_rel.get(p, "") for p in m.rows["path"]]
    write_manifest(m, root / "out" / "manifest.csv")
    return root / "out" / "manifest.csv"


def _data(csv: Path, **kw) -> DataConfig:
    kw.setdefault("augment", AugmentConfig(shift=0.0, brightness=0.0, contrast=0.0))
    return DataConfig(manifest=str(csv), spec=PreprocessSpec(SIZE, SIZE, 3), batch_size=16, augment_on="cpu",
                      class_weighting=True, **kw)


def _fit(data: DataConfig, out: Path, epochs: int = 14):
    return fit_classifier(data, ModelConfig(backbone="segdec_resnet18"), OptimConfig(lr=3e-3, weight_decay=1e-4),
                          TrainerConfig(max_epochs=epochs, accelerator="cpu", enable_progress_bar=False,
                                        log_every_n_steps=1), out, seed=0)


@pytest.fixture(scope="module")
def masked_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("segdec")
    csv = make_defect_set(tmp, masks_for=0.5)  # half of the defects have masks: mixed supervision
    return csv, _fit(_data(csv), tmp / "run")


def test_masks_reach_the_batches_moved_with_the_image(tmp_path):
    csv = make_defect_set(tmp_path, n=8, masks_for=0.5)
    dm = DefectDataModule(_data(csv, masks=True))
    dm.setup()
    images, targets, masks, known = dm._arrays["train"]
    m = load_manifest(csv)
    train = m.split("train")
    has = (train["meta_mask"] != "").to_numpy()
    is_ok = (train["label"] == "good").to_numpy()
    assert (known == (has | is_ok)).all() and masks[is_ok].max() == 0 and masks[has].max() == 255
    # the blotch is where the mask says: brighter inside than outside
    for img, mask in zip(images[has], masks[has], strict=True):
        assert img[mask > 0].mean() > img[mask == 0].mean() + 40
    flips = DefectDataModule(_data(csv, masks=True, augment=AugmentConfig(hflip=True, vflip=True, shift=0.1)))
    flips.setup()
    x, y, mk, kn = next(iter(flips.train_dataloader()))
    assert x.shape[:3] == mk.shape and kn.dtype == torch.bool
    for img, mask in zip(x.numpy(), mk.numpy(), strict=True):
        if mask.any():  # still on the blotch after the same flip/shift
            assert img[mask > 0].mean() > img[mask == 0].mean() + 30


def test_mixed_supervision_learns_the_decision_and_the_map(masked_run):
    csv, res = masked_run
    assert res.test_metrics["okng"]["auroc"] > 0.9, res.test_metrics["okng"]
    from inspection.evaluation.predict import predict_files
    from inspection.models.checkpoint import load_checkpoint

    m = load_manifest(csv)
    test = m.split("test")
    test = test[test["meta_mask"] != ""]
    model = load_checkpoint(res.checkpoint)
    records = predict_files(model, [m.abspath(p) for p in test["path"]])
    hits = 0
    for rec, rel in zip(records, test["meta_mask"], strict=True):
        mask = cv2.resize(cv2.imread(str(csv.parent / rel), cv2.IMREAD_GRAYSCALE), rec.meta["defect_map"].shape[::-1],
                          interpolation=cv2.INTER_AREA)
        peak = np.unravel_index(np.argmax(rec.meta["defect_map"]), mask.shape)
        hits += mask[peak] > 0 or (cv2.dilate(mask, np.ones((3, 3), np.uint8))[peak] > 0)
    assert hits >= 0.7 * len(records), f"map peak on the defect for {hits}/{len(records)} test images"


def test_defects_without_any_mask_still_train(tmp_path):
    csv = make_defect_set(tmp_path, n=28, masks_for=0.0)
    res = _fit(_data(csv), tmp_path / "run", epochs=12)
    assert res.checkpoint.is_file() and res.test_metrics["okng"]["auroc"] > 0.8, res.test_metrics["okng"]


def test_ok_only_dataset_trains_on_synthetic_defects(tmp_path):
    csv = make_defect_set(tmp_path, n=30, ok_only=True)
    data = _data(csv, synthetic=SyntheticDefects(copies=2, anomaly=AnomalyConfig(blend="paste", min_area=0.03,
                                                                                  max_area=0.08)))
    dm = DefectDataModule(data)
    assert dm.class_names == ["good", "defect"]
    res = fit_classifier(data, ModelConfig(backbone="segdec_resnet18"), OptimConfig(lr=2e-3, weight_decay=1e-4),
                         TrainerConfig(max_epochs=36, accelerator="cpu", enable_progress_bar=False), tmp_path / "run")
    from inspection.data.synthetic_anomalies import AnomalySynthesizer
    from inspection.evaluation.metrics import auroc
    from inspection.evaluation.predict import predict_arrays
    from inspection.models.checkpoint import load_checkpoint

    model = load_checkpoint(res.checkpoint)
    assert model.class_names == ["good", "defect"]
    m = load_manifest(csv)
    ok = np.stack([cv2.imread(str(m.abspath(p)))[:, :, ::-1] for p in m.rows["path"]])
    fresh = AnomalySynthesizer(list(ok), seed=99, cfg=data.synthetic.anomaly)  # defects the model never saw
    defective = np.stack([fresh(img, key=k)[0] for k, img in enumerate(ok)])
    scores = np.concatenate([predict_arrays(model, ok)[:, 1], predict_arrays(model, defective)[:, 1]])
    truth = np.r_[np.zeros(len(ok)), np.ones(len(ok))].astype(bool)
    assert auroc(truth, scores) > 0.8, auroc(truth, scores)


def test_export_has_two_outputs_with_parity_and_the_edge_reports_the_defect(masked_run, tmp_path):
    import subprocess
    import sys

    from inspection.export import export_model

    csv, res = masked_run
    report = export_model(res.checkpoint, tmp_path / "onnx")
    assert report.accepted, report.to_text()
    assert report.parity.map_max_abs_diff is not None and report.parity.map_max_abs_diff <= 1e-4
    card = report.exported.card
    assert card.defect_map["output"] == "defect_map"
    m = load_manifest(csv)
    folder = m.image_root  # good/ and defect/
    out = tmp_path / "rows.csv"
    # the edge runtime in a fresh interpreter: no torch needed for the two-output model
    code = ("import sys\nfrom inspection.edge.cli import main\nrc = main([*sys.argv[1:], '--quiet'])\n"
            "assert 'torch' not in sys.modules, 'the edge runtime imported torch'\nsys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, str(report.exported.onnx_path), str(folder), "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    import csv as csvlib

    rows = list(csvlib.DictReader(out.open()))
    assert len(rows) == len(m.rows) and all(row["defect_area"] != "" for row in rows)
    peak = {c: np.median([float(r["defect_peak"]) for r in rows if f"/{c}/" in r["path"]]) for c in ("good", "defect")}
    assert peak["defect"] > peak["good"] + 0.3, peak


def test_audit_with_a_defect_map_recipe_puts_heatmaps_on_the_review_sheets(tmp_path):
    """The review queue's contact sheet and the defect book show where each out-of-fold model saw the defect."""
    from inspection.curation.audit import AuditConfig, run_audit
    from inspection.curation.label_issues import Recipe, trainval_rows

    csv = make_defect_set(tmp_path, n=14, masks_for=1.0)
    m = load_manifest(csv)
    recipe = Recipe(backbone="segdec_resnet18", image_size=SIZE, channels=3, max_epochs=4, batch_size=16,
                    accelerator="cpu")
    run_audit(csv, tmp_path / "audit", AuditConfig(k=3, recipe=recipe), progress=False)
    maps = np.load(tmp_path / "audit" / "oof_maps.npy")
    assert maps.shape == (len(trainval_rows(m)), SIZE // 8, SIZE // 8)
    plain = run_audit(csv, tmp_path / "plain", AuditConfig(k=3, recipe=recipe),
                      probs=np.load(tmp_path / "audit" / "oof_probs.npy"), progress=False)
    assert not (tmp_path / "plain" / "oof_maps.npy").exists() and plain.queue is not None
    # same queue, same sheet layout: the sheet with maps differs from the plain one only by the overlays
    with_maps = cv2.imread(str(tmp_path / "audit" / "review_queue.png"))
    without = cv2.imread(str(tmp_path / "plain" / "review_queue.png"))
    assert with_maps.shape == without.shape and (with_maps != without).any()
    assert any((tmp_path / "audit" / "defect_book").glob("class_*.png"))
