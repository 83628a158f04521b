"""A resumed Optuna search tries new configurations, and stays reproducible."""

from __future__ import annotations

import optuna

from inspection.training.search import run_study

SPACE = {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
         "optim.weight_decay": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True}}


def _objective(overrides: list[str], number: int) -> float:
    return -abs(float(overrides[0].split("=")[1]) - 3e-3)


def test_resume_does_not_replay_earlier_trials(tmp_path) -> None:
    first = run_study(_objective, SPACE, 2, tmp_path / "a.db", seed=0)
    resumed = run_study(_objective, SPACE, 4, tmp_path / "a.db", seed=0)
    tried = [tuple(t["overrides"]) for t in resumed.trials]
    assert len(tried) == 4 and len(set(tried)) == 4, tried
    assert tried[:2] == [tuple(t["overrides"]) for t in first.trials]  # the first two were kept, not re-run
    again = run_study(_objective, SPACE, 2, tmp_path / "b.db", seed=0)
    assert [t["overrides"] for t in again.trials] == [t["overrides"] for t in first.trials]  # same seed, same start
    assert len(optuna.load_study(study_name="search", storage=resumed.storage).trials) == 4
