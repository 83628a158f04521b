"""Label issues: out-of-fold probabilities by k-fold training, then confident learning (cleanlab).

Every train/val image is scored by a model that never saw it (its fold was held out), so a wrong label cannot be
memorised away. Fold probabilities are cached per fold (keyed by the labelled rows + recipe), so an interrupted or
repeated audit does not retrain.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from inspection.core.errors import ConfigError
from inspection.core.image import read_image
from inspection.core.preprocess import PreprocessSpec
from inspection.data.manifest import REQUIRED_COLUMNS, Manifest, write_manifest
from inspection.data.splits import kfold_assign


@dataclass
class Recipe:
    """A small, fast training recipe for out-of-fold probabilities (not the production model)."""

    backbone: str = "tiny_cnn"
    image_size: int = 64
    channels: int | None = None  # None: 1 when the images are grey, else 3
    max_epochs: int = 12
    batch_size: int = 32
    lr: float = 3e-3
    augment: bool = True
    accelerator: str = "auto"
    # CPU threads for torch while training folds (None: leave torch's setting). On a loaded 2-core machine one
    # thread is many times faster than two fighting for the cores; restored afterwards.
    torch_threads: int | None = None
    channels_last: bool = False  # NHWC tensors: faster convolutions on CPU
    extra: dict = field(default_factory=dict)  # free-form, part of the cache key (e.g. a note)


def trainval_rows(manifest: Manifest) -> pd.DataFrame:
    """The rows an audit scores (train + val, manifest order); OOF probabilities are aligned with these."""
    return manifest.rows[manifest.rows["split"] != "test"].reset_index(drop=True)


def _channels(manifest: Manifest, rows: pd.DataFrame) -> int:
    img = read_image(manifest.abspath(rows["path"].iloc[0]), 3)
    return 1 if (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all() else 3


def oof_cache_key(manifest: Manifest, recipe: Recipe, k: int, seed: int) -> str:
    """Identifies the labelled train/val rows + recipe + folds: same key → same probabilities."""
    rows = trainval_rows(manifest)[list(REQUIRED_COLUMNS)].sort_values("path")
    params = {k_: v for k_, v in asdict(recipe).items() if k_ != "torch_threads"}  # speed only, same result
    text = json.dumps([rows.to_csv(index=False), params, k, seed, manifest.classes], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def _training_env(threads: int | None):
    """Quiet Lightning's per-fit banner (k folds would bury the progress lines); optionally set torch threads."""
    import torch

    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    loggers = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)
        torch.set_num_threads(old_threads)


def out_of_fold_probs(manifest: Manifest, recipe: Recipe | None = None, k: int = 5, seed: int = 0,
                      work_dir: str | Path | None = None, progress: bool = True) -> np.ndarray:
    """N x C probabilities for trainval_rows(manifest), each from a model trained on the other k-1 folds."""
    return out_of_fold_predictions(manifest, recipe, k, seed, work_dir, progress)[0]


