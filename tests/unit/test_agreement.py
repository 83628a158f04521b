"""Agreement statistics against hand-computed textbook values (Wikipedia / Krippendorff's worked examples)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from inspection.curation.agreement import (
    agreement_report,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    rating_counts,
)
from inspection.curation.votes import label_matrix

# Wikipedia, "Fleiss' kappa": 10 subjects, 14 raters, 5 categories → P̄ = 0.378, P̄e = 0.213, κ = 0.210.
FLEISS_TABLE = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
])


def test_cohen_kappa_wikipedia_example():
    # 50 proposals: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 → p_o = 0.7, p_e = 0.5, κ = 0.4.
    a = np.array([0] * 20 + [0] * 5 + [1] * 10 + [1] * 15)
    b = np.array([0] * 20 + [1] * 5 + [0] * 10 + [1] * 15)
    k, n = cohen_kappa(a, b, 2)
    assert n == 50 and k == pytest.approx(0.4)


def test_cohen_kappa_ignores_gaps_and_matches_sklearn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    b[:120] = a[:120]
    k, _ = cohen_kappa(a, b, 4)
    assert k == pytest.approx(cohen_kappa_score(a, b))
    a_gap = np.concatenate([a, [-1, 2, -1]])
    b_gap = np.concatenate([b, [1, -1, -1]])
    assert cohen_kappa(a_gap, b_gap, 4) == (pytest.approx(k), 200)
    assert np.isnan(cohen_kappa(np.array([-1]), np.array([0]), 2)[0])


def test_fleiss_kappa_wikipedia_example():
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_kappa_perfect_and_single_ratings():
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)
    # Items rated once carry no agreement information and are left out.
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [1, 0]])) == pytest.approx(1.0)


def test_krippendorff_alpha_nominal_with_missing_values():
    # Krippendorff (2011) "Computing Krippendorff's alpha-reliability": 4 coders, 12 units, gaps → α_nominal = 0.743.
    nan = None
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
    table = pd.DataFrame({f"c{i}": ["" if v is None else str(v) for v in c] for i, c in enumerate(coders)})
    labels = label_matrix(table, ["1", "2", "3", "4", "5"])
    assert krippendorff_alpha_nominal(labels, 5) == pytest.approx(0.743, abs=5e-4)


def test_alpha_and_fleiss_agree_on_full_tables():
    # Without gaps, alpha = kappa corrected for small samples: close to Fleiss on a large table.
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 500)
    labels = np.stack([np.where(rng.random(500) < 0.8, truth, rng.integers(0, 3, 500)) for _ in range(3)], 1)
    alpha = krippendorff_alpha_nominal(labels, 3)
    assert alpha == pytest.approx(fleiss_kappa(rating_counts(labels, 3)), abs=0.01)


def test_agreement_report_per_labeler_confusion():
    table = pd.DataFrame({
        "ann": ["a", "a", "b", "b", "a", ""],
        "bob": ["a", "a", "b", "b", "b", "a"],
        "cat": ["a", "b", "b", "b", "b", ""],
    })
    rep = agreement_report(table, ["a", "b"])
    assert rep.n_items == 5 and rep.labelers == ["ann", "bob", "cat"]
    assert rep.per_labeler["bob"]["accuracy_vs_consensus"] == 1.0
    assert rep.per_labeler["ann"]["confusion"] == [[2, 0], [1, 2]]  # rows: consensus, cols: ann's label
    assert {(p["a"], p["b"]) for p in rep.pairwise} == {("ann", "bob"), ("ann", "cat"), ("bob", "cat")}
    assert rep.to_dict()["fleiss_kappa"] == pytest.approx(rep.fleiss_kappa)


def test_label_matrix_rejects_unknown_labels():
    with pytest.raises(ValueError, match="'z'"):
        label_matrix(pd.DataFrame({"a": ["x", "z"]}), ["x", "y"])
