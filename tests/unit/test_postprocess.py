"""Probabilities → OK / NG / REVIEW with the card's thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from inspection.core.postprocess import Thresholds, ng_probability, postprocess

PILL = ["good", "crack", "scratch"]


def test_okng_bands() -> None:
    thr = Thresholds(ok_classes=("good",), ng=0.7, ok=0.3)
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.5, 0.3, 0.2], [0.7, 0.2, 0.1], [0.3, 0.4, 0.3]])
    v = postprocess(probs, PILL, thr)
    assert [x.verdict for x in v] == ["OK", "NG", "REVIEW", "REVIEW", "NG"]
    assert v[1].predicted == "crack" and v[1].confidence == pytest.approx(0.7) and v[1].p_ng == pytest.approx(0.8)
    assert v[0].probs == {"good": 0.9, "crack": 0.05, "scratch": 0.05}


def test_boundaries_are_inclusive_for_ng_exclusive_for_ok() -> None:
    thr = Thresholds(ok_classes=("good",), ng=0.6, ok=0.4)
    v = postprocess(np.array([[0.4, 0.6, 0.0], [0.6, 0.4, 0.0]]), PILL, thr)
    assert [x.verdict for x in v] == ["NG", "REVIEW"]  # p_ng = 0.6 → NG; p_ng = 0.4 is not < 0.4 → REVIEW


def test_min_confidence_sends_unsure_defects_to_review() -> None:
    thr = Thresholds(ok_classes=("good",), ng=0.5, ok=0.5, min_confidence=0.6)
    v = postprocess(np.array([[0.1, 0.45, 0.45], [0.1, 0.8, 0.1]]), PILL, thr)
    assert [x.verdict for x in v] == ["REVIEW", "NG"]


def test_all_defect_classes_neu_style() -> None:
    neu = ["crazing", "inclusion", "patches"]
    v = postprocess(np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]]), neu, Thresholds(min_confidence=0.5))
    assert [x.verdict for x in v] == ["NG", "REVIEW"]  # no OK class: every image is a defect, type confidence decides
    assert ng_probability(np.ones((2, 3)) / 3, neu, ()).tolist() == [1.0, 1.0]


def test_shape_mismatch_and_bad_thresholds() -> None:
    with pytest.raises(ValueError, match="does not match 3 classes"):
        postprocess(np.ones((2, 4)) / 4, PILL, Thresholds())
    with pytest.raises(ValueError, match="ok .* <= ng"):
        Thresholds(ng=0.3, ok=0.6)


def test_thresholds_round_trip() -> None:
    thr = Thresholds(ok_classes=("good",), ng=0.8, ok=0.2, min_confidence=0.3)
    assert Thresholds.from_dict(thr.to_dict()) == thr
