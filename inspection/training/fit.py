"""fit_classifier: the plain training function behind `inspection train` (Hydra stays in cli/)."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from inspection.core.files import atomic_write_text
from inspection.data.datamodule import DataConfig, DefectDataModule
from inspection.data.leak_check import warn_if_leaked
from inspection.data.manifest import manifest_hash
from inspection.evaluation.evaluate import evaluate_model
from inspection.evaluation.plots import plot_training_curves
from inspection.models.checkpoint import load_checkpoint, save_checkpoint
from inspection.models.classifier import DefectClassifier
from inspection.models.factory import backbone_has_defect_map
from inspection.training.best_weights import BestWeights

log = logging.getLogger(__name__)


@dataclass
class ModelConfig:
    """Which network (see models.factory)."""

    backbone: str = "tiny_cnn"
    drop_rate: float = 0.0
    pretrained_path: str | None = None


@dataclass
class OptimConfig:
    """Optimiser settings."""

    lr: float = 2e-3
    weight_decay: float = 1e-4
    scheduler: str = "onecycle"
    label_smoothing: float = 0.0
    # defect-map networks (mixed supervision): weight of the pixel loss, and of defect pixels within it
    seg_weight: float = 1.0
    seg_pos_weight: float = 4.0


@dataclass
class TrainerConfig:
    """The subset of Lightning Trainer arguments we expose."""

    max_epochs: int = 10
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str | int = "32-true"  # Lightning takes 32 or "bf16-mixed"
    channels_last: bool = False
    deterministic: bool | str = False  # "warn": Lightning warns on ops without a deterministic kernel
    limit_train_batches: float | int = 1.0
    limit_val_batches: float | int = 1.0
    log_every_n_steps: int = 10
    enable_progress_bar: bool = True
    check_val_every_n_epoch: int = 1
    # Also write Lightning's own checkpoint (weights + optimiser, checkpoints/best.ckpt) at each improvement. Off by
    # default: the best weights are kept in memory and saved as model.pt; on when a logger archives checkpoints.
    lightning_checkpoint: bool = False


@dataclass
class TrainResult:
    """What a run produced."""

    out_dir: Path
    checkpoint: Path | None
    fit_seconds: float
    history: list[dict] = field(default_factory=list)
    test_metrics: dict | None = None
    val_metrics: dict | None = None
    best_epoch: int | None = None  # the epoch whose weights model.pt holds (best val/acc); None without val


class HistoryCallback(Callback):
    """Per-epoch train/val figures for the training-curve plot."""

    def __init__(self) -> None:
        self.history: list[dict] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        # Runs after the epoch's validation, so train and val figures of the same epoch are both there.
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        self.history.append({"epoch": trainer.current_epoch, "train_loss": m.get("train/loss"),
                             "val_loss": m.get("val/loss"), "val_acc": m.get("val/acc"),
                             "val_macro_f1": m.get("val/macro_f1")})


# Repeated on every run and not actionable by a user: a Lightning-internal use of a deprecated torch API, and the
# notice that an epoch on a small dataset has fewer batches than the logging interval (it logs per epoch anyway).
_LIBRARY_NOISE = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                  r"The number of training batches \(\d+\) is smaller than the logging interval")


def fit_classifier(
    data: DataConfig,
    model: ModelConfig,
    optim: OptimConfig,
    trainer: TrainerConfig,
    out_dir: str | Path,
    seed: int = 0,
    thresholds: dict | None = None,
    lineage: dict | None = None,
    loggers: list | None = None,
    evaluate_splits: tuple[str, ...] = ("val", "test"),
    check_leaks: bool = True,
) -> TrainResult:
    """Train on the manifest's train split, select on val, save model.pt, evaluate val/test through core preprocessing."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(seed, workers=True, verbose=False)
    if data.augment_on == "auto":
        on_gpu = trainer.accelerator in ("gpu", "cuda") or (trainer.accelerator == "auto" and torch.cuda.is_available())
        data = replace(data, augment_on="gpu" if on_gpu else "cpu")
    data = replace(data, masks=backbone_has_defect_map(model.backbone), seed=seed)
    dm = DefectDataModule(data)
    ok = list(dm.manifest.ok_classes)
    thr = {"ok_classes": ok, **(thresholds or {})} if ok else (thresholds or {})
    mhash = manifest_hash(dm.manifest)
    # Before the work, not after. Off for cross-validation folds, whose "test" is another fold of the same set.
    leak = warn_if_leaked(dm.manifest, data.manifest, cache_dir=data.cache_dir) if check_leaks else None
    dataset_info = {"name": dm.manifest.name, "manifest": str(Path(data.manifest).resolve()),
                    "manifest_hash": mhash, "version": dataset_version(dm.manifest.info, lineage or {}, mhash),
                    **dm.manifest.info.get("dvc", {}),
                    "leak_check": leak.record() if leak else {"skipped": "cross-validation fold"}}
    config = _plain({"data": {**asdict(data), "spec": data.spec.to_dict()}, "model": asdict(model),
                     "optim": asdict(optim), "trainer": asdict(trainer)})
    hparams = {"model": config["model"], "optim": config["optim"], "max_epochs": trainer.max_epochs,
               "precision": trainer.precision, "batch_size": data.batch_size, "augment_on": data.augment_on}
    extra = {"dataset": dataset_info, "lineage": lineage or {}, "seed": seed, "hparams": hparams}
    net = DefectClassifier(
        backbone=model.backbone, class_names=dm.class_names, preprocess=data.spec.to_dict(), thresholds=thr,
        lr=optim.lr, weight_decay=optim.weight_decay, scheduler=optim.scheduler,
        label_smoothing=optim.label_smoothing, class_weights=dm.class_weights(), drop_rate=model.drop_rate,
        pretrained_path=model.pretrained_path, channels_last=trainer.channels_last, extra=extra,
        gpu_augment=asdict(data.augment) if data.augment_on == "gpu" else None,
        seg_weight=optim.seg_weight, seg_pos_weight=optim.seg_pos_weight,
    )
    history, best = HistoryCallback(), BestWeights("val/acc")
    has_val = dm.split_size("val") > 0
    # Best-epoch selection on validation accuracy needs both OK and NG there: on an OK-only validation split (an
    # OK-only dataset trained on synthetic defects) "predict OK for everything" would always win.
    selectable = has_val and dm.manifest.split("val")["label"].nunique() >= 2
    if has_val and not selectable:
        log.warning("validation split has one class only: keeping the last epoch's weights (no best-epoch "
                    "selection)")
    callbacks: list[Callback] = [history, best] if selectable else [history]
    # DVCLive's log_model copies ModelCheckpoint's file: a logger that archives models needs one.
    if has_val and (trainer.lightning_checkpoint or any(getattr(lg, "_log_model", False) for lg in loggers or [])):
        callbacks.append(ModelCheckpoint(dirpath=out / "checkpoints", filename="best", monitor="val/acc", mode="max",
                                         save_top_k=1, save_last=False))
    t = pl.Trainer(
        max_epochs=trainer.max_epochs, accelerator=trainer.accelerator, devices=trainer.devices,
        strategy=trainer.strategy, num_nodes=trainer.num_nodes, precision=trainer.precision,
        deterministic=trainer.deterministic, limit_train_batches=trainer.limit_train_batches,
        limit_val_batches=trainer.limit_val_batches if has_val else 0, log_every_n_steps=trainer.log_every_n_steps,
        enable_progress_bar=trainer.enable_progress_bar, check_val_every_n_epoch=trainer.check_val_every_n_epoch,
        callbacks=callbacks, logger=loggers if loggers is not None else False,
        default_root_dir=str(out), enable_model_summary=False, num_sanity_val_steps=0,
        # Otherwise Lightning adds its own ModelCheckpoint and writes weights + optimiser state every epoch.
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
    )
    dm.setup()  # decode + resize once, outside the timed fit
    env_before = dict(os.environ)
    start = time.perf_counter()
    with warnings.catch_warnings():
        for message in _LIBRARY_NOISE:
            warnings.filterwarnings("ignore", message=message)
        _fit_keeping_ctrl_c(t, net, dm)
    fit_seconds = time.perf_counter() - start
    if t.world_size > 1:
        _reset_distributed(env_before)
    if not t.is_global_zero:
        return TrainResult(out, None, fit_seconds, history.history)
    if selectable:
        best.restore(net)  # best-on-validation weights; model.pt is the artefact
    ckpt = save_checkpoint(out / "model.pt", net.plain_net(), model.backbone, dm.class_names, data.spec,
                           net.thresholds, extra)
    plot_training_curves(history.history, out / "training_curves.png")
    result = TrainResult(out, ckpt, fit_seconds, history.history, best_epoch=best.best_epoch)
    loaded = load_checkpoint(ckpt)
    device = "cuda" if torch.cuda.is_available() and trainer.accelerator in ("gpu", "cuda", "auto") else "cpu"
    for split in evaluate_splits:
        if dm.split_size(split) == 0:
            continue
        metrics = evaluate_model(loaded, data.manifest, split, out / f"eval_{split}", device=device, leak=leak)
        setattr(result, f"{split}_metrics", metrics)
    headlines = {s: _headline(getattr(result, f"{s}_metrics")) for s in evaluate_splits}
    if any(headlines.values()):  # the checkpoint carries its own scores (the model card quotes them)
        extra["metrics"] = _plain({s: h for s, h in headlines.items() if h})
        save_checkpoint(ckpt, net.plain_net(), model.backbone, dm.class_names, data.spec, net.thresholds, extra)
    summary = {
        "fit_seconds": fit_seconds, "epochs": trainer.max_epochs, "best_epoch": best.best_epoch, "seed": seed, "backbone": model.backbone,
        "dataset": dataset_info, "history": history.history,
        "val": headlines.get("val"), "test": headlines.get("test"),
        "config": config,
    }
    atomic_write_text(out / "train_summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    return result


def dataset_version(info: dict, lineage: dict, mhash: str) -> str:
    """What names this data's version: a curated manifest's label (v2), else the md5 DVC records for the data,
    else the manifest's own content hash."""
    if info.get("version"):
        return str(info["version"])
    outs = lineage.get("dvc", {}).get("outs") or []
    if outs and outs[0].get("md5"):
        return f"dvc:{outs[0]['md5']}"
    return f"manifest:{mhash[:12]}"


def _plain(obj):
    """Only str / number / bool / None / list / dict, so the checkpoint loads with weights_only=True."""
    return json.loads(json.dumps(obj, default=str))


def _fit_keeping_ctrl_c(t: pl.Trainer, net: pl.LightningModule, dm) -> None:
    """trainer.fit, with Ctrl-C raised as KeyboardInterrupt again.

    Lightning catches Ctrl-C, ignores SIGINT from then on and calls sys.exit(1): a search would leave its Optuna
    trial RUNNING and a compare would end with rc 1 and no word. Restore both, so callers see the interrupt.
    """
    try:
        t.fit(net, datamodule=dm)
    except SystemExit as e:
        if not t.interrupted:
            raise
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt from e


def _reset_distributed(env_before: dict) -> None:
    """After a DDP fit, leave the process as it was: a sweep's next job must launch its own workers."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for key in set(os.environ) - set(env_before):  # MASTER_PORT, WORLD_SIZE, LOCAL_RANK... set by Lightning
        del os.environ[key]


def _headline(m: dict | None) -> dict | None:
    if m is None:
        return None
    keys = ("accuracy", "accuracy_ci95", "macro_f1", "macro_f1_ci95", "n", "okng")
    return {k: m[k] for k in keys if k in m}
