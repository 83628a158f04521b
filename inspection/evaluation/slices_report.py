"""slices.md, slices.csv, slices.png and per-slice example sheets for `inspection slices`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from inspection.core.files import atomic_write_text
from inspection.data.manifest import Manifest
from inspection.evaluation.slices import overall, slice_mask
from inspection.evaluation.slices_table import SliceTable

# (paths, captions, out_png) → png; the CLI passes curation's contact-sheet writer (evaluation cannot import it)
SheetWriter = Callable[[Sequence[Path], Sequence[Sequence[str]], Path], Path]


def plot_slices(slices: pd.DataFrame, base_error: float, out: Path, top: int = 15) -> Path:
    """Horizontal bars: error rate of the top slices with 95% intervals, the overall error rate as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = slices.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.4 * max(len(s), 3) + 1.2))
    err = 1 - s["accuracy"].to_numpy()
    lo, hi = 1 - s["accuracy_hi"].to_numpy(), 1 - s["accuracy_lo"].to_numpy()
    colors = ["tab:red" if f else "tab:gray" for f in s["flagged"]]
    ax.barh(np.arange(len(s)), err, xerr=[err - lo, hi - err], color=colors, capsize=3)
    ax.axvline(base_error, color="black", linestyle="--", label=f"overall {base_error:.1%}")
    ax.set_yticks(np.arange(len(s)), [f"{n[:48]} (n={k})" for n, k in zip(s["slice"], s["n"])], fontsize=8)
    ax.set_xlabel("error rate (95% bootstrap CI); red = significantly worse than the rest")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _examples(table: SliceTable, manifest: Manifest, name: str, n: int) -> pd.DataFrame:
    """Up to n of the slice's errors (then its correct rows if it has fewer errors)."""
    rows = table.rows[slice_mask(table, name)]
    return pd.concat([rows[~rows["correct"]], rows[rows["correct"]]]).head(n)


def write_slices_report(slices: pd.DataFrame, table: SliceTable, manifest: Manifest, out_dir: str | Path,
                        source: str, sheet: SheetWriter | None = None, top: int = 10, n_examples: int = 8,
                        settings: dict | None = None) -> Path:
    """Write slices.csv (every slice), slices.md (the top ones with example sheets), slices.png, slices.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    slices.to_csv(out / "slices.csv", index=False, float_format="%.4f")
    base = overall(table)
    plot_slices(slices, 1 - base["accuracy"], out / "slices.png")
    flagged = slices[slices["flagged"]]
    lines = [f"# Slices — {manifest.name}", "", f"- predictions: `{source}`",
             f"- scored images: {base['n']} (unreadable, not scored: {base['dropped']}), accuracy "
             f"{base['accuracy']:.1%}, errors {base['errors']}",
             f"- slicing columns: {', '.join(table.features)}",
             f"- slices tested: {len(slices)} reported; **{len(flagged)} significantly worse than the rest** "
             f"({(settings or {}).get('correction', 'bh')}-corrected p < {(settings or {}).get('alpha', 0.05)})",
             "", "![slices](slices.png)", "",
             "Ranked by excess errors = (slice error rate − overall error rate) × slice size. Intervals are 95% "
             "bootstrap; `gap` = slice error rate − rest error rate.", "",
             "| # | slice | n | accuracy [95% CI] | rest | gap [95% CI] | macro-F1 | excess errors | p adj. |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in slices.head(top).itertuples():
        mark = "**" if r.flagged else ""
        lines.append(f"| {r.rank} | {mark}{r.slice}{mark} | {r.n} | {r.accuracy:.1%} [{r.accuracy_lo:.1%}, "
                     f"{r.accuracy_hi:.1%}] | {r.rest_accuracy:.1%} | {r.gap:+.1%} [{r.gap_lo:+.1%}, {r.gap_hi:+.1%}]"
                     f" | {r.macro_f1:.3f} | {r.excess_errors:.1f} | {r.p_adjusted:.3g} |")
    if table.task == "okng":
        lines += ["", "| slice | escape [95% CI] | overkill [95% CI] |", "|---|---|---|"]
        lines += [f"| {r.slice} | {_rate(r.escape, r.escape_lo, r.escape_hi)} | "
                  f"{_rate(r.overkill, r.overkill_lo, r.overkill_hi)} |" for r in slices.head(top).itertuples()]
    if sheet is not None:
        lines += ["", "## Examples", ""]
        for r in slices.head(top).itertuples():
            if not r.flagged and len(flagged):
                continue
            ex = _examples(table, manifest, r.slice, n_examples)
            png = sheet([manifest.abspath(p) for p in ex["path"]],
                        [[f"given: {a}", f"pred: {b}"] for a, b in zip(ex["label"], ex["predicted"])],
                        out / "slices" / f"slice_{r.rank:02d}.png")
            lines += [f"### {r.rank}. {r.slice}", "", f"![{r.slice}]({png.relative_to(out).as_posix()})", ""]
    atomic_write_text(out / "slices.md", "\n".join(lines) + "\n")
    summary = {"source": source, "manifest": manifest.name, "overall": base, "features": table.features,
               "settings": settings or {}, "n_slices": len(slices), "n_flagged": len(flagged),
               "top": json.loads(slices.head(top).to_json(orient="records"))}
    atomic_write_text(out / "slices.json", json.dumps(summary, indent=2) + "\n")
    return out / "slices.md"


def _rate(v: float, lo: float, hi: float) -> str:
    return "—" if np.isnan(v) else f"{v:.1%} [{lo:.1%}, {hi:.1%}]"
