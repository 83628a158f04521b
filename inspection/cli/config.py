"""DictConfig → plain dataclasses; dataset preparation lives in cli.prepare_data (re-exported here)."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from inspection.cli.prepare_data import prepare_dataset  # noqa: F401 - re-exported: callers import it here
from inspection.cli.typed import to_dataclass
from inspection.core.preprocess import PreprocessSpec
from inspection.data.augment import AugmentConfig
from inspection.data.datamodule import DataConfig
from inspection.data.pixel_targets import SyntheticDefects
from inspection.data.synthetic_anomalies import AnomalyConfig
from inspection.training.fit import ModelConfig, OptimConfig, TrainerConfig

log = logging.getLogger(__name__)


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
