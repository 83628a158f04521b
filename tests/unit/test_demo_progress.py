"""`make demo`'s output: one line per DVC stage, the full log in a file, a failure shows its last lines; the closing
summary reads the compare report's own numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "demo_progress.py"

REPRO = """Running stage 'prepare':
> python -m inspection.cli.main pipeline prepare
+ inspection train logger=dvclive  (+38 overrides from params.yaml: data, model)
/x/_pytree.py:21: `isinstance(treespec, LeafSpec)` is deprecated
Stage 'labels' didn't change, skipping
Running stage 'compare':
[compare 1/12] baseline seed 0: training …
Updating lock file 'dvc.lock'
"""


def _run(stdin: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], input=stdin, capture_output=True, text=True,
                          timeout=60)


def test_one_line_per_stage_and_the_whole_log_in_a_file(tmp_path: Path) -> None:
    p = _run(REPRO, str(tmp_path / "repro.log"))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert [ln.split("] ", 1)[1] for ln in lines if ln.startswith("[") and " s] " in ln][:2] == ["prepare", "compare"]
    assert "[compare 1/12] baseline seed 0" in p.stdout
    assert "LeafSpec" not in p.stdout and "overrides" not in p.stdout  # the noise stays in the log
    assert "2 stages run (1 unchanged)" in lines[-1]
    assert (tmp_path / "repro.log").read_text() == REPRO
    times = json.loads((tmp_path / "repro.stages.json").read_text())
    assert list(times["stages"]) == ["prepare", "compare"] and times["skipped"] == 1


def test_a_failed_stage_shows_the_end_of_the_log(tmp_path: Path) -> None:
    p = _run("Running stage 'audit':\nTraceback ...\nValueError: boom\nERROR: failed to reproduce 'audit'\n",
             str(tmp_path / "repro.log"))
    assert p.returncode == 1 and "ValueError: boom" in p.stderr and "failed to reproduce" in p.stderr


def test_summary_says_what_the_table_showed(tmp_path: Path) -> None:
    def arm(mean: float, ci: float) -> dict:
        return {"accuracy": {"mean": 0.8 + mean}, "delta_vs_baseline": {"mean": mean, "ci95": ci}}

    report = {"dataset": "synth_steel", "n_test": 120, "n_seeds": 3,
              "arms": {"baseline": arm(0.0, 0.0), "model_centric": arm(0.004, 0.02),
                       "data_centric": arm(0.1, 0.03), "oracle": arm(0.15, 0.02)},
              "curation": {"label noise in train/val, v1 → v2": "18.1% → 3.2%",
                           "relabel budget used": "101 images (20.0% of train/val)"}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    text = _run("", "--summary", str(tmp_path / "report.json")).stdout
    assert "data-centric +10.0 pt (95% CI +7.0 to +13.0)" in text and "model-centric +0.4 pt" in text
    assert "18.1% → 3.2%" in text and "baseline 80.0%" in text
    assert text.count("\n") == 4
