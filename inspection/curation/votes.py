"""Votes as a label matrix: one row per item, one column per labeler, a class index or MISSING (-1) where that
labeler did not label the item. Agreement statistics and consensus both read it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from inspection.core.errors import ConfigError

MISSING = -1


def label_matrix(table: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """Strings (or "" / NaN for gaps) → int matrix of class indices, -1 where missing; unknown labels raise."""
    idx = {c: i for i, c in enumerate(classes)}
    out = np.full(table.shape, MISSING, np.int64)
    for j, col in enumerate(table.columns):
        for i, v in enumerate(table[col].tolist()):
            if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
                continue
            if str(v) not in idx:
                raise ConfigError(f"column {col!r}, row {i}: label {v!r} is not one of {list(classes)}")
            out[i, j] = idx[str(v)]
    return out


def majority_codes(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority class index per row of a label matrix; -1 where there are no votes or the top count is tied."""
    counts = np.zeros((labels.shape[0], n_classes), np.int64)
    rows, cols = np.nonzero(labels != MISSING)
    np.add.at(counts, (rows, labels[rows, cols]), 1)
    top = counts.max(1)
    unique = (counts == top[:, None]).sum(1) == 1
    return np.where((top > 0) & unique, counts.argmax(1), MISSING)
