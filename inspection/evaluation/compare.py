"""Run comparison arms (baseline / model-centric / data-centric / oracle) × seeds on one gold test split.

Library code: each arm is a manifest plus training overrides; `train_fn` (supplied by the CLI, which owns
Hydra) trains one run and returns its output folder. Finished runs are detected by their train_summary.json,
so an interrupted compare resumes where it stopped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from inspection.data.manifest import load_manifest

ARM_ORDER = ("baseline", "model_centric", "data_centric", "oracle")
# Two-sided 95% Student t quantiles for n-1 degrees of freedom (seeds are few).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


@dataclass
class Arm:
    """One arm: what it trains on and how."""

    name: str
    manifest: Path
    overrides: list[str] = field(default_factory=list)
    note: str = ""


TrainFn = Callable[[Arm, int, Path], Path]  # (arm, seed, out_dir) → run folder holding eval_test/


def assert_same_test_split(arms: list[Arm]) -> int:
    """The gold test split must be identical (path, label, sha256) in every arm; returns its size."""
    ref = None
    for arm in arms:
        test = load_manifest(arm.manifest).split("test")[["path", "label", "sha256"]].sort_values("path")
        test = test.reset_index(drop=True)
        if ref is None:
            ref = test
        elif not ref.equals(test):
            raise ValueError(f"arm {arm.name}: its test split differs from {arms[0].name}'s — comparison invalid")
    return 0 if ref is None else len(ref)


def run_arms(arms: list[Arm], seeds: list[int], train_fn: TrainFn, out_dir: Path,
             progress: Callable[[str], None] = print, workers: int = 1) -> dict[str, list[Path]]:
    """Train every arm with every seed (resuming finished runs); returns the run folders per arm.

    An arm with the same labels and recipe as an earlier one (model-centric when the search kept the baseline
    recipe) shares that arm's runs: training is deterministic, so a rerun would repeat the same numbers.
    `workers` > 1 trains that many runs at once in worker processes (`train_fn` must then be picklable): small
    CPU trainings use two single-threaded processes better than one process with two threads.
    """
    runs: dict[str, list[Path]] = {}
    same: dict[tuple, str] = {}
    todo: list[tuple[str, Arm, int, Path]] = []
    total, done = len(arms) * len(seeds), 0
    for arm in arms:
        key = (str(Path(arm.manifest).resolve()), tuple(arm.overrides))
        if key in same:
            runs[arm.name] = list(runs[same[key]])
            done += len(seeds)
            progress(f"[compare {done}/{total}] {arm.name}: same labels and recipe as {same[key]}, its runs")
            continue
        same[key] = arm.name
        runs[arm.name] = []
        for seed in seeds:
            done += 1
            run_dir = out_dir / "runs" / arm.name / f"seed{seed}"
            label = f"[compare {done}/{total}] {arm.name} seed {seed}"
            if (run_dir / "train_summary.json").is_file() and (run_dir / "eval_test/metrics.json").is_file():
                progress(f"{label}: done earlier, reusing")
            else:
                todo.append((label, arm, seed, run_dir))
            runs[arm.name].append(run_dir)
    if workers <= 1 or len(todo) <= 1:
        for label, arm, seed, run_dir in todo:
            progress(f"{label}: training …")
            train_fn(arm, seed, run_dir)
    else:
        _train_in_workers(todo, train_fn, workers, progress)
    return runs


def _train_in_workers(todo: list[tuple[str, Arm, int, Path]], train_fn: TrainFn, workers: int,
                      progress: Callable[[str], None]) -> None:
    """The runs in `workers` spawned processes; the first failure stops the rest and is raised here."""
    import multiprocessing
    import time
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        start = time.perf_counter()
        futures = {pool.submit(train_fn, arm, seed, run_dir): label for label, arm, seed, run_dir in todo}
        progress(f"[compare] training {len(todo)} runs, {workers} at a time …")
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for f in finished:
                f.result()  # a worker's exception, re-raised with its own traceback text
                progress(f"{futures[f]}: trained ({time.perf_counter() - start:.0f} s)")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def mean_ci(values: list[float]) -> dict:
    """Mean, standard deviation and 95% t-interval half-width over seeds."""
    v = np.asarray(values, float)
    n = len(v)
    sd = float(v.std(ddof=1)) if n > 1 else 0.0
    half = _T95.get(n - 1, 1.96) * sd / math.sqrt(n) if n > 1 else float("nan")
    return {"mean": float(v.mean()), "std": sd, "ci95": half, "n": n, "values": [float(x) for x in v]}


def _load_metrics(run: Path) -> dict:
    return json.loads((run / "eval_test" / "metrics.json").read_text())


def _predictions(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "eval_test" / "predictions.csv", dtype=str, keep_default_na=False)


def arm_summary(runs: list[Path]) -> dict:
    """Accuracy/macro-F1 with CI over seeds, per-class recall means, OK/NG escape/overkill when present."""
    ms = [_load_metrics(r) for r in runs]
    out = {"accuracy": mean_ci([m["accuracy"] for m in ms]), "macro_f1": mean_ci([m["macro_f1"] for m in ms]),
           "per_class_recall": {c: float(np.mean([m["per_class"][c]["recall"] for m in ms]))
                                for c in ms[0]["per_class"]},
           "runs": [str(r) for r in runs]}
    if all("okng" in m for m in ms):
        for key in ("auroc", "escape_rate", "overkill_rate"):
            out[key] = mean_ci([m["okng"][key] for m in ms])
    return out


def paired_delta(baseline: list[Path], other: list[Path], metric: str = "accuracy") -> dict:
    """`other` minus `baseline` per seed (runs paired by seed, same order), with the 95% t-interval of the mean.

    Pairing removes the seed-to-seed spread both arms share (same initialisation, same batches), so the interval
    is about the difference itself; with identical runs it is exactly 0 ± 0.
    """
    if len(baseline) != len(other):
        raise ValueError(f"paired delta needs the same seeds in both arms: {len(baseline)} vs {len(other)} runs")
    return mean_ci([_load_metrics(o)[metric] - _load_metrics(b)[metric] for b, o in zip(baseline, other)])


def majority_predictions(runs: list[Path]) -> pd.DataFrame:
    """Per test image: the label, the most frequent predicted class over seeds, and how many seeds were right."""
    frames = [_predictions(r)[["path", "label", "predicted"]] for r in runs]
    merged = frames[0].rename(columns={"predicted": "p0"})
    for i, f in enumerate(frames[1:], 1):
        merged = merged.merge(f[["path", "predicted"]].rename(columns={"predicted": f"p{i}"}), on="path")
    cols = [f"p{i}" for i in range(len(frames))]
    merged["predicted"] = merged[cols].mode(axis=1)[0]
    merged["n_correct"] = sum((merged[c] == merged["label"]).astype(int) for c in cols)
    return merged[["path", "label", "predicted", "n_correct"]]


def flipped_verdicts(baseline: list[Path], other: list[Path]) -> pd.DataFrame:
    """Test images whose majority verdict changed from wrong to right (fixed) or right to wrong (broken)."""
    a, b = majority_predictions(baseline), majority_predictions(other)
    m = a.merge(b, on=["path", "label"], suffixes=("_baseline", "_other"))
    right_a, right_b = m["predicted_baseline"] == m["label"], m["predicted_other"] == m["label"]
    m["change"] = np.where(~right_a & right_b, "fixed", np.where(right_a & ~right_b, "broken", ""))
    return m[m["change"] != ""].reset_index(drop=True)
