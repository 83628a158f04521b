"""The demo's compare (`compare=demo`, what `make demo`'s compare stage runs) on several synthetic generator seeds.

python scripts/bench_demo.py [--seeds 0 1 2 3 4] [--out benchmarks/results/demo_seeds.json] [--work /tmp/bench_demo]
Each generator seed gets its own dataset and campaign (own INSPECTION_ROOT under --work); the arms, the paired
Δ vs baseline with its 95% CI, the audit's precision and the label noise before/after curation are collected
with the wall and CPU time of each run and the machine's load average, so a number measured on a busy box says so.
A finished seed is kept in <work>/seed<N>/bench.json: several invocations (e.g. one per seed, in parallel) and a
last one over all seeds assemble the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inspection.evaluation.machine import machine_info  # noqa: E402


def _cpu_seconds() -> float:
    """This process and its finished children (compare's worker processes)."""
    return sum(ru.ru_utime + ru.ru_stime for ru in (resource.getrusage(resource.RUSAGE_SELF),
                                                    resource.getrusage(resource.RUSAGE_CHILDREN)))


def run_seed(seed: int, work: Path, extra: list[str]) -> dict:
    """One compare on generator seed `seed`; returns the figures that tell the story."""
    from inspection.cli.compare_cmd import run_compare

    os.environ["INSPECTION_ROOT"] = str(work / f"seed{seed}")
    load0, cpu0, t0 = os.getloadavg()[0], _cpu_seconds(), time.perf_counter()
    try:
        r = run_compare(["compare=demo", f"data.prepare.seed={seed}", *extra])
    finally:
        os.environ.pop("INSPECTION_ROOT")
    arms = r["arms"]
    audit = r["audit_vs_gold"] or {}
    return {
        "generator_seed": seed,
        "accuracy": {a: round(v["accuracy"]["mean"], 4) for a, v in arms.items()},
        "delta_vs_baseline": {a: {"mean": round(v["delta_vs_baseline"]["mean"], 4),
                                  "ci95": round(v["delta_vs_baseline"]["ci95"], 4)}
                              for a, v in arms.items() if a != "baseline"},
        "model_centric_selected": r["model_centric"]["best_overrides"],
        "model_centric_is_baseline": r["model_centric"].get("best_is_baseline"),
        "noise_v1_to_v2": r["curation"]["label noise in train/val, v1 → v2"],
        "queue_precision": audit.get("queue precision"), "queue_recall": audit.get("queue recall"),
        "label_issues_precision": audit.get("label issues precision"),
        "n_test": r["n_test"], "n_seeds": r["n_seeds"],
        "wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(_cpu_seconds() - cpu0, 1),
        "load_avg_1min_start": round(load0, 2), "load_avg_1min_end": round(os.getloadavg()[0], 2),
    }


def partial_seed(seed: int, work: Path) -> dict:
    """What an unfinished seed got done: the curation loop's figures and the arm runs that finished."""
    out = work / f"seed{seed}" / "outputs" / "compare" / "synth_steel_demo"
    entry: dict = {"generator_seed": seed, "finished": False}
    dc = out / "data" / "data_centric.json"
    if dc.is_file():
        s = json.loads(dc.read_text())
        a, c = s["audit_vs_gold"], s["curation"]
        entry |= {"noise_v1_to_v2": f"{100 * c['noise_before']:.1f}% → {100 * c['noise_after']:.1f}%",
                  "queue_precision": a["queue"]["precision"], "queue_recall": a["queue"]["recall"],
                  "label_issues_precision": a["label_issues"]["precision"]}
    entry["finished_runs"] = {arm.name: {r.name: json.loads((r / "eval_test/metrics.json").read_text())["accuracy"]
                                         for r in sorted(arm.iterdir()) if (r / "eval_test/metrics.json").is_file()}
                              for arm in sorted((out / "runs").iterdir())} if (out / "runs").is_dir() else {}
    return entry


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--out", type=Path, default=REPO / "benchmarks/results/demo_seeds.json")
    p.add_argument("--work", type=Path, default=Path("/tmp/bench_demo"))
    p.add_argument("--collect-only", action="store_true",
                   help="run nothing: assemble finished seeds, and what unfinished ones got done")
    p.add_argument("overrides", nargs="*", help="extra compare overrides (key=value)")
    a = p.parse_args()
    runs, unfinished = [], []
    for seed in a.seeds:
        done = a.work / f"seed{seed}" / "bench.json"  # a finished seed keeps its own timing (parallel invocations)
        if not done.is_file() and a.collect_only:
            unfinished.append(partial_seed(seed, a.work))
            continue
        runs.append(json.loads(done.read_text()) if done.is_file() else run_seed(seed, a.work, a.overrides))
        done.write_text(json.dumps(runs[-1], indent=2) + "\n")
        print(json.dumps(runs[-1]), flush=True)
    if not runs:
        raise SystemExit("no finished seed to report")
    dc = [r["delta_vs_baseline"]["data_centric"] for r in runs]
    mc = [r["delta_vs_baseline"]["model_centric"]["mean"] for r in runs]
    summary = {
        "data_centric_delta_min": min(d["mean"] for d in dc), "data_centric_delta_max": max(d["mean"] for d in dc),
        "data_centric_ci_low_min": min(d["mean"] - d["ci95"] for d in dc),
        "model_centric_delta_min": min(mc), "model_centric_delta_max": max(mc),
        "oracle_above_both": all(r["accuracy"]["oracle"] >= max(r["accuracy"]["data_centric"],
                                                                 r["accuracy"]["model_centric"]) for r in runs),
    }
    out = {"baseline_in_this_run": {
               "what": "each run's baseline arm (v1 labels, fixed recipe) on the same gold test split and seeds, same "
                       "compare run; every delta is paired against it; the oracle arm (gold labels) is the ceiling "
                       "in the same run",
               "anchor": "the bare-loop anchors (../shared/anchors) are NEU/pill only; not run on synthetic steel"},
           "what": "compare=demo on synthetic steel, one run per generator seed (data.prepare.seed)",
           "overrides": a.overrides, "summary": summary, "runs": runs, "unfinished": unfinished,
           "machine": machine_info()}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
