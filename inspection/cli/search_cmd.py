"""`inspection search`: Optuna over Hydra-composed training configs, resumable from its SQLite study."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from omegaconf import OmegaConf

from inspection.cli.compose import compose_train
from inspection.cli.hydra_entry import run_train
from inspection.core.stamp import claim_folder


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def search_study(overrides: list[str], out_dir: Path | None = None, quiet: bool = True) -> dict:
    """Run the study named by cfg.hparams_search; returns best overrides/value and writes search.json."""
    from inspection.training.search import run_study

    if not any(_key(o) == "hparams_search" for o in overrides):
        overrides = [*overrides, "hparams_search=optuna"]
    base = compose_train(overrides)
    hs = base.hparams_search
    space = OmegaConf.to_container(hs.params)
    fixed = [o for o in overrides if _key(o) not in space]  # the space decides these keys
    out = Path(out_dir) if out_dir else Path(base.paths.output_dir) / "search" / str(base.task_name)
    out = claim_folder(out, _made_from(base, fixed, space), out_dir is not None, "search")  # never another study
    metric = str(hs.metric)

    def objective(trial_overrides: list[str], number: int) -> float:
        cfg = compose_train([*fixed, *trial_overrides, "evaluate_splits=[val]"])
        summary = run_train(cfg, out_dir=out / f"trial_{number:03d}", quiet=quiet)
        return float(summary[metric])

    res = run_study(objective, space, int(hs.n_trials), out / "study.sqlite3", str(hs.direction),
                    int(hs.sampler_seed), study_name=str(base.task_name))
    report = {"best_overrides": res.best_overrides, "best_value": res.best_value, "metric": metric,
              "fixed_overrides": fixed, "trials": res.trials, "storage": res.storage}
    (out / "search.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _made_from(base, fixed: list[str], space: dict) -> dict:
    """What a study's trials depend on: the data's content, the fixed overrides, the space and the metric."""
    from inspection.cli.config import prepare_dataset
    from inspection.data.manifest import load_manifest, manifest_hash

    gold = load_manifest(prepare_dataset(base.data))
    return {"manifest_hash": manifest_hash(gold), "space": space, "metric": str(base.hparams_search.metric),
            "fixed": sorted(o for o in fixed if not _key(o).startswith(("data.prepare", "hparams_search"))
                            and _key(o) != "data.manifest")}  # more trials: the same study, resumed


def search(ctx: typer.Context) -> None:
    """Hyperparameter search (Optuna, resumable): `inspection search data=neu hparams_search.n_trials=20`."""
    report = search_study(list(ctx.args))
    print(json.dumps({k: report[k] for k in ("best_overrides", "best_value", "metric")}, indent=2))
