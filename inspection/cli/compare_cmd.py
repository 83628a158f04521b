"""`inspection compare`: baseline / model-centric / data-centric / oracle arms × seeds on one gold test split.

Composes conf/compare.yaml (+ a preset from conf/compare/) and drives the library: curation.campaign for the
data-centric loop, training.search for the model-centric search, evaluation.compare for the arms and report.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from inspection.cli.compare_runs import TrainRun, fixed_arms, mc_arm, model_centric, torch_threads
from inspection.cli.compose import compose_config, compose_group
from inspection.cli.config import prepare_dataset, to_dataclass
from inspection.core.files import file_sha256
from inspection.core.stamp import WallClock, claim_folder
from inspection.curation.audit import AuditConfig
from inspection.curation.campaign import load_data_centric, run_data_centric
from inspection.curation.curate import CurationConfig
from inspection.curation.simulate import LabelingConfig
from inspection.data.leak_check import warn_if_leaked
from inspection.data.manifest import load_manifest, manifest_hash
from inspection.edge.providers import available_cpus
from inspection.evaluation.arm_runner import ArmRunner, run_arms
from inspection.evaluation.compare import (
    ARM_ORDER,
    Arm,
    arm_summary,
    assert_same_test_split,
    flipped_verdicts,
    paired_delta,
)
from inspection.evaluation.compare_report import plot_noise_curve, write_report
from inspection.evaluation.machine import machine_info
from inspection.evaluation.slices_compare import write_slice_deltas

FORWARDED = ("data", "trainer", "paths")  # compare overrides that also shape every training run


def _key(o: str) -> str:
    return o.split("=", 1)[0].lstrip("+~")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _settings(cfg: DictConfig) -> tuple[LabelingConfig, AuditConfig, CurationConfig]:
    c = OmegaConf.to_container(cfg.compare, resolve=True)
    labeling = to_dataclass(LabelingConfig, _merge(compose_group("labeling", []), c.get("labeling") or {}))
    cur = compose_group("curation", [])
    audit_d = _merge(cur["audit"], c.get("audit") or {})
    audit_d["queue"]["budget"] = c["relabel_budget"]
    audit_d["cache_dir"] = audit_d.get("cache_dir") or str(Path(cfg.out_dir) / "oof-cache")
    curate_d = _merge(cur["curate"], c.get("curate") or {})
    if curate_d.get("ambiguous_priority") is None and cfg.data.get("ambiguous_priority"):
        curate_d["ambiguous_priority"] = list(cfg.data.ambiguous_priority)  # the dataset's written rule
    return labeling, to_dataclass(AuditConfig, audit_d), to_dataclass(CurationConfig, curate_d)


def run_compare(overrides: list[str]) -> dict:
    """The whole comparison; returns the report dict (also written as report.json/.md + compare.png)."""
    cfg = compose_config("compare", overrides)
    forward = [o for o in overrides if _key(o).split(".")[0] in FORWARDED]
    start = time.perf_counter()
    gold = load_manifest(prepare_dataset(cfg.data))
    out = claim_folder(cfg.out_dir, _made_from(cfg, forward, gold), any(_key(o) == "out_dir" for o in overrides),
                       "compare")
    with open_dict(cfg):
        cfg.out_dir = str(out)
    clock = WallClock(out / "wall_seconds.json")
    try:
        return _run(cfg, forward, gold, out, clock, start)
    except BaseException:  # Ctrl-C, a crash: the time spent still counts when the compare resumes
        clock.save()
        raise


def _run(cfg: DictConfig, forward: list[str], gold, out: Path, clock: WallClock, start: float) -> dict:
    labeling, audit, curation = _settings(cfg)
    if cfg.get("label_sets"):  # made earlier (the DVC pipeline's stages): train on exactly those
        ls = cfg.label_sets
        dc = load_data_centric(ls.campaign, ls.audit, ls.relabel, ls.curated)
        _check_same_gold_test(gold, dc.gold_csv)
        print(f"[data-centric] label sets v1 and v2 from {ls.campaign} and {ls.curated}", flush=True)
    else:
        dc = run_data_centric(gold, out / "data", labeling, audit, curation, str(cfg.compare.relabel_method))
    fixed = fixed_arms(cfg, dc)
    n_test = assert_same_test_split(fixed)
    leaks = arm_leak_checks(fixed, str(cfg.paths.cache_dir))  # warned before the training, recorded in the report
    seeds, workers = list(cfg.compare.seeds), int(cfg.compare.get("workers", 1))
    threads = max(1, available_cpus() // workers) if workers > 1 else None
    train = TrainRun(tuple(forward), threads=threads)
    with ArmRunner(train, out, seeds, len(ARM_ORDER), workers, lambda m: print(m, flush=True)) as runner, \
            torch_threads(threads):
        # The baseline is also scored on val: its seed-0 run is the search's trial 0 (same recipe, labels, seed).
        runner.add(fixed[0], dataclasses.replace(train, splits="[val,test]"), splits=("val", "test"))
        for arm in fixed[1:]:  # with workers these train while the search below runs
            runner.add(arm)
        mc = model_centric(cfg, forward, dc.v1_csv, out,
                            (lambda: runner.wait_for(out / "runs" / "baseline" / "seed0")) if 0 in seeds else None)
        searched = mc_arm(cfg, dc, mc["best_overrides"])
        runner.add(searched)
        runs = runner.finish()
    arms = sorted([*fixed, searched], key=lambda a: ARM_ORDER.index(a.name))
    leaks["model_centric"] = leaks["baseline"]  # the same label set
    flips = flipped_verdicts(runs["baseline"], runs["data_centric"])
    flips.to_csv(out / "flipped.csv", index=False)
    write_slice_deltas(runs, gold, out)  # per-slice deltas between the arms: slice_deltas.csv/.md
    s = dc.summary
    report = {
        "dataset": cfg.data.name, "preset": cfg.compare.name, "n_test": n_test, "n_seeds": len(cfg.compare.seeds),
        "leak_check": leaks,
        "arms": {a.name: {**arm_summary(runs[a.name]), "note": a.note,
                          "delta_vs_baseline": paired_delta(runs["baseline"], runs[a.name])} for a in arms},
        "curation": {"relabel budget used": f"{s['relabel_budget_used']} images "
                                            f"({100 * s['relabel_budget_share']:.1f}% of train/val)",
                     "relabelled": s["curation"].get("relabelled"), "removed": s["curation"].get("removed"),
                     "label noise in train/val, v1 → v2": _noise(s["curation"]),
                     "by reason": s["curation"].get("by_reason")},
        "audit_vs_gold": _audit(s.get("audit_vs_gold")), "model_centric": mc,
        "flipped": {"fixed": int((flips["change"] == "fixed").sum()), "broken": int((flips["change"] == "broken").sum())},
        "data_centric_summary": s, "config": OmegaConf.to_container(cfg, resolve=True), "machine": machine_info(),
    }
    if cfg.noise_sweep:
        report["noise_sweep"] = _noise_sweep(cfg, forward, gold, out, labeling, audit, curation, mc, runs)
        plot_noise_curve({a: {p["noise"]: p["accuracy"] for p in pts} for a, pts in report["noise_sweep"].items()},
                         out / "noise_curve.png", f"{cfg.data.name}: accuracy vs label noise")
    report["wall_seconds"] = clock.total()  # every attempt of this compare, resumes included
    report["wall_seconds_this_run"] = time.perf_counter() - start
    write_report(report, out)
    return report


def arm_leak_checks(arms: list[Arm], cache_dir: str | None) -> dict[str, dict]:
    """Each arm's train/val → test near-duplicate count (warned when non-zero), one check per distinct manifest."""
    done: dict[str, dict] = {}
    out = {}
    for arm in arms:
        key = str(Path(arm.manifest).resolve())
        if key not in done:
            done[key] = warn_if_leaked(load_manifest(arm.manifest), f"compare arm {arm.name}",
                                       cache_dir=cache_dir).record()
        out[arm.name] = done[key]
    return out


