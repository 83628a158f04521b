"""Error analysis on slices: where does the model fail more than elsewhere, by how much, and how sure is that?

A slice is one predicate (`meta_camera=cam2`, `class=scratch`, `q_blur=yes`, `cluster=c3`) or, SliceLine-style, the
conjunction of two predicates on different columns, kept only where it adds: its error rate exceeds both of its
parents'. A single predicate is tested against the rest of the data, a conjunction against the rest of its worse
parent (one-sided Fisher exact: is the error rate higher?), and the p-values of *every* candidate tested, conjunctions included, are corrected together
(Benjamini-Hochberg by default, Holm on request). Slices rank by excess errors = (slice error rate − overall error
rate) × slice size: how many errors would go away if the slice were as good as the average.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import hypergeom

from inspection.evaluation.slices_stats import adjust_pvalues, gap_ci, macro_f1_boot, proportion_ci
from inspection.evaluation.slices_table import SliceTable


@dataclass
class SliceConfig:
    """How slices are searched and judged."""

    min_size: int = 20  # rows; smaller slices are not tested (too little evidence either way)
    alpha: float = 0.05  # flag when the corrected p-value is below this
    correction: str = "bh"  # bh (false discovery rate) | holm (family-wise error)
    conjunctions: bool = True  # also test pairs of predicates on different columns
    n_boot: int = 1000
    seed: int = 0


SLICE_COLUMNS = ["rank", "slice", "kind", "n", "share", "errors", "accuracy", "accuracy_lo", "accuracy_hi",
                 "rest_accuracy", "gap", "gap_lo", "gap_hi", "macro_f1", "macro_f1_lo", "macro_f1_hi",
                 "escape", "escape_lo", "escape_hi", "overkill", "overkill_lo", "overkill_hi",
                 "excess_errors", "p_value", "p_adjusted", "flagged"]


def predicates(table: SliceTable, min_size: int) -> list[tuple[str, str, np.ndarray]]:
    """(column, name, mask) for every value of every slicing column with at least `min_size` rows."""
    out = []
    n = len(table.rows)
    for col in table.features:
        values = table.rows[col].astype(str)
        for v in sorted(values.unique()):
            if v == "" or (col.startswith("q_") and v == "no"):
                continue
            mask = (values == v).to_numpy()
            if min_size <= mask.sum() < n:
                out.append((col, f"{col}={v}", mask))
    return out


def _candidates(table: SliceTable, cfg: SliceConfig, err: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """Single predicates, then every conjunction of two that is large enough and smaller than both parents."""
    single = predicates(table, cfg.min_size)
    out = [(name, "single", mask) for _, name, mask in single]
    if not cfg.conjunctions:
        return out
    for (ca, na, ma), (cb, nb, mb) in combinations(single, 2):
        if ca == cb:
            continue
        both = ma & mb
        size = int(both.sum())
        if size >= cfg.min_size and size < min(ma.sum(), mb.sum()):
            out.append((f"{na} & {nb}", "pair", both))
    return out


def _parents_error(name: str, rates: dict[str, float]) -> float:
    return max(rates[p] for p in name.split(" & "))


def find_slices(table: SliceTable, cfg: SliceConfig | None = None) -> pd.DataFrame:
    """One row per reported slice (SLICE_COLUMNS), ranked by excess errors; `flagged` = significantly worse."""
    cfg = cfg or SliceConfig()
    rows = table.rows
    err = ~rows["correct"].to_numpy(bool)
    n, e_total = len(rows), int(err.sum())
    cands = _candidates(table, cfg, err)
    sizes = np.array([int(m.sum()) for _, _, m in cands])
    k_in = np.array([int(err[m].sum()) for _, _, m in cands])
    rate = {name: k / s for (name, _, _), k, s in zip(cands, k_in, sizes)}
    at = {name: i for i, (name, _, _) in enumerate(cands)}
    # One-sided Fisher exact test = hypergeometric upper tail of the slice's error count: a single predicate
    # against the rest of the data; a conjunction against the rest of its worse parent (does it add?).
    pool_n, pool_e = np.full(len(cands), n), np.full(len(cands), e_total)
    for i, (name, kind, _) in enumerate(cands):
        if kind == "pair":
            worst = at[max(name.split(" & "), key=lambda s: rate[s])]
            pool_n[i], pool_e[i] = sizes[worst], k_in[worst]
    p = hypergeom.sf(k_in - 1, pool_n, pool_e, sizes) if len(cands) else np.zeros(0)
    q = adjust_pvalues(p, cfg.correction)
    keep = [i for i, (name, kind, _) in enumerate(cands)
            if kind == "single" or rate[name] > _parents_error(name, rate)]
    y = pd.Categorical(rows["label"], categories=table.classes).codes
    pred = pd.Categorical(rows["predicted"], categories=table.classes).codes
    base = e_total / n if n else float("nan")
    out = []
    for j, i in enumerate(keep):
        name, kind, mask = cands[i]
        s, k = int(sizes[i]), int(k_in[i])
        seed = cfg.seed + j
        a_lo, a_hi = proportion_ci(s - k, s, cfg.n_boot, seed)
        g_lo, g_hi = gap_ci(k, s, e_total - k, n - s, cfg.n_boot, seed)
        f1, f_lo, f_hi = macro_f1_boot(y[mask], pred[mask], len(table.classes), cfg.n_boot, seed)
        r = {"slice": name, "kind": kind, "n": s, "share": s / n, "errors": k, "accuracy": 1 - k / s,
             "accuracy_lo": a_lo, "accuracy_hi": a_hi, "rest_accuracy": 1 - (e_total - k) / (n - s),
             "gap": k / s - (e_total - k) / (n - s), "gap_lo": g_lo, "gap_hi": g_hi,
             "macro_f1": f1, "macro_f1_lo": f_lo, "macro_f1_hi": f_hi,
             "excess_errors": (k / s - base) * s, "p_value": float(p[i]), "p_adjusted": float(q[i]),
             "flagged": bool(q[i] < cfg.alpha)}
        for what in ("escape", "overkill"):
            r.update(_okng_rate(rows, mask, what, cfg.n_boot, seed))
        out.append(r)
    df = pd.DataFrame(out, columns=[c for c in SLICE_COLUMNS if c != "rank"])
    df = df.sort_values(["excess_errors", "p_value"], ascending=[False, True], kind="stable").reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df


def _okng_rate(rows: pd.DataFrame, mask: np.ndarray, what: str, n_boot: int, seed: int) -> dict:
    """Escape rate (of the slice's defective images) or overkill rate (of its good ones), with a 95% CI."""
    if what not in rows:
        return {what: float("nan"), f"{what}_lo": float("nan"), f"{what}_hi": float("nan")}
    defective = rows["defective"].to_numpy(bool)
    among = mask & (defective if what == "escape" else ~defective)
    s, k = int(among.sum()), int(rows[what].to_numpy(bool)[among].sum())
    lo, hi = proportion_ci(k, s, n_boot, seed)
    return {what: k / s if s else float("nan"), f"{what}_lo": lo, f"{what}_hi": hi}


def rows_in_slice(rows: pd.DataFrame, name: str) -> np.ndarray:
    """Boolean mask of the rows in a slice given by its name (`col=value` or `a=x & b=y`); `class` = label."""
    mask = np.ones(len(rows), bool)
    for part in name.split("&"):
        col, sep, value = part.strip().partition("=")
        col = "label" if col == "class" and "class" not in rows else col
        if not sep or col not in rows:
            raise ValueError(f"slice {name!r}: {part.strip()!r} is not column=value over columns {list(rows.columns)}")
        mask &= (rows[col].astype(str) == value).to_numpy()
    return mask


def slice_mask(table: SliceTable, name: str) -> np.ndarray:
    """The rows of a SliceTable in the slice `name`."""
    return rows_in_slice(table.rows, name)


def overall(table: SliceTable) -> dict:
    """The whole run's n, accuracy and error count (the baseline every slice is compared with)."""
    err = ~table.rows["correct"].to_numpy(bool)
    return {"n": int(len(err)), "errors": int(err.sum()), "accuracy": float(1 - err.mean()) if len(err) else
            float("nan"), "dropped": table.dropped, "task": table.task}
