"""Metrics from result records, checked against hand-computed values."""

import numpy as np
import pytest

from inspection.core.postprocess import Thresholds
from inspection.core.results import ResultRecord
from inspection.evaluation.metrics import auroc, compute_metrics, confusion_matrix, per_class_scores


def _rec(label: str, probs) -> ResultRecord:
    return ResultRecord(path=f"{label}.png", probs=np.asarray(probs, float), label=label)


def test_confusion_and_scores_by_hand():
    cm = confusion_matrix(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), 2)
    assert cm.tolist() == [[1, 1], [1, 2]]
    p, r, f1 = per_class_scores(cm)
    assert p.tolist() == pytest.approx([0.5, 2 / 3])
    assert r.tolist() == pytest.approx([0.5, 2 / 3])
    assert f1.tolist() == pytest.approx([0.5, 2 / 3])


def test_auroc_known_values():
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    # one inversion out of four pairs; ties count half
    assert auroc(np.array([0, 1, 0, 1]), np.array([0.1, 0.3, 0.4, 0.9])) == 0.75
    assert auroc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5


def test_compute_metrics_multiclass():
    classes = ["a", "b", "c"]
    recs = [_rec("a", [0.8, 0.1, 0.1]), _rec("b", [0.1, 0.8, 0.1]), _rec("c", [0.6, 0.2, 0.2]),
            ResultRecord("bad.png", None, "a", error="truncated JPEG")]
    m = compute_metrics(recs, classes)
    assert m["n"] == 3 and m["n_errors"] == 1
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["per_class"]["c"]["recall"] == 0.0
    assert m["confusion_matrix"][2] == [1, 0, 0]
    lo, hi = m["accuracy_ci95"]
    assert 0.0 <= lo <= m["accuracy"] <= hi <= 1.0


def test_okng_escape_and_overkill():
    classes = ["good", "crack"]
    thr = Thresholds(ok_classes=("good",), ng=0.5, ok=0.5)
    recs = [_rec("good", [0.9, 0.1]), _rec("good", [0.3, 0.7]),  # one overkill of two good
            _rec("crack", [0.2, 0.8]), _rec("crack", [0.6, 0.4]), _rec("crack", [0.1, 0.9]), _rec("crack", [0.1, 0.9])]
    m = compute_metrics(recs, classes, thr)["okng"]
    assert m["overkill_rate"] == pytest.approx(0.5)
    assert m["escape_rate"] == pytest.approx(0.25)
    assert m["n_defective"] == 4 and m["n_good"] == 2
    # p_ng scores: good 0.1, 0.7; crack 0.8, 0.4, 0.9, 0.9 → pairs won: 4 + 3 = 7 of 8
    assert m["auroc"] == pytest.approx(7 / 8)


def test_unknown_label_is_an_error():
    with pytest.raises(ValueError, match="not model classes"):
        compute_metrics([_rec("zzz", [1.0])], ["a"])
