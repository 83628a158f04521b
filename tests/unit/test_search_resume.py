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


BASELINE = ["model=tiny_cnn", "trainer.max_epochs=6"]


def _crippled(overrides: list[str], number: int) -> float:
    """The baseline recipe scores 0.8; every sampled configuration is worse (it 'cannot learn')."""
    return 0.8 if overrides == BASELINE else 0.2 + 0.1 * float(overrides[0].split("=")[1])


def test_baseline_recipe_is_trial_zero_and_wins_over_crippled_candidates(tmp_path) -> None:
    res = run_study(_crippled, SPACE, 3, tmp_path / "s.db", seed=0, baseline=BASELINE)
    assert res.trials[0]["overrides"] == BASELINE and res.trials[0]["baseline"]
    assert [t["baseline"] for t in res.trials] == [True, False, False]
    assert res.best_overrides == BASELINE and res.best_is_baseline and res.best_value == 0.8
    resumed = run_study(_crippled, SPACE, 4, tmp_path / "s.db", seed=0, baseline=BASELINE)
    assert sum(t["baseline"] for t in resumed.trials) == 1 and len(resumed.trials) == 4  # not re-run on resume


def test_a_better_candidate_beats_the_baseline(tmp_path) -> None:
    res = run_study(lambda o, n: 0.0 if o == BASELINE else 1.0, SPACE, 2, tmp_path / "s.db", baseline=BASELINE)
    assert not res.best_is_baseline and res.best_overrides != BASELINE and res.best_value == 1.0