def _check_same_gold_test(gold, gold_csv: Path) -> None:
    """Label sets made from other data would compare arms on a test split that is not this dataset's."""
    cols = ["path", "label", "sha256"]
    ours = gold.split("test")[cols].sort_values("path").reset_index(drop=True)
    theirs = load_manifest(gold_csv).split("test")[cols].sort_values("path").reset_index(drop=True)
    if not ours.equals(theirs):
        raise ValueError(f"label_sets: {gold_csv} has another gold test split than dataset {gold.name!r} — the "
                         "label sets were made from other data")


def _made_from(cfg: DictConfig, forward: list[str], gold) -> dict:
    """What a compare folder's results depend on: the gold data's content, the preset, the forwarded overrides.

    Seeds and noise rates are left out: each run has its own sub-folder, so adding seeds resumes the others.
    """
    preset = {k: v for k, v in OmegaConf.to_container(cfg.compare, resolve=True).items()
              if k not in ("seeds", "noise_seeds", "noise_rates", "name")}
    label_sets = {}
    if cfg.get("label_sets"):  # the label files' bytes: relabelled sets must not reuse old runs
        ls = cfg.label_sets
        label_sets = {str(p): file_sha256(p) for p in (Path(ls.campaign) / "manifest_v1.csv",
                                                       *sorted(Path(ls.curated).glob("manifest_*.csv"))) if p.is_file()}
    return {"manifest_hash": manifest_hash(gold), "classes": list(gold.classes), "ok_classes": list(gold.ok_classes),
            **({"label_sets": label_sets} if label_sets else {}),
            "compare": preset, "overrides": sorted(o for o in forward if not _key(o).startswith("data.prepare")
                                                   and _key(o) != "data.manifest")}


