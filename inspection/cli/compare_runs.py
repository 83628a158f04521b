"""How `inspection compare` trains: one arm x seed run (picklable, for worker processes), the arms' recipes and
the model-centric search that starts from the baseline recipe."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from inspection.cli.compose import compose_train
from inspection.cli.hydra_entry import run_train
from inspection.evaluation.compare import Arm
from inspection.training.search import run_study


@dataclasses.dataclass(frozen=True)
class TrainRun:
    """Trains one arm × seed (a plain object: compare's worker processes receive it pickled)."""

    forward: tuple[str, ...]
    splits: str = "[test]"
    threads: int | None = None  # torch threads in a worker process; None: leave as is

    def __call__(self, arm: Arm, seed: int, run_dir: Path) -> Path:
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        cfg = compose_train([*self.forward, *arm.overrides, f"data.manifest='{arm.manifest}'", f"seed={seed}",
                             f"evaluate_splits={self.splits}", "trainer.enable_progress_bar=false"])
        run_train(cfg, out_dir=run_dir, quiet=True)
        return run_dir


def run_metric(run_dir: Path, metric: str) -> float:
    """`val_macro_f1` of a finished run, read from its eval_val/metrics.json."""
    split, key = metric.split("_", 1)
    return float(json.loads((run_dir / f"eval_{split}" / "metrics.json").read_text())[key])


def _search(cfg: DictConfig, forward: list[str], v1: Path, out: Path,
            baseline_run: Callable[[], Path] | None = None) -> dict:
    mc = cfg.compare.model_centric
    space = OmegaConf.to_container(mc.space, resolve=True)
    baseline = list(cfg.compare.recipe)  # trial 0: the search never selects below the baseline on validation

    def objective(trial: list[str], number: int) -> float:
        if trial == baseline and baseline_run is not None:
            # The baseline arm's seed-0 run is this very training (same recipe, labels and seed): train it once.
            return run_metric(baseline_run(), str(mc.metric))
        arm = Arm(f"trial_{number:03d}", v1, _arm_recipe(cfg, trial, trial == baseline))
        return run_metric(TrainRun(tuple(forward), "[val]")(arm, 0, out / arm.name), str(mc.metric))

    res = run_study(objective, space, int(mc.n_trials), out / "study.sqlite3", "maximize", int(mc.sampler_seed),
                    study_name="model_centric", baseline=baseline)
    return {"best_overrides": res.best_overrides, "best_value": res.best_value, "metric": str(mc.metric),
            "best_is_baseline": res.best_is_baseline, "trials": res.trials}


def _arm_recipe(cfg: DictConfig, trial: list[str], is_baseline: bool) -> list[str]:
    """A search trial's training overrides: the baseline recipe as it is, else the search recipe + the sample."""
    return list(trial) if is_baseline else [*cfg.compare.model_centric.recipe, *trial]


def _short(override: str) -> str:
    """`optim.lr=0.003538453590906551` → `optim.lr=0.00354`, for the table a person reads."""
    key, _, value = override.partition("=")
    try:
        return f"{key}={float(value):.3g}" if "." in value or "e" in value.lower() else override
    except ValueError:
        return override


def fixed_arms(cfg: DictConfig, dc) -> list[Arm]:
    """Baseline, data-centric and oracle: the fixed recipe on v1, v2 and gold labels."""
    recipe = list(cfg.compare.recipe)
    return [Arm("baseline", dc.v1_csv, recipe, "v1 labels, fixed recipe"),
            Arm("data_centric", dc.v2_csv, recipe, "v2 (curated), fixed recipe"),
            Arm("oracle", dc.gold_csv, recipe, "gold labels, fixed recipe")]


def mc_arm(cfg: DictConfig, dc, mc_overrides: list[str]) -> Arm:
    recipe = list(cfg.compare.recipe)
    return Arm("model_centric", dc.v1_csv, _arm_recipe(cfg, mc_overrides, mc_overrides == recipe),
               "v1 labels, searched: " + ("the baseline recipe won" if mc_overrides == recipe
                                          else " ".join(map(_short, mc_overrides))))


def model_centric(cfg: DictConfig, forward: list[str], v1: Path, out: Path,
                   baseline_run: Callable[[], Path] | None) -> dict:
    """The search's result (resumed from search.json when it finished earlier)."""
    search_json = out / "search" / "search.json"
    if search_json.is_file():
        return json.loads(search_json.read_text())
    print(f"[compare] model-centric search: {cfg.compare.model_centric.n_trials} trials on v1", flush=True)
    mc = _search(cfg, forward, v1, out / "search", baseline_run)
    search_json.write_text(json.dumps(mc, indent=2) + "\n")
    return mc


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Search trials train in this process while workers train arms: one thread each, restored afterwards."""
    if not threads:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)
