"""Consensus: majority vote, ties stay ambiguous (never resolved silently), rejections, cleanlab's method."""

from __future__ import annotations

import numpy as np
import pandas as pd

from inspection.curation.consensus import REJECT, cleanlab_consensus, consensus, majority_vote

CLASSES = ["crack", "scratch", "spot"]


def test_majority_and_ties():
    table = pd.DataFrame({
        "a": ["crack", "crack", "crack", "", "spot", REJECT],
        "b": ["crack", "scratch", "scratch", "", "", REJECT],
        "c": ["scratch", "", "spot", "", "", "crack"],
    })
    res = majority_vote(table, CLASSES)
    assert res["status"].tolist() == ["agreed", "ambiguous", "ambiguous", "unlabelled", "agreed", "rejected"]
    assert res["consensus"].tolist() == ["crack", "", "", "", "spot", REJECT]
    assert res.loc[1, "candidates"] == "crack|scratch"
    assert res.loc[2, "candidates"] == "crack|scratch|spot"
    assert res.loc[0, "agreement"] == 2 / 3 and res.loc[4, "n_votes"] == 1


def test_ties_stay_ambiguous_with_cleanlab():
    rng = np.random.default_rng(0)
    n = 60
    truth = rng.integers(0, 3, n)
    names = np.array(CLASSES)
    table = pd.DataFrame({
        "a": names[truth],
        "b": names[np.where(rng.random(n) < 0.85, truth, (truth + 1) % 3)],
        "c": np.where(rng.random(n) < 0.5, names[truth], ""),
    })
    table.loc[0, ["a", "b", "c"]] = ["crack", "scratch", ""]  # a 1-1 tie
    probs = np.full((n, 3), 0.1)
    probs[np.arange(n), truth] = 0.8
    res = cleanlab_consensus(table, probs, CLASSES)
    assert res.loc[0, "status"] == "ambiguous" and res.loc[0, "consensus"] == ""
    assert res.loc[0, "suggestion"] in CLASSES  # the model's pick is shown, not applied
    agreed = res["status"] == "agreed"
    assert (res.loc[agreed, "consensus"] == names[truth][agreed]).mean() > 0.9
    assert res["quality"].notna().all()


def test_consensus_dispatch_falls_back_to_majority_without_probs():
    table = pd.DataFrame({"a": ["crack"], "b": ["crack"]})
    assert consensus(table, CLASSES, "cleanlab", None)["consensus"].tolist() == ["crack"]