def _noise(c: dict) -> str:
    if "noise_before" not in c:
        return "unknown (no gold labels)"
    return f"{100 * c['noise_before']:.1f}% → {100 * c['noise_after']:.1f}%"


def _audit(score: dict | None) -> dict | None:
    if not score:
        return None
    return {"wrong in v1 (labels + bad acquisitions)": score["n_wrong"], "base rate": score["base_rate"],
            "queue precision": score["queue"]["precision"], "queue recall": score["queue"]["recall"],
            "queue recall ceiling (budget)": score["queue_recall_ceiling"],
            "label issues precision": score["label_issues"]["precision"],
            "label issues recall": score["label_issues"]["recall"],
            "quality flags recall (bad acquisitions)": score["quality_flags"]["recall"]}


def _noise_sweep(cfg, forward, gold, out, labeling, audit, curation, mc, main_runs) -> dict[str, list[dict]]:
    """Arms over injected noise rates; oracle is noise-free, so its main runs are reused."""
    points: dict[str, list[dict]] = {"baseline": [], "model_centric": [], "data_centric": [], "oracle": []}
    oracle_acc = arm_summary(main_runs["oracle"])["accuracy"]["mean"]
    for rate in cfg.compare.noise_rates:
        lab = dataclasses.replace(labeling, pair_noise=[float(rate)] * labeling.n_labelers, other_noise=0.0,
                                  bias_rate=0.0)
        sub = out / "noise" / f"rate{rate:g}"
        print(f"[compare] noise sweep: rate {rate:g}", flush=True)
        dc = run_data_centric(gold, sub / "data", lab, audit, curation, str(cfg.compare.relabel_method))
        arms = [*fixed_arms(cfg, dc)[:2], mc_arm(cfg, dc, mc["best_overrides"])]  # no oracle: gold has no noise
        runs = run_arms(arms, list(cfg.compare.noise_seeds), TrainRun(tuple(forward)), sub, lambda m: print(m, flush=True))
        noise = dc.summary["curation"].get("noise_before", float(rate))
        for a in arms:
            points[a.name].append({"rate": float(rate), "noise": noise,
                                   "accuracy": arm_summary(runs[a.name])["accuracy"]["mean"]})
        points["oracle"].append({"rate": float(rate), "noise": noise, "accuracy": oracle_acc})
    pd.DataFrame([{"arm": a, **p} for a, pts in points.items() for p in pts]).to_csv(out / "noise_sweep.csv", index=False)
    return points
