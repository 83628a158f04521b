"""Compare report numbers: a few seeds' t-interval must not claim rates outside 0–100%."""

from __future__ import annotations

from inspection.evaluation.compare import mean_ci
from inspection.evaluation.compare_report import _pct, ci_bounds, plot_arms


def test_wide_interval_is_shown_clipped_and_narrow_one_as_plus_minus() -> None:
    wide = mean_ci([0.05, 0.95, 0.785])  # 3 seeds that disagree: t(2) = 4.30 → ± more than the mean
    assert wide["ci95"] > wide["mean"] and ci_bounds(wide) == (0.0, 1.0)
    assert _pct(wide) == "59.5 (CI 0.0–100.0)"
    narrow = mean_ci([0.90, 0.91, 0.89])
    assert _pct(narrow) == f"90.0 ± {100 * narrow['ci95']:.1f}"
    low = mean_ci([0.0, 0.02, 0.01])
    lo, hi = ci_bounds(low)
    assert lo == 0.0 and _pct(low).startswith("1.0 (CI 0.0–")
    assert _pct(mean_ci([0.5])) == "50.0"  # one seed: no interval


def test_bar_chart_error_bars_stay_inside_0_1(tmp_path) -> None:
    arms = {"baseline": {"accuracy": mean_ci([0.05, 0.95, 0.785]), "macro_f1": mean_ci([0.5, 0.6, 0.55])},
            "data_centric": {"accuracy": mean_ci([0.9]), "macro_f1": mean_ci([0.9])}}
    out = plot_arms(arms, tmp_path / "c.png", "t")
    assert out.stat().st_size > 1000


def _runs(tmp_path, name: str, accs: list[float]) -> list:
    import json

    runs = []
    for i, a in enumerate(accs):
        d = tmp_path / name / f"seed{i}" / "eval_test"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"accuracy": a}))
        runs.append(d.parent)
    return runs


def test_delta_is_paired_by_seed_with_its_own_interval(tmp_path) -> None:
    from inspection.evaluation.compare import paired_delta
    from inspection.evaluation.compare_report import _delta

    # The seeds' shared spread (0.70 … 0.90) cancels: the gain is 0.10 ± a little on every seed.
    base = _runs(tmp_path, "b", [0.70, 0.80, 0.90])
    better = _runs(tmp_path, "d", [0.81, 0.89, 1.00])
    d = paired_delta(base, better)
    assert abs(d["mean"] - 0.10) < 1e-9 and 0 < d["ci95"] < 0.05 and d["mean"] - d["ci95"] > 0
    assert _delta({"delta_vs_baseline": d}, 0.8).startswith("+10.0 (CI +")
    same = paired_delta(base, base)
    assert same["mean"] == 0 and same["ci95"] == 0 and _delta({"delta_vs_baseline": same}, 0.8) == "+0.0"
