"""Hyperparameter search driven by Optuna directly (no hydra-optuna-sweeper: it pins optuna<3).

A search space maps Hydra override keys to distributions; each trial becomes a list of `key=value`
overrides, so whatever composes a config (the CLI, `compare`) can run it. Studies live in SQLite: a killed
search resumes where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from inspection.core.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class SearchResult:
    """Best trial and the whole history."""

    best_overrides: list[str]
    best_value: float
    trials: list[dict] = field(default_factory=list)
    storage: str = ""
    best_is_baseline: bool = False  # the baseline recipe (trial 0) won: nothing sampled beat it


def suggest_overrides(trial: optuna.Trial, space: dict[str, dict]) -> list[str]:
    """Sample one point of the space as Hydra overrides (`optim.lr=0.001`, `model=resnet18`)."""
    out = []
    for key, spec in space.items():
        kind = spec.get("type")
        if kind == "float":
            v = trial.suggest_float(key, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log", False)))
        elif kind == "int":
            v = trial.suggest_int(key, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log", False)))
        elif kind == "categorical":
            v = trial.suggest_categorical(key, list(spec["choices"]))
        else:
            raise ConfigError(f"search space entry {key!r}: type must be float, int or categorical, got {kind!r}")
        out.append(f"{key}={v}")
    return out


def run_study(
    objective: Callable[[list[str], int], float],
    space: dict[str, dict],
    n_trials: int,
    storage_path: str | Path,
    direction: str = "maximize",
    seed: int = 0,
    study_name: str = "search",
    baseline: list[str] | None = None,
) -> SearchResult:
    """Run (or resume) a study until it has `n_trials` finished trials; objective(overrides, trial_number) → value.

    `baseline`: the overrides of the recipe the search must beat. A fresh study tries them first (trial 0, queued
    with Optuna's enqueue_trial and passed to the objective verbatim), so the selected configuration is never worse
    than the baseline on the objective — a search that finds nothing better returns the baseline itself.
    """
    storage_path = Path(storage_path)
    storage_path.parent.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{storage_path.resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name, storage=storage, direction=direction,
                                sampler=optuna.samplers.TPESampler(seed=seed), load_if_exists=True)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        # left RUNNING by a process that died (killed, power cut): it will never finish, so it must not count
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        log.warning("study %s: trial %d was left unfinished by an earlier run: marked FAIL", study_name, t.number)
    if study.trials:  # resumed: the sampler's random state is not stored, and the same seed would replay trial 1
        study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    remaining = max(0, n_trials - len(done))
    queued = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.WAITING)
    if baseline is not None and not any(t.user_attrs.get("baseline") and t.state in queued for t in study.trials):
        study.enqueue_trial({}, user_attrs={"overrides": list(baseline), "baseline": True})
    if done:
        log.info("resuming study %s: %d trials done, %d to go", study_name, len(done), remaining)

    def _objective(trial: optuna.Trial) -> float:
        if trial.user_attrs.get("baseline"):  # queued trial 0: the baseline recipe, outside the sampled space
            overrides = list(trial.user_attrs["overrides"])
        else:
            overrides = suggest_overrides(trial, space)
            trial.set_user_attr("overrides", overrides)
        value = float(objective(overrides, trial.number))
        tag = " (baseline recipe)" if trial.user_attrs.get("baseline") else ""
        print(f"[search] trial {trial.number + 1}/{n_trials}{tag}: {' '.join(overrides)} → {value:.4f}", flush=True)
        return value

    if remaining:
        study.optimize(_objective, n_trials=remaining)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"search {study_name}: no trial completed")
    # Best value; on a tie the baseline recipe (the simpler claim), then the earliest trial.
    sign = 1.0 if direction == "maximize" else -1.0
    best = max(complete, key=lambda t: (sign * float(t.value), bool(t.user_attrs.get("baseline")), -t.number))
    trials = [{"number": t.number, "value": t.value, "overrides": t.user_attrs.get("overrides", []),
               "baseline": bool(t.user_attrs.get("baseline"))} for t in complete]
    return SearchResult(list(best.user_attrs.get("overrides", [])), float(best.value), trials, storage,
                        bool(best.user_attrs.get("baseline")))
