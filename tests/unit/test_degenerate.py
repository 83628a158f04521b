"""Issue 21, the pure parts: degenerate-model warnings, NG rows name a defect, the int8 gate on small classes,
short class labels, stamps keyed by inputs, wall time across resumes, stale Optuna trials."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from inspection.core.class_labels import legend, short_labels
from inspection.core.postprocess import Thresholds, postprocess
from inspection.core.results import ResultRecord
from inspection.core.stamp import WallClock, claim_folder, stamp_matches, write_stamp
from inspection.evaluation.degenerate import degenerate_warnings, okng_line
from inspection.evaluation.metrics import compute_metrics

CLASSES = ["Free", "crack", "stain"]
OKNG = Thresholds(ok_classes=("Free",))


def _records(labels: list[str], probs: list[list[float]]) -> list[ResultRecord]:
    return [ResultRecord(f"{i}.png", np.asarray(p, np.float32), lab) for i, (lab, p) in enumerate(zip(labels, probs))]


def _labels(n_ok: int = 70, n_ng: int = 30) -> list[str]:
    return ["Free"] * n_ok + ["crack", "stain"] * (n_ng // 2)


def test_constant_ok_model_is_flagged_and_okng_line_shows_escape_and_overkill() -> None:
    labels = _labels()
    m = compute_metrics(_records(labels, [[0.9, 0.05, 0.05]] * len(labels)), CLASSES, OKNG)
    w = degenerate_warnings(m)
    assert any("predicts 'Free' for 100% of 100 images" in x for x in w), w
    assert any("most common class" in x for x in w) and any("cannot be told from chance" in x for x in w)
    assert any("escape rate 100%" in x for x in w)
    line = okng_line(m)
    assert "escape 100.0% of 30 defective" in line and "overkill 0.0% of 70 good" in line


def test_a_model_that_learned_is_not_flagged() -> None:
    labels = _labels()
    onehot = {c: np.eye(3)[i] * 0.9 + 0.1 / 3 for i, c in enumerate(CLASSES)}
    probs = [onehot[lab] if i % 10 else onehot["stain" if lab == "crack" else "crack"] for i, lab in enumerate(labels)]
    assert degenerate_warnings(compute_metrics(_records(labels, probs), CLASSES, OKNG)) == []


def test_ng_row_names_the_most_likely_defect_not_the_ok_class() -> None:
    # p_ng = 0.52 crosses the NG threshold although "Free" (0.48) is the single most likely class
    v = postprocess(np.array([[0.48, 0.30, 0.22], [0.9, 0.06, 0.04]]), CLASSES, OKNG)
    assert (v[0].verdict, v[0].predicted, v[0].confidence) == ("NG", "crack", pytest.approx(0.30))
    assert (v[1].verdict, v[1].predicted) == ("OK", "Free")
    unsure = postprocess(np.array([[0.48, 0.30, 0.22]]), CLASSES, Thresholds(("Free",), min_confidence=0.4))
    assert unsure[0].verdict == "REVIEW"  # the defect type itself must be confident


def test_int8_gate_allows_one_image_on_a_small_class_but_not_two() -> None:
    from inspection.export.quantize import precision_gate

    classes = ["a", "b"]
    onehot = {c: np.eye(2)[i] for i, c in enumerate(classes)}
    labels = ["a"] * 25 + ["b"] * 400
    ref = [ResultRecord(f"{i}", onehot[lab], lab) for i, lab in enumerate(labels)]

    def flip(k: int) -> list[ResultRecord]:
        return [ResultRecord(r.path, onehot["b"] if i < k else r.probs, r.label) for i, r in enumerate(ref)]

    one = precision_gate(ref, flip(1), classes, "int8")  # 4 pt of 'a', but one image: its recall's resolution
    assert one.passed, one.to_text()
    assert one.images_lost["a"] == 1 and one.images_allowed["a"] == 1
    two = precision_gate(ref, flip(2), classes, "int8")
    assert not two.passed and "2 of 25 images lost > 1 allowed" in " ".join(two.reasons)


def test_short_labels_keep_two_long_names_apart_with_a_legend() -> None:
    names = ["Free", "oxide scale of plate system", "oxide scale of temperature system"]
    short = short_labels(names, 12)
    assert short["Free"] == "Free" and all(len(s) <= 12 for s in short.values())
    assert len(set(short.values())) == 3
    assert legend(short) == [f"{short[n]} = {n}" for n in names[1:]]
    from inspection.edge.report_html import histogram_svg

    svg = histogram_svg({names[1]: 3, names[2]: 2})
    assert "<title>oxide scale of temperature system</title>" in svg and 'id="class-legend"' in svg
    assert ">le of temperature system<" not in svg


def test_claim_folder_never_reuses_another_inputs_work(tmp_path) -> None:
    out = tmp_path / "compare" / "folder_tiny"
    first = {"manifest_hash": "aaa"}
    assert claim_folder(out, first, explicit=False) == out and stamp_matches(out, first)
    (out / "report.json").write_text("{}")
    assert claim_folder(out, first, explicit=False) == out  # same inputs: resume
    second = claim_folder(out, {"manifest_hash": "bbb"}, explicit=False)
    assert second != out and second.parent == out.parent and stamp_matches(second, {"manifest_hash": "bbb"})
    (second / "x").write_text("")
    assert claim_folder(out, {"manifest_hash": "bbb"}, explicit=False) == second  # and it resumes there
    from inspection.core.errors import ConfigError

    with pytest.raises(ConfigError, match="made from other inputs.*manifest_hash"):
        claim_folder(out, {"manifest_hash": "ccc"}, explicit=True)
    legacy = tmp_path / "legacy"
    (legacy / "runs").mkdir(parents=True)  # unstamped work cannot be checked: never reused
    assert claim_folder(legacy, first, explicit=False) != legacy
    write_stamp(legacy, first)
    assert claim_folder(legacy, first, explicit=False) == legacy


def test_wall_clock_adds_up_attempts(tmp_path, monkeypatch) -> None:
    import inspection.core.stamp as stamp

    now = [100.0]
    monkeypatch.setattr(stamp.time, "monotonic", lambda: now[0])
    c = WallClock(tmp_path / "wall.json")
    now[0] += 30
    c.save()  # interrupted after 30 s
    c = WallClock(tmp_path / "wall.json")
    now[0] += 12
    assert c.total() == pytest.approx(42)
    now[0] += 5
    assert WallClock(tmp_path / "wall.json").total() == pytest.approx(42)  # a rerun of a finished job adds nothing


def test_stale_running_trial_is_failed_and_not_counted(tmp_path) -> None:
    from inspection.training.search import run_study

    space = {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}}
    db = tmp_path / "s.db"
    study = optuna.create_study(study_name="search", storage=f"sqlite:///{db}")
    study.ask()  # a trial whose process died: RUNNING forever
    res = run_study(lambda o, n: 1.0, space, 2, db)
    states = [t.state for t in optuna.load_study(study_name="search", storage=res.storage).trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2 and states[0] == optuna.trial.TrialState.FAIL
    assert optuna.trial.TrialState.RUNNING not in states


def test_interrupted_trial_is_failed_and_the_interrupt_surfaces(tmp_path) -> None:
    from inspection.training.search import run_study

    space = {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}}

    def objective(overrides: list[str], number: int) -> float:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(objective, space, 2, tmp_path / "i.db")
    res = run_study(lambda o, n: 0.5, space, 2, tmp_path / "i.db")
    states = [t.state for t in optuna.load_study(study_name="search", storage=res.storage).trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.COMPLETE]
