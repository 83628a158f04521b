"""DictConfig → plain dataclasses, and dataset preparation (synthesise or import on first use)."""

from __future__ import annotations

import logging
import typing
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from inspection.core.errors import InspectionError
from inspection.core.preprocess import PreprocessSpec
from inspection.data.augment import AugmentConfig
from inspection.data.datamodule import DataConfig
from inspection.models.train import ModelConfig, OptimConfig, TrainerConfig

log = logging.getLogger(__name__)


def prepare_dataset(data: DictConfig) -> Path:
    """Return the manifest path, creating the dataset first when it is missing and `data.prepare` says how."""
    manifest = Path(data.manifest)
    if manifest.is_file():
        return manifest
    prep = data.get("prepare")
    if prep is None:
        raise FileNotFoundError(f"{manifest}: manifest not found and data.prepare is not set")
    out = manifest.parent
    if prep.kind == "synth":
        from inspection.data.synth import generate_dataset

        log.info("generating synthetic %s dataset in %s", prep.synth, out)
        generate_dataset(prep.synth, out, n_per_class=int(prep.n_per_class), size=int(prep.size), seed=int(prep.seed))
    elif prep.kind == "import":
        from inspection.data import importers

        src = Path(prep.src)
        if not src.exists():
            raise FileNotFoundError(f"{src}: source for data '{data.name}' not found (set data.prepare.src=...)")
        log.info("importing %s from %s into %s", prep.importer, src, out)
        if prep.importer == "neu":
            importers.import_neu(src, out, seed=int(prep.seed))
        elif prep.importer == "mvtec":
            importers.import_mvtec(src, out, seed=int(prep.seed), binary=bool(prep.get("binary", False)))
        elif prep.importer == "folder":
            importers.import_folder(src, out, seed=int(prep.seed), ok_classes=list(prep.get("ok_classes") or []),
                                    labels_csv=Path(prep.labels_csv) if prep.get("labels_csv") else None)
        else:
            raise ValueError(f"unknown importer {prep.importer!r} (neu, mvtec, folder)")
    else:
        raise ValueError(f"unknown data.prepare.kind {prep.kind!r} (synth, import)")
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
    )


def typed_config(cls, values: dict, group: str):
    """cls(**values), checking numbers and booleans first: `optim.lr=fast` must fail here, naming the key, not
    deep inside the fit after the data has loaded."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if key not in hints:
            raise InspectionError(f"{group}.{key}: unknown setting (known: {', '.join(sorted(hints))})")
        want = hints[key]
        if want is bool and not isinstance(value, bool):
            raise InspectionError(f"{group}.{key}: expected true or false, got {value!r}")
        if want in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))
                                     or (want is int and not isinstance(value, int))):
            raise InspectionError(f"{group}.{key}: expected {'an integer' if want is int else 'a number'}, "
                                  f"got {value!r}")
    return cls(**values)


def model_config(cfg: DictConfig) -> ModelConfig:
    return typed_config(ModelConfig, OmegaConf.to_container(cfg.model), "model")


def optim_config(cfg: DictConfig) -> OptimConfig:
    return typed_config(OptimConfig, OmegaConf.to_container(cfg.optim), "optim")


def trainer_config(cfg: DictConfig) -> TrainerConfig:
    return typed_config(TrainerConfig, OmegaConf.to_container(cfg.trainer), "trainer")


def git_commit(cwd: str | Path = ".") -> str:
    """Current commit (with '-dirty' if tracked files changed), or '' outside git / before the first commit."""
    from inspection.cli.lineage import git_commit as commit

    return commit(cwd)