def out_of_fold_predictions(manifest: Manifest, recipe: Recipe | None = None, k: int = 5, seed: int = 0,
                            work_dir: str | Path | None = None,
                            progress: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities N x C, defect maps N x h x w float16 or None) for trainval_rows(manifest), each row from a
    model trained on the other k-1 folds; maps only when the recipe's backbone predicts them."""
    from inspection.data.augment import AugmentConfig
    from inspection.data.datamodule import DataConfig
    from inspection.evaluation.predict import predict_files
    from inspection.models.checkpoint import load_checkpoint
    from inspection.training.fit import ModelConfig, OptimConfig, TrainerConfig, fit_classifier

    recipe = recipe or Recipe()
    rows = trainval_rows(manifest)
    if len(rows) < 2 * k:
        raise ConfigError(f"{manifest.name}: {len(rows)} train/val images are too few for {k}-fold cross-validation")
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="oof-"))
    key = oof_cache_key(manifest, recipe, k, seed)
    final, final_maps = work / f"oof-{key}.npy", work / f"oof-{key}-maps.npy"
    if final.is_file():
        if progress:
            print(f"out-of-fold probabilities: cached {final}", flush=True)
        return np.load(final), (np.load(final_maps) if final_maps.is_file() else None)
    channels = recipe.channels or _channels(manifest, rows)
    spec = PreprocessSpec(recipe.image_size, recipe.image_size, channels, (0.5,) * channels, (0.25,) * channels)
    folds = np.array(kfold_assign(rows["label"].tolist(), rows["sha256"].tolist(), k, seed))
    probs = np.zeros((len(rows), len(manifest.classes)), np.float32)
    maps: np.ndarray | None = None
    base = rows[list(REQUIRED_COLUMNS)].copy()
    start = time.perf_counter()
    for f in range(k):
        part = work / f"oof-{key}" / f"fold_{f}"
        done, done_maps = part / "probs.npy", part / "maps.npy"
        held = folds == f
        if done.is_file():
            probs[held] = np.load(done)
            if done_maps.is_file():
                maps = _put(maps, held, np.load(done_maps))
            if progress:
                print(f"fold {f + 1}/{k}: cached", flush=True)
            continue
        # The held-out fold is the "test" split: no checkpoint selection on its (possibly wrong) labels.
        fold_rows = base.assign(split=np.where(held, "test", "train"))
        fold_manifest = manifest.with_rows(fold_rows)
        csv = write_manifest(fold_manifest, part / "data" / "manifest.csv")
        data = DataConfig(manifest=str(csv), spec=spec, batch_size=recipe.batch_size,
                          augment=AugmentConfig(enabled=recipe.augment), cache_dir=str(work / "image-cache"))
        trainer = TrainerConfig(max_epochs=recipe.max_epochs, accelerator=recipe.accelerator,
                                enable_progress_bar=False, log_every_n_steps=50, channels_last=recipe.channels_last)
        t0 = time.perf_counter()
        with _training_env(recipe.torch_threads):
            res = fit_classifier(data, ModelConfig(recipe.backbone), OptimConfig(lr=recipe.lr), trainer,
                                 part / "run", seed=seed + f, evaluate_splits=(),
                                 check_leaks=False)  # held-out fold, not a test split
        model = load_checkpoint(res.checkpoint)
        paths = [manifest.abspath(p) for p in rows.loc[held, "path"]]
        device = "cuda" if recipe.accelerator in ("auto", "gpu", "cuda") and _cuda() else "cpu"
        recs = predict_files(model, paths, batch_size=128, device=device)
        p = np.stack([r.probs if r.probs is not None else np.full(len(manifest.classes), np.nan) for r in recs])
        if recs and all("defect_map" in r.meta for r in recs):
            fold_maps = np.stack([r.meta["defect_map"] for r in recs]).astype(np.float16)
            np.save(done_maps, fold_maps)
            maps = _put(maps, held, fold_maps)
        np.save(done, p)  # written last: the fold counts as done only with its maps saved
        probs[held] = p
        if progress:
            acc = float((p.argmax(1) == rows.loc[held, "label"].map(manifest.classes.index).to_numpy()).mean())
            print(f"fold {f + 1}/{k}: trained on {int((~held).sum())}, scored {int(held.sum())} images in "
                  f"{time.perf_counter() - t0:.0f}s; agreement with given labels {acc:.1%} "
                  f"(elapsed {time.perf_counter() - start:.0f}s)", flush=True)
    if maps is not None:
        np.save(final_maps, maps)
    np.save(final, probs)
    return probs, maps


def _put(maps: np.ndarray | None, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Write one fold's maps into the N-row array, making it on the first fold."""
    if maps is None:
        maps = np.zeros((len(rows), *values.shape[1:]), np.float16)
    maps[rows] = values
    return maps


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def find_label_issues(manifest: Manifest, probs: np.ndarray, filter_by: str = "prune_by_noise_rate") -> pd.DataFrame:
    """One row per train/val image: given vs suggested label, self-confidence, cleanlab's issue flag and rank."""
    from cleanlab.filter import find_label_issues as cl_find
    from cleanlab.rank import get_label_quality_scores

    rows = trainval_rows(manifest)
    probs = np.asarray(probs, float)
    if probs.shape != (len(rows), len(manifest.classes)):
        raise ValueError(f"probs shape {probs.shape} != ({len(rows)} train/val rows, {len(manifest.classes)} classes)")
    ok = ~np.isnan(probs).any(1)  # unreadable images have no prediction: reported by the quality check instead
    y = rows["label"].map({c: i for i, c in enumerate(manifest.classes)}).to_numpy()
    issue = np.zeros(len(rows), bool)
    quality = np.full(len(rows), np.nan)
    if ok.sum() and len(np.unique(y[ok])) > 1:
        p = probs[ok] / probs[ok].sum(1, keepdims=True)
        issue[ok] = cl_find(y[ok], p, filter_by=filter_by)
        quality[ok] = get_label_quality_scores(y[ok], p, method="self_confidence")
    pred = np.where(ok, np.nan_to_num(probs).argmax(1), -1)
    out = pd.DataFrame({
        "path": rows["path"], "split": rows["split"], "given": rows["label"],
        "suggested": [manifest.classes[i] if i >= 0 else "" for i in pred],
        "self_confidence": quality,
        "suggested_confidence": np.where(ok, np.nan_to_num(probs).max(1), np.nan),
        "is_issue": issue,
    })
    out["rank"] = out["self_confidence"].rank(method="first", na_option="bottom").astype(int)
    return out
