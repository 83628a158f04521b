"""The model card and the checkpoint's decision configuration are validated completely on load (issue 15, case 9):
a bad value is a ModelCardError / CheckpointError naming the key, never an ERROR row per image or a traceback."""

from __future__ import annotations

import copy

import pytest

from inspection.core.errors import ModelCardError
from inspection.core.model_card import ModelCard
from inspection.core.postprocess import Thresholds
from inspection.core.preprocess import PreprocessSpec

GOOD = ModelCard(["good", "scratch", "dent"], PreprocessSpec(32, 32, 3), Thresholds(("good",), ng=0.6, ok=0.4),
                 backbone="tiny_cnn").to_dict()


def _with(path: str, value) -> dict:
    d = copy.deepcopy(GOOD)
    *parents, key = path.split(".")
    target = d
    for p in parents:
        target = target[p]
    target[key] = value
    return d


BAD = {
    "preprocess.pad_value": (999, "pad_value must be an integer 0-255"),
    "card_version": ("two", "card_version must be an integer"),
    "preprocess": ([], "preprocess must be an object"),
    "thresholds": ([0.5, 0.5], "thresholds must be an object"),
    "preprocess.height": (0, "preprocess.height must be an integer"),
    "preprocess.width": (True, "preprocess.width must be an integer"),
    "preprocess.channels": (2, "preprocess.channels must be 1 or 3"),
    "preprocess.mean": ([0.5, 0.5], "preprocess.mean must be a list of 3 numbers"),
    "preprocess.std": ([0.2, 0.0, 0.2], "preprocess.std must be > 0"),
    "preprocess.resize": ("crop", "preprocess.resize must be"),
    "thresholds.ng": ("high", "thresholds.ng must be a number in [0, 1]"),
    "thresholds.ok": (1.5, "thresholds.ok must be a number in [0, 1]"),
    "thresholds.min_confidence": (None, "thresholds.min_confidence must be a number"),
    "thresholds.ok_classes": ("good", "thresholds.ok_classes must be a list"),
    "precision": ("fp8", "precision must be one of"),
    "backbone": (5, "backbone must be a string"),
    "lineage": ("abc", "lineage must be an object"),
    "class_names": (["good", 3], "class_names must be a non-empty list of strings"),
}


@pytest.mark.parametrize("key", BAD)
def test_malformed_card_values_are_named(key):
    value, message = BAD[key]
    with pytest.raises(ModelCardError, match="model.json: malformed model card") as e:
        ModelCard.from_dict(_with(key, value), "model.json")
    assert message in str(e.value)


def test_every_problem_is_listed_at_once_and_a_good_card_loads():
    d = _with("preprocess.pad_value", -1)
    d["thresholds"]["ok"], d["thresholds"]["ng"] = 0.9, 0.2
    with pytest.raises(ModelCardError) as e:
        ModelCard.from_dict(d, "m")
    assert "pad_value" in str(e.value) and "thresholds.ok (0.9) must be <= thresholds.ng (0.2)" in str(e.value)
    card = ModelCard.from_dict(copy.deepcopy(GOOD), "m")
    assert card.to_dict() == GOOD


def test_a_card_whose_every_class_is_ok_is_refused():
    """ok_classes = every class: p_ng is 0 for every image, so nothing can ever be NG (issue 15, case 8)."""
    with pytest.raises(ModelCardError, match="names every class"):
        ModelCard.from_dict(_with("thresholds.ok_classes", ["good", "scratch", "dent"]), "m")
