"""Self-contained HTML report: summary, class histogram (inline SVG), thumbnails of NG and REVIEW images."""

from __future__ import annotations

import base64
import html
import os
from datetime import datetime, timezone

import cv2

from inspection.core.errors import ImageDecodeError
from inspection.core.files import atomic_write_text
from inspection.core.image import read_image
from inspection.edge.runner import RunSummary

THUMB_PX = 128
_COLORS = {"OK": "#2e7d32", "NG": "#c62828", "REVIEW": "#ef6c00", "ERROR": "#6d4c41"}


def thumbnail_data_uri(path: str, size: int = THUMB_PX) -> str | None:
    """A JPEG thumbnail (longest side `size`) as a data: URI, or None if the image cannot be read."""
    try:
        img = read_image(path, 3)
    except ImageDecodeError:
        return None
    h, w = img.shape[:2]
    scale = size / max(h, w)
    if scale < 1:
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else None


def histogram_svg(counts: dict[str, int], width: int = 560, bar_h: int = 22) -> str:
    """Horizontal bar chart of counts per class as inline SVG (no plotting library on the edge)."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if not items:
        return "<p>No classified images.</p>"
    label_w, top = 170, max(v for _, v in items)
    height = bar_h * len(items) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="class histogram" id="class-histogram">']
    for i, (name, n) in enumerate(items):
        y = 5 + i * bar_h
        w = int(round((width - label_w - 60) * n / top)) if top else 0
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h * 0.7:.0f}" text-anchor="end" font-size="13">'
                     f"{html.escape(name)}</text>")
        parts.append(f'<rect class="bar" data-class="{html.escape(name)}" data-count="{n}" x="{label_w}" '
                     f'y="{y + 3}" width="{w}" height="{bar_h - 6}" fill="#1565c0"/>')
        parts.append(f'<text x="{label_w + w + 5}" y="{y + bar_h * 0.7:.0f}" font-size="13">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_report(summary: RunSummary, title: str = "Inspection report", model_info: str = "") -> str:
    """The whole report as one HTML string (images embedded as base64, no external resources)."""
    v = summary.verdicts
    cards = "".join(
        f'<div class="stat" id="count-{k.lower()}" style="border-color:{_COLORS[k]}"><b>{v.get(k, 0)}</b>'
        f"<span>{k if k != 'ERROR' else 'errors'}</span></div>" for k in ("OK", "NG", "REVIEW", "ERROR"))
    thumbs = []
    for row in summary.flagged:
        uri = thumbnail_data_uri(str(row["path"]))
        conf = row.get("confidence")
        conf_txt = f"{float(conf):.3f}" if conf not in (None, "") else "?"
        img = (f'<img src="{uri}" alt="{html.escape(os.path.basename(str(row["path"])))}">' if uri
               else '<div class="missing">image unavailable</div>')
        thumbs.append(f'<figure class="thumb {row["verdict"].lower()}" data-verdict="{row["verdict"]}">{img}'
                      f'<figcaption><b style="color:{_COLORS[row["verdict"]]}">{row["verdict"]}</b> '
                      f"{html.escape(str(row['predicted']))} ({conf_txt})<br>"
                      f"<small>{html.escape(str(row['path']))}</small></figcaption></figure>")
    shown = (f"<p>Showing {len(summary.flagged)} of {summary.n_flagged} NG/REVIEW images.</p>"
             if summary.n_flagged > len(summary.flagged) else "")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#222}} .stats{{display:flex;gap:12px}}
.stat{{border-left:6px solid;padding:8px 14px;background:#f5f5f5;min-width:90px}}
.stat b{{display:block;font-size:26px}} .grid{{display:flex;flex-wrap:wrap;gap:10px}}
figure.thumb{{margin:0;width:150px;font-size:12px;word-break:break-all}}
figure img{{width:128px;height:128px;object-fit:contain;image-rendering:pixelated;background:#eee}}
.missing{{width:128px;height:64px;background:#eee;font-size:11px}} td,th{{padding:2px 10px;text-align:left}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p id="meta">{html.escape(model_info or f"model {summary.model_hash} on {summary.device}")} &middot; {when}</p>
<h2>Summary</h2>
<p id="total"><b id="n-total">{summary.n_total}</b> images inspected ({summary.n_new} in this run,
 {summary.n_resumed} resumed) &middot; {summary.images_per_s:.1f} img/s</p>
<div class="stats">{cards}</div>
<h2>Predicted classes</h2>
{histogram_svg(dict(summary.classes))}
<h2>NG and REVIEW images</h2>
{shown}<div class="grid" id="thumbnails">{"".join(thumbs) or "<p>None.</p>"}</div>
<p><small>Results: {html.escape(summary.output)}</small></p>
</body></html>
"""


def write_report(path: str | os.PathLike, summary: RunSummary, title: str = "Inspection report",
                 model_info: str = "") -> None:
    """Write the report atomically."""
    atomic_write_text(path, render_report(summary, title, model_info))



