"""Hydra entry points for `inspection train` and `inspection evaluate` (config groups, overrides, -m sweeps)."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from inspection.cli.compose import config_dir
from inspection.core.errors import user_errors

log = logging.getLogger("inspection")


def _output_dir(cfg: DictConfig, out_dir: Path | None) -> Path:
    if out_dir is not None:
        return Path(out_dir)
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.paths.output_dir) / str(cfg.task_name)


def prepare_ddp_relaunch() -> None:
    """Make Lightning's DDP workers of a multirun job re-run *this job only*, in *this job's* folder.

    Lightning re-launches `argv[0] argv[1:] hydra.run.dir=<HydraConfig.run.dir>`. In a sweep, argv holds `-m`
    and every sweep value, and run.dir is not the job's folder: each worker would run the whole sweep again
    and write to new folders (the known Lightning + Hydra multirun trap). Point both at the current job.
    """
    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    if not HydraConfig.initialized():
        return
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return
    sys.argv = [sys.argv[0], *hc.overrides.task]
    with read_write(hc), open_dict(hc):
        hc.run.dir = hc.runtime.output_dir


def run_train(cfg: DictConfig, out_dir: Path | None = None, quiet: bool = False) -> dict:
    """Train + evaluate from a composed config; returns the headline metrics (used by tests, search, compare)."""
    from inspection.cli.config import (
        data_config,
        model_config,
        optim_config,
        prepare_dataset,
        trainer_config,
    )
    from inspection.cli.lineage import run_lineage
    from inspection.training.fit import fit_classifier

    if quiet:  # many runs in one process (search, compare): their progress lines are enough
        for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
    settings = model_config(cfg), optim_config(cfg), trainer_config(cfg)  # a bad setting fails before any work
    manifest = prepare_dataset(cfg.data)
    out_dir = _output_dir(cfg, out_dir)
    if cfg.trainer.strategy != "auto" or str(cfg.trainer.devices) not in ("1", "auto"):
        prepare_ddp_relaunch()
    loggers = [hydra.utils.instantiate(v) for v in cfg.logger.values()] if cfg.get("logger") else []
    resolved = OmegaConf.to_container(cfg, resolve=True)
    config_hash = hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:16]
    # git commit + the DVC hashes of the data the manifest and its images live in (→ the exported model card)
    lineage = {**run_lineage(manifest), "config_hash": config_hash}
    result = fit_classifier(
        data_config(cfg, manifest), *settings, out_dir,
        seed=int(cfg.seed), thresholds=OmegaConf.to_container(cfg.thresholds), lineage=lineage, loggers=loggers,
        evaluate_splits=tuple(cfg.evaluate_splits),
    )
    summary = {"out_dir": str(out_dir), "checkpoint": str(result.checkpoint), "fit_seconds": round(result.fit_seconds, 2)}
    for split in ("val", "test"):
        m = getattr(result, f"{split}_metrics")
        if m:
            summary[f"{split}_accuracy"] = m["accuracy"]
            summary[f"{split}_macro_f1"] = m["macro_f1"]
            if "okng" in m:
                summary[f"{split}_auroc"] = m["okng"]["auroc"]
                summary[f"{split}_escape_rate"] = m["okng"]["escape_rate"]
                summary[f"{split}_overkill_rate"] = m["okng"]["overkill_rate"]
            if m.get("warnings"):
                summary[f"{split}_warnings"] = m["warnings"]
    if result.checkpoint and not quiet:
        log.info("run summary: %s", json.dumps(summary))
        print(json.dumps(summary, indent=2))
    return summary


def _data_overridden() -> bool:
    """Did the command line name the data (`data=…`, `data.manifest=…`)?"""
    return any(o.split("=", 1)[0].lstrip("+~").split(".")[0] == "data" for o in HydraConfig.get().overrides.task)


def _recorded_manifest(checkpoint: str) -> Path | None:
    """The manifest the checkpoint was trained on, when it is still there (evaluate without `data=`)."""
    from inspection.core.errors import InspectionError
    from inspection.models.checkpoint import load_checkpoint

    ckpt = Path(str(checkpoint))
    if not ckpt.is_file():
        raise InspectionError(f"{ckpt}: checkpoint not found")
    recorded = load_checkpoint(ckpt).extra.get("dataset", {}).get("manifest")
    if not recorded:
        return None
    if not Path(recorded).is_file():
        raise InspectionError(f"{ckpt}: records its manifest {recorded}, which is gone; name the data "
                              "(data=… or data.manifest=…)")
    log.info("no data= given: evaluating on the checkpoint's own manifest %s", recorded)
    return Path(recorded)


def run_evaluate(cfg: DictConfig, data_given: bool = True) -> dict:
    """Evaluate a checkpoint on a split of the configured dataset (`data_given=False`: the checkpoint's own)."""
    import torch

    from inspection.cli.prepare_data import prepare_dataset  # not cli.config: evaluating needs no Lightning
    from inspection.evaluation.evaluate import evaluate_checkpoint

    manifest = None if data_given else _recorded_manifest(cfg.checkpoint)
    manifest = manifest or prepare_dataset(cfg.data)
    out_dir = _output_dir(cfg, None)
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    cache = str(cfg.paths.cache_dir) if cfg.data.get("cache", False) else None  # near-duplicate hashes too
    m = evaluate_checkpoint(cfg.checkpoint, manifest, cfg.split, out_dir, device=device, batch_size=int(cfg.batch_size),
                            cache_dir=cache)
    from inspection.evaluation.degenerate import okng_line, warning_text

    okng = {k: m["okng"][k] for k in ("auroc", "escape_rate", "overkill_rate")} if "okng" in m else {}
    print(json.dumps({"out_dir": str(out_dir), "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], **okng,
                      **({"warnings": m["warnings"]} if m.get("warnings") else {})}, indent=2))
    for line in (okng_line(m), warning_text(m.get("warnings", []), f"split {cfg.split}")):
        if line:
            print(line)
    return m


@hydra.main(config_path=config_dir(), config_name="train", version_base="1.3")
@user_errors
def train_main(cfg: DictConfig) -> float | None:
    summary = run_train(cfg)
    # Returned value lets Hydra sweepers optimise on it.
    return summary.get("val_macro_f1")


@hydra.main(config_path=config_dir(), config_name="evaluate", version_base="1.3")
@user_errors
def evaluate_main(cfg: DictConfig) -> None:
    run_evaluate(cfg, data_given=_data_overridden())
