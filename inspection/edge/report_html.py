"""Self-contained HTML report: summary, class histogram (inline SVG), thumbnails of NG and REVIEW images (with
defect-map overlays for defect-aware models)."""

from __future__ import annotations

import base64
import html
import os
from datetime import datetime, timezone

import cv2
import numpy as np

from inspection.core.class_labels import legend, short_labels
from inspection.core.defect_map import overlay
from inspection.core.errors import ImageDecodeError
from inspection.core.files import atomic_write_text
from inspection.core.image import read_image
from inspection.edge.runner import RunSummary
from inspection.edge.writers import DEFECT_COLUMNS

THUMB_PX = 128
_COLORS = {"OK": "#2e7d32", "NG": "#c62828", "REVIEW": "#ef6c00", "ERROR": "#6d4c41"}

HISTOGRAM_LABEL_CHARS = 22  # what fits the 170 px label column at 13 px


def _scaled(img: np.ndarray, size: int, interp: int) -> np.ndarray:
    h, w = img.shape[:2]
    scale = size / max(h, w)
    return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)


def _thumb_pixels(path: str, size: int) -> np.ndarray | None:
    """RGB pixels with the longest side at most `size`, or None if the image cannot be read."""
    try:
        img = read_image(path, 3)
    except ImageDecodeError:
        return None
    return _scaled(img, size, cv2.INTER_AREA) if max(img.shape[:2]) > size else img


def _jpeg_uri(img_rgb: np.ndarray, quality: int = 80) -> str | None:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img_rgb, cv2.COLOR_RGB2BGR), params)
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else None


def thumbnail_data_uri(path: str, size: int = THUMB_PX) -> str | None:
    """A JPEG thumbnail (longest side `size`) as a data: URI, or None if the image cannot be read."""
    img = _thumb_pixels(path, size)
    return None if img is None else _jpeg_uri(img)


def overlay_data_uris(path: str, defect_map: np.ndarray, threshold: float,
                      size: int = THUMB_PX) -> tuple[str | None, str | None]:
    """(plain thumbnail, defect-map overlay) as data: URIs from one read of the image; Nones if unreadable."""
    img = _thumb_pixels(path, size)
    if img is None:
        return None, None
    # A small image is enlarged (nearest, like the plain thumbnail's pixelated CSS) before the heatmap and its
    # outline are drawn: upscaled by the browser, a thin outline would turn into blurry blocks.
    big = _scaled(img, size, cv2.INTER_NEAREST) if max(img.shape[:2]) < size else img
    return _jpeg_uri(img), _jpeg_uri(overlay(big, np.asarray(defect_map, np.float32), threshold), quality=90)


def _num(v: str | float | None) -> float | None:
    """A row value as a float: rows resumed from CSV hold strings, empty for 'no value'."""
    return None if v is None or v == "" else float(v)


def _defect_caption(row: dict) -> str:
    peak, x, y, area = (_num(row.get(k)) for k in DEFECT_COLUMNS)
    if peak is None or x is None or y is None or area is None:
        return ""
    return (f'<br><span class="defect">defect peak {peak:.2f} at x {x:.2f}, y {y:.2f} &middot; '
            f"area {100 * area:.1f}%</span>")


def _figure(row: dict, threshold: float | None) -> str:
    """One NG/REVIEW thumbnail; a map model's image also gets its overlay and the peak/area figures."""
    path, verdict = str(row["path"]), row["verdict"]
    name = html.escape(os.path.basename(path))
    missing = '<div class="missing">image unavailable</div>'
    has_map = threshold is not None and row.get("defect_map") is not None
    if has_map:
        uri, over = overlay_data_uris(path, row["defect_map"], threshold)
        imgs = (f'<img src="{uri}" alt="{name}"><img class="overlay" src="{over}" alt="defect map of {name}">'
                if uri and over else missing)
    else:  # a classifier, or a row resumed from the file (its map was not kept): the plain thumbnail
        uri = thumbnail_data_uri(path)
        imgs = f'<img src="{uri}" alt="{name}">' if uri else missing
    conf = _num(row.get("confidence"))
    conf_txt = f"{conf:.3f}" if conf is not None else "?"
    kind = f"{verdict.lower()} map" if has_map else verdict.lower()
    return (f'<figure class="thumb {kind}" data-verdict="{verdict}">{imgs}'
            f'<figcaption><b style="color:{_COLORS[verdict]}">{verdict}</b> '
            f"{html.escape(str(row['predicted']))} ({conf_txt})"
            f"{_defect_caption(row) if threshold is not None else ''}<br>"
            f"<small>{html.escape(path)}</small></figcaption></figure>")


def histogram_svg(counts: dict[str, int], width: int = 560, bar_h: int = 22) -> str:
    """Horizontal bar chart of counts per class as inline SVG (no plotting library on the edge)."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if not items:
        return "<p>No classified images.</p>"
    label_w, top = 170, max(v for _, v in items)
    short = short_labels([k for k, _ in items], HISTOGRAM_LABEL_CHARS)  # long names: numbered, never cut
    height = bar_h * len(items) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="class histogram" id="class-histogram">']
    for i, (name, n) in enumerate(items):
        y = 5 + i * bar_h
        w = int(round((width - label_w - 60) * n / top)) if top else 0
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h * 0.7:.0f}" text-anchor="end" font-size="13">'
                     f"<title>{html.escape(name)}</title>{html.escape(short[name])}</text>")
        parts.append(f'<rect class="bar" data-class="{html.escape(name)}" data-count="{n}" x="{label_w}" '
                     f'y="{y + 3}" width="{w}" height="{bar_h - 6}" fill="#1565c0"/>')
        parts.append(f'<text x="{label_w + w + 5}" y="{y + bar_h * 0.7:.0f}" font-size="13">{n}</text>')
    parts.append("</svg>")
    notes = legend(short)
    if notes:
        parts.append('<p class="legend" id="class-legend">' + "<br>".join(html.escape(t) for t in notes) + "</p>")
    return "".join(parts)


def render_report(summary: RunSummary, title: str = "Inspection report", model_info: str = "") -> str:
    """The whole report as one HTML string (images embedded as base64, no external resources)."""
    v = summary.verdicts
    cards = "".join(
        f'<div class="stat" id="count-{k.lower()}" style="border-color:{_COLORS[k]}"><b>{v.get(k, 0)}</b>'
        f"<span>{k if k != 'ERROR' else 'errors'}</span></div>" for k in ("OK", "NG", "REVIEW", "ERROR"))
    thr = summary.defect_threshold
    thumbs = [_figure(row, thr) for row in summary.flagged]
    shown = (f"<p>Showing {len(summary.flagged)} of {summary.n_flagged} NG/REVIEW images.</p>"
             if summary.n_flagged > len(summary.flagged) else "")
    if thr is not None:
        shown += (f'<p id="map-legend">Beside each image: its defect map, blue (0) to red (1); the white '
                  f"outline encloses pixels with defect probability &ge; {thr:g}.</p>")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#222}} .stats{{display:flex;gap:12px}}
.stat{{border-left:6px solid;padding:8px 14px;background:#f5f5f5;min-width:90px}}
.stat b{{display:block;font-size:26px}} .grid{{display:flex;flex-wrap:wrap;gap:10px}}
figure.thumb{{margin:0;width:150px;font-size:12px;word-break:break-all}}
figure img{{width:128px;height:128px;object-fit:contain;image-rendering:pixelated;background:#eee}}
figure.thumb.map{{width:266px}} figure img.overlay{{margin-left:4px;image-rendering:auto}}
.defect{{word-break:normal}}
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



