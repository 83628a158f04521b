"""drift.json and a self-contained drift.html (plots embedded) for `inspection drift`."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from inspection.core.files import atomic_write_text


def _figure(report: dict, ref: pd.DataFrame, cur: pd.DataFrame) -> str:
    """PNG (base64): class mix, confidence histograms, CBPE estimate per chunk."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(14, 3.6))
    mix = report["chunks"][0]["tests"]["predicted"] if len(report["chunks"]) == 1 else None
    cats = sorted(set(ref["predicted"].astype(str)) | set(cur["predicted"].astype(str)))
    r = ref["predicted"].astype(str).value_counts(normalize=True).reindex(cats, fill_value=0)
    c = cur["predicted"].astype(str).value_counts(normalize=True).reindex(cats, fill_value=0)
    x = np.arange(len(cats))
    ax[0].bar(x - 0.2, r, 0.4, label="reference")
    ax[0].bar(x + 0.2, c, 0.4, label="current")
    ax[0].set_xticks(x, [s[:10] for s in cats], rotation=45, ha="right", fontsize=7)
    ax[0].set_title("predicted-class mix" + (f" (PSI {mix['psi']:.3f})" if mix else ""), fontsize=9)
    ax[0].legend(fontsize=7)
    bins = np.linspace(0, 1, 26)
    ax[1].hist(ref["confidence"].dropna(), bins, density=True, alpha=0.5, label="reference")
    ax[1].hist(cur["confidence"].dropna(), bins, density=True, alpha=0.5, label="current")
    ax[1].set_title("confidence", fontsize=9)
    ax[1].legend(fontsize=7)
    ch = report["chunks"]
    idx = [k["index"] for k in ch]
    ax[2].plot(idx, [k["performance"]["estimated_accuracy"] for k in ch], "o-", label="estimated (CBPE)")
    if all(k["performance"]["true_accuracy"] is not None for k in ch):
        ax[2].plot(idx, [k["performance"]["true_accuracy"] for k in ch], "s--", label="true")
    ax[2].plot(idx, [k["performance"]["threshold"] for k in ch], "r:", marker="_", markersize=18,
               label="alarm threshold")  # the marker shows it for a single chunk too
    ax[2].axhline(ch[0]["performance"]["reference_accuracy"], color="gray", lw=0.8, label="reference")
    for k in ch:
        if k["drift"]:
            ax[2].axvspan(k["index"] - 0.4, k["index"] + 0.4, color="red", alpha=0.12)
    ax[2].set_xlabel("chunk (red = drift)", fontsize=8)
    ax[2].set_title("accuracy per chunk", fontsize=9)
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _cell(t: dict) -> str:
    value = f"PSI {t['psi']:.3f}" if "psi" in t else (f"W {t['wasserstein_std']:.3f}σ" if "wasserstein_std" in t
                                                       else f"MMD {t['statistic']:.4f}")
    text = f"p={t['p_value']:.2g} · {value}"
    return f"<td class='{'bad' if t['drift'] else 'ok'}'>{html.escape(text)}</td>"


def write_drift_report(report: dict, ref: pd.DataFrame, cur: pd.DataFrame, out_dir: str | Path) -> tuple[Path, Path]:
    """drift.json (everything) + drift.html (verdict, plots, one row per chunk)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "drift.json", json.dumps(report, indent=2) + "\n")
    tests = list(report["chunks"][0]["tests"])
    head = "".join(f"<th>{html.escape(t)}</th>" for t in tests)
    rows = []
    for c in report["chunks"]:
        p = c["performance"]
        true = "" if p["true_accuracy"] is None else f"{p['true_accuracy']:.1%}"
        rows.append(f"<tr><td>{c['index']}</td><td>{c['start']}–{c['end'] - 1}</td><td>{c['n']}</td>"
                    + "".join(_cell(c["tests"][t]) for t in tests)
                    + f"<td class='{'bad' if p['drift'] else 'ok'}'>{p['estimated_accuracy']:.1%}</td><td>{true}</td>"
                    + f"<td>{'DRIFT: ' + html.escape(', '.join(c['reasons'])) if c['drift'] else 'ok'}</td></tr>")
    ref_acc = report["reference"]["accuracy"]
    verdict = (f"<p class='bad'>DRIFT in {report['n_drifted_chunks']} of {len(report['chunks'])} chunk(s)</p>"
               if report["drift"] else "<p class='ok'>No drift detected</p>")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Drift report</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px}}
table{{border-collapse:collapse}} .bad{{background:#fdd;font-weight:bold}} .ok{{color:#262}}</style></head><body>
<h1>Drift report</h1>{verdict}
<p>Reference: {report['reference']['n']} rows{'' if ref_acc is None else f', accuracy {ref_acc:.1%}'}
(confidences {'calibrated on its labels' if report['reference']['calibrated'] else 'used as they are: no labels'}).
Current: {report['current']['n']} rows in {len(report['chunks'])} chunk(s). Tests per chunk share
alpha = {report['config']['alpha']} (Bonferroni); from 1,000 rows on, PSI ≥ 0.1 and a Wasserstein distance ≥ 0.1σ
decide instead of p-values.</p>
<img src="data:image/png;base64,{_figure(report, ref, cur)}" style="max-width:100%">
<table><tr><th>chunk</th><th>rows</th><th>n</th>{head}<th>est. accuracy</th><th>true accuracy</th><th>verdict</th></tr>
{''.join(rows)}</table></body></html>
"""
    atomic_write_text(out / "drift.html", page)
    return out / "drift.json", out / "drift.html"
