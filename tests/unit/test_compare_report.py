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
