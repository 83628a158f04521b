"""The compare report a person reads: report.md + report.json + bar chart (and the noise-sweep curve)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from inspection.core.files import atomic_write_text  # noqa: E402

LABELS = {"baseline": "baseline (v1)", "model_centric": "model-centric (v1, search)",
          "data_centric": "data-centric (v2)", "oracle": "oracle (gold)"}


def plot_arms(arms: dict[str, dict], path: Path, title: str) -> Path:
    """Grouped bars: accuracy and macro-F1 per arm, error bars = 95% CI over seeds."""
    names = list(arms)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for k, (metric, colour) in enumerate((("accuracy", "#3b6ea8"), ("macro_f1", "#e39b3b"))):
        means = [arms[n][metric]["mean"] for n in names]
        bounds = [(m, m) if np.isnan(arms[n][metric]["ci95"]) else ci_bounds(arms[n][metric])
                  for n, m in zip(names, means)]
        errs = [[m - lo for m, (lo, _) in zip(means, bounds)], [hi - m for m, (_, hi) in zip(means, bounds)]]
        bars = ax.bar(x + (k - 0.5) * 0.38, means, 0.38, yerr=errs, capsize=4, label=metric, color=colour)
        for b, m in zip(bars, means):
            ax.text(b.get_x() + b.get_width() / 2, m + 0.01, f"{100 * m:.1f}", ha="center", va="bottom", fontsize=8)
    lo = min(min(a["accuracy"]["mean"], a["macro_f1"]["mean"]) for a in arms.values())
    ax.set_ylim(max(0.0, lo - 0.15), 1.02)
    ax.set_xticks(x, [LABELS.get(n, n) for n in names], fontsize=8)
    ax.set_ylabel("gold test split")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_noise_curve(points: dict[str, dict[float, float]], path: Path, title: str) -> Path:
    """Accuracy vs injected noise rate, one line per arm."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for arm, curve in points.items():
        rates = sorted(curve)
        ax.plot([100 * r for r in rates], [curve[r] for r in rates], marker="o", label=LABELS.get(arm, arm))
    ax.set_xlabel("label noise in v1 (% of train/val images)")
    ax.set_ylabel("test accuracy (mean over seeds)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ci_bounds(d: dict) -> tuple[float, float]:
    """The t-interval clipped to [0, 1]: a rate cannot leave it, whatever few seeds' spread says."""
    return max(0.0, d["mean"] - d["ci95"]), min(1.0, d["mean"] + d["ci95"])


def _pct(d: dict) -> str:
    if np.isnan(d["ci95"]):
        return f"{100 * d['mean']:.1f}"
    lo, hi = ci_bounds(d)
    if lo == 0.0 or hi == 1.0:  # clipped: a symmetric ± would claim impossible values
        return f"{100 * d['mean']:.1f} (CI {100 * lo:.1f}–{100 * hi:.1f})"
    return f"{100 * d['mean']:.1f} ± {100 * d['ci95']:.1f}"


def leak_warning(leaks: dict[str, dict]) -> list[str]:
    """Lines for the top of the report when any arm trains on near-duplicates of test images (else none)."""
    leaked = {arm: c["near_duplicates_of_test"] for arm, c in leaks.items() if c.get("near_duplicates_of_test")}
    if not leaked:
        return []
    which = ", ".join(f"{LABELS.get(a, a)}: {n}" for a, n in leaked.items())
    return [f"> **Warning: the test split is leaked.** Train/val images that are near-duplicates of test images "
            f"({which}) make these scores, and the contrast between arms, overstate what a model does on new "
            "images. Fix the split first (`inspection data validate MANIFEST --regroup`).", ""]


def _delta(arm: dict, base: float) -> str:
    """Δ accuracy vs baseline in points, with the paired CI where the report has it."""
    d = arm.get("delta_vs_baseline")
    if not d:
        return f"{100 * (arm['accuracy']['mean'] - base):+.1f}"
    if np.isnan(d["ci95"]) or d["ci95"] == 0:
        return f"{100 * d['mean']:+.1f}"
    lo, hi = d["mean"] - d["ci95"], d["mean"] + d["ci95"]
    return f"{100 * d['mean']:+.1f} (CI {100 * lo:+.1f} to {100 * hi:+.1f})"


def render_markdown(report: dict) -> str:
    """A readable report: the table first, then what was done to the data and what changed."""
    arms = report["arms"]
    base = arms["baseline"]["accuracy"]["mean"] if "baseline" in arms else None
    lines = [f"# Data-centric vs model-centric — {report['dataset']}", "",
             *leak_warning(report.get("leak_check") or {}),
             f"Gold test split: {report['n_test']} images, identical in every arm; {report['n_seeds']} seeds per arm. "
             "Mean ± 95% CI over seeds (t-interval; shown as a range where it reaches 0 or 100%); Δ is paired by seed, "
             "with its own 95% CI.", "",
             "| arm | trained on | accuracy % | macro-F1 % | Δ acc vs baseline (pt) |", "|---|---|---|---|---|"]
    for name, a in arms.items():
        delta = "" if base is None else _delta(a, base)
        lines.append(f"| {LABELS.get(name, name)} | {a.get('note', '')} | {_pct(a['accuracy'])} | "
                     f"{_pct(a['macro_f1'])} | {delta} |")
    if any("escape_rate" in a for a in arms.values()):
        lines += ["", "| arm | AUROC | escape % | overkill % |", "|---|---|---|---|"]
        for name, a in arms.items():
            if "escape_rate" in a:
                lines.append(f"| {LABELS.get(name, name)} | {a['auroc']['mean']:.3f} | {_pct(a['escape_rate'])} | "
                             f"{_pct(a['overkill_rate'])} |")
    classes = list(next(iter(arms.values()))["per_class_recall"])
    lines += ["", "## Per-class recall (mean over seeds, %)", "",
              "| arm | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    for name, a in arms.items():
        lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(f"{100 * a['per_class_recall'][c]:.0f}"
                                                                  for c in classes) + " |")
    cur = report.get("curation", {})
    if cur:
        lines += ["", "## What the data-centric arm did", ""]
        for k, v in cur.items():
            lines.append(f"- **{k.replace('_', ' ')}**: {v}")
    audit = report.get("audit_vs_gold")
    if audit:
        lines += ["", "## Audit quality against gold (simulation only)", ""]
        for k, v in audit.items():
            lines.append(f"- {k.replace('_', ' ')}: {v:.3f}" if isinstance(v, float) else f"- {k.replace('_', ' ')}: {v}")
    mc = report.get("model_centric")
    if mc:
        lines += ["", "## Model-centric search", "", f"Selected on the (noisy) v1 validation labels: "
                  f"`{' '.join(mc.get('best_overrides', []))}` (val {mc.get('metric')}: {mc.get('best_value', float('nan')):.3f}, "
                  f"{len(mc.get('trials', []))} trials)."]
    flips = report.get("flipped", {})
    if flips:
        lines += ["", "## Test images whose verdict flipped (baseline → data-centric, majority over seeds)", "",
                  f"{flips['fixed']} fixed, {flips['broken']} broken; full list in `flipped.csv`."]
    if report.get("noise_sweep"):
        lines += ["", "## Noise sweep", "", "![accuracy vs noise](noise_curve.png)"]
    m = report.get("machine", {})
    where = f"{m.get('cpu_count', '?')} CPU cores, " + (m["gpu"]["name"] if m.get("gpu") else "no GPU")
    lines += ["", "![arms](compare.png)", "", f"Wall time: {report.get('wall_seconds', float('nan')):.0f} s "
              f"({where}).", ""]
    return "\n".join(lines)


def write_report(report: dict, out_dir: Path) -> Path:
    """report.json, report.md and compare.png in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_arms(report["arms"], out_dir / "compare.png", f"{report['dataset']}: gold test accuracy per arm")
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2, default=str) + "\n")
    atomic_write_text(out_dir / "report.md", render_markdown(report))
    return out_dir / "report.md"
