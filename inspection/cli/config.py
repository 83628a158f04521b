"""DictConfig → plain dataclasses, and dataset preparation (synthesise or import on first use)."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from inspection.cli.typed import to_dataclass
from inspection.core.errors import ConfigError, ManifestError
from inspection.core.preprocess import PreprocessSpec
from inspection.data.augment import AugmentConfig
from inspection.data.datamodule import DataConfig
from inspection.data.pixel_targets import SyntheticDefects
from inspection.data.synthetic_anomalies import AnomalyConfig
from inspection.training.fit import ModelConfig, OptimConfig, TrainerConfig

log = logging.getLogger(__name__)


def prepare_dataset(data: DictConfig) -> Path:
    """Return the manifest path, creating the dataset first when it is missing and `data.prepare` says how."""
    manifest = Path(data.manifest)
    if manifest.is_file():
        return manifest
    prep = data.get("prepare")
    if prep is None:
        raise ManifestError(f"{manifest}: manifest not found and data.prepare is not set")
    out = manifest.parent
    if prep.kind == "synth":
        from inspection.data.synth import generate_dataset

        log.info("generating synthetic %s dataset in %s", prep.synth, out)
        generate_dataset(prep.synth, out, n_per_class=int(prep.n_per_class), size=int(prep.size), seed=int(prep.seed))
    elif prep.kind == "import":
        from inspection.data import importers

        src = Path(prep.src)
        if not src.exists():
            raise ManifestError(f"{src}: source for data '{data.name}' not found (set data.prepare.src=...)")
        log.info("importing %s from %s into %s", prep.importer, src, out)
        if prep.importer == "neu":
            importers.import_neu(src, out, seed=int(prep.seed))
        elif prep.importer == "mvtec":
            importers.import_mvtec(src, out, seed=int(prep.seed), binary=bool(prep.get("binary", False)))
        elif prep.importer == "folder":
            importers.import_folder(src, out, seed=int(prep.seed), ok_classes=list(prep.get("ok_classes") or []),
                                    labels_csv=Path(prep.labels_csv) if prep.get("labels_csv") else None)
        else:
            raise ConfigError(f"data.prepare.importer: unknown importer {prep.importer!r} (neu, mvtec, folder)")
    else:
        raise ConfigError(f"data.prepare.kind: unknown {prep.kind!r} (synth, import)")
    return manifest


def preprocess_spec(data: DictConfig) -> PreprocessSpec:
    """The model's input definition from the data config."""
    return PreprocessSpec(height=int(data.image_size), width=int(data.image_size), channels=int(data.channels),
                          mean=tuple(data.mean), std=tuple(data.std), resize=str(data.resize))


def data_config(cfg: DictConfig, manifest: Path) -> DataConfig:
    """Plain DataConfig from cfg.data."""
    d = cfg.data
    return DataConfig(
        manifest=str(manifest), spec=preprocess_spec(d), batch_size=int(d.batch_size),
        num_workers=int(d.num_workers), augment=AugmentConfig(**OmegaConf.to_container(d.augment)),
        cache_dir=str(cfg.paths.cache_dir) if d.get("cache", False) else None,
        class_weighting=bool(d.get("class_weighting", False)), augment_on=str(d.get("augment_on", "auto")),
        synthetic=synthetic_config(d.get("synthetic")),
    )


def synthetic_config(section: DictConfig | None) -> SyntheticDefects:
    """data.synthetic: {copies: N, anomaly: {...}} → SyntheticDefects (absent: off)."""
    if section is None:
        return SyntheticDefects()
    values = OmegaConf.to_container(section, resolve=True)
    anomaly = to_dataclass(AnomalyConfig, values.pop("anomaly", None) or {}, "data.synthetic.anomaly.")
    return to_dataclass(SyntheticDefects, {**values, "anomaly": anomaly}, "data.synthetic.")


def model_config(cfg: DictConfig) -> ModelConfig:
    return to_dataclass(ModelConfig, OmegaConf.to_container(cfg.model), "model.")


def optim_config(cfg: DictConfig) -> OptimConfig:
    return to_dataclass(OptimConfig, OmegaConf.to_container(cfg.optim), "optim.")


def trainer_config(cfg: DictConfig) -> TrainerConfig:
    return to_dataclass(TrainerConfig, OmegaConf.to_container(cfg.trainer), "trainer.")


def git_commit(cwd: str | Path = ".") -> str:
    """Current commit (with '-dirty' if tracked files changed), or '' outside git / before the first commit."""
    from inspection.cli.lineage import git_commit as commit

    return commit(cwd)
