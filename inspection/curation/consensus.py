"""Consensus labels from several labelers: majority vote (ties stay "ambiguous") or cleanlab's multi-annotator method.

A tie is never resolved silently: its row keeps status "ambiguous" with the tied classes listed, and a method that
would break it (cleanlab uses the model) only writes its pick to `suggestion`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from inspection.core.errors import ConfigError
from inspection.curation.votes import MISSING, label_matrix, majority_codes

AGREED, AMBIGUOUS, REJECTED, UNLABELLED = "agreed", "ambiguous", "rejected", "unlabelled"
# A labeler may answer "unusable image" instead of a class (blurred, cut-off...): it is a vote like any other.
REJECT = "_reject"
CONSENSUS_COLUMNS = ["consensus", "status", "n_votes", "agreement", "candidates", "votes", "suggestion"]


def majority_vote(table: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """One row per item: consensus ("" unless agreed/rejected), status, n_votes, agreement, tied candidates, votes."""
    vocab = [*classes, REJECT]
    labels = label_matrix(table, vocab)
    n_votes = (labels != MISSING).sum(1)
    codes = majority_codes(labels, len(vocab))
    out = []
    for i in range(len(table)):
        row = labels[i][labels[i] != MISSING]
        votes = pd.Series([vocab[k] for k in row]).value_counts() if len(row) else pd.Series(dtype=int)
        top = votes[votes == votes.max()].index.tolist() if len(votes) else []
        if n_votes[i] == 0:
            status, label = UNLABELLED, ""
        elif codes[i] == MISSING:
            status, label = AMBIGUOUS, ""
        elif vocab[codes[i]] == REJECT:
            status, label = REJECTED, REJECT
        else:
            status, label = AGREED, vocab[codes[i]]
        out.append({
            "consensus": label, "status": status, "n_votes": int(n_votes[i]),
            "agreement": float(votes.max() / n_votes[i]) if n_votes[i] else 0.0,
            "candidates": "|".join(sorted(top)), "votes": ",".join(f"{k}:{v}" for k, v in votes.items()),
            "suggestion": "",
        })
    return pd.DataFrame(out, index=table.index, columns=CONSENSUS_COLUMNS)


def cleanlab_consensus(table: pd.DataFrame, probs: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """CROWDLAB consensus (labeler quality + out-of-fold model probabilities); majority ties stay ambiguous."""
    from cleanlab.multiannotator import get_label_quality_multiannotator

    probs = np.asarray(probs, float)
    if probs.shape != (len(table), len(classes)):
        raise ConfigError(f"probs shape {probs.shape} != ({len(table)}, {len(classes)})")
    result = majority_vote(table, classes)
    result["quality"] = np.nan
    # Rejections are not classes to cleanlab: they are decided by the vote above, the rest by CROWDLAB.
    clean = table.where(table.astype(str) != REJECT, "")
    labels = label_matrix(clean, classes).astype(float)
    labels[labels == MISSING] = np.nan
    use = (result["status"] != REJECTED).to_numpy() & ~np.isnan(labels).all(1)
    frame = pd.DataFrame(labels[use], columns=[str(c) for c in table.columns])
    frame = frame.loc[:, frame.notna().any()]  # cleanlab refuses labelers with no labels at all
    if use.sum() == 0 or frame.shape[1] < 2:
        return result  # cleanlab needs two labelers; the majority vote stands
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about small overlap on every real-world table
        res = get_label_quality_multiannotator(frame, probs[use], verbose=False,
                                               return_detailed_quality=False, return_annotator_stats=False)
    lab = res["label_quality"]
    idx = table.index[use]
    picked = [classes[int(k)] for k in lab["consensus_label"]]
    result.loc[idx, "quality"] = lab["consensus_quality_score"].to_numpy()
    for i, pick in zip(idx, picked):
        if result.at[i, "status"] == AGREED:
            result.at[i, "consensus"] = pick  # annotator quality may outweigh a bare 2-to-1 count
        else:
            result.at[i, "suggestion"] = pick  # a tie is reported, never resolved here
    return result


def consensus(table: pd.DataFrame, classes: Sequence[str], method: str = "auto",
              probs: np.ndarray | None = None) -> pd.DataFrame:
    """Dispatch: "majority", "cleanlab" (needs probs; majority without them), "auto" = cleanlab when probs exist."""
    if method not in ("auto", "majority", "cleanlab"):
        raise ConfigError(f"unknown consensus method {method!r} (auto, majority, cleanlab)")
    if method == "majority" or probs is None:
        return majority_vote(table, classes)
    return cleanlab_consensus(table, probs, classes)
