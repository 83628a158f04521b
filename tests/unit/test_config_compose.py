"""Every Hydra config composes, and the plain dataclasses build from it."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from inspection.cli.compose import config_dir
from inspection.cli.config import data_config, model_config, optim_config, preprocess_spec, trainer_config

CONF = Path(config_dir())


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["data", "model", "trainer", "logger", "experiment", "hparams_search", "debug"])
def test_every_option_composes(group):
    options = _options(group)
    assert options, f"no configs in conf/{group}"
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for opt in options:
            overrides = [f"{group}={opt}"]
            if opt == "folder":
                overrides.append("data.prepare.src=/tmp/images")
            cfg = compose("train", overrides=overrides)
            if group == "logger":
                # the logger reads hydra:runtime, which exists only inside a Hydra run
                assert "_target_" in next(iter(cfg.logger.values()))
                continue
            if group in ("data", "experiment", "debug"):
                preprocess_spec(cfg.data)
                data_config(cfg, Path("m.csv"))
            model_config(cfg)
            optim_config(cfg)
            trainer_config(cfg)


def test_evaluate_config_composes():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("evaluate", overrides=["checkpoint=x.pt", "data=neu"])
        assert cfg.checkpoint == "x.pt" and cfg.data.image_size == 200


def test_experiment_overrides_groups():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=neu_resnet18"])
    assert cfg.data.name == "neu" and cfg.model.backbone == "resnet18" and cfg.trainer.max_epochs == 40


def test_launcher_configs_compose():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        slurm = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
        local = compose("train", overrides=["hydra/launcher=local_parallel"], return_hydra_config=True)
    assert "submitit" in slurm.hydra.launcher._target_ and slurm.hydra.launcher.gpus_per_node == 1
    assert "joblib" in local.hydra.launcher._target_ and local.hydra.launcher.n_jobs == 2


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_experiment_presets_override_the_train_defaults(experiment):
    """conf/train.yaml listed _self_ last, so its own optim / task_name silently beat every experiment's."""
    import yaml

    from inspection.cli.compose import compose_config

    preset = yaml.safe_load((CONF / "experiment" / f"{experiment}.yaml").read_text())
    cfg = compose_config("train", [f"experiment={experiment}"])
    for key, value in (preset.get("optim") or {}).items():
        assert cfg.optim[key] == value, (experiment, key)
    assert cfg.task_name == preset["task_name"]
    assert compose_config("train", [f"experiment={experiment}", "optim.lr=0.123"]).optim.lr == 0.123
