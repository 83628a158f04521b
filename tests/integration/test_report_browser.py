"""The HTML report renders in a real browser (headless Debian chromium) with counts, histogram and thumbnails."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from bad_images import write_bad_images
from edge_helpers import make_dataset, train_on_manifest

from inspection.data.manifest import load_manifest
from inspection.edge import OnnxInspector, run_inspection
from inspection.edge.report_html import write_report
from inspection.edge.runner import Progress
from inspection.export import export_onnx
from inspection.models.checkpoint import load_checkpoint

pytestmark = pytest.mark.browser
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if exe is None:
        msg = "headless chromium not installed (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    exe = _chromium()
    csv = make_dataset(tmp_path / "ds", kind="pill", n_per_class=6, size=32)
    manifest = load_manifest(csv)
    exported = export_onnx(load_checkpoint(train_on_manifest(manifest, csv, tmp_path / "m.pt", steps=20)),
                           tmp_path / "onnx")
    src = tmp_path / "images"
    shutil.copytree(manifest.image_root, src)
    write_bad_images(src / "zz_bad")
    inspector = OnnxInspector(exported.onnx_path, device="cpu")
    summary = run_inspection(inspector, [str(src)], tmp_path / "r.csv", batch_size=8,
                             progress=Progress(enabled=False))
    report = tmp_path / "report.html"
    write_report(report, summary, model_info=inspector.describe())
    assert summary.n_flagged > 0 and summary.errors > 0

    profile = tmp_path / "profile"
    out = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    dom = out.stdout
    assert f'<b id="n-total">{summary.n_total}</b>' in dom
    for key in ("OK", "NG", "REVIEW"):
        assert f'id="count-{key.lower()}"' in dom and f"<b>{summary.verdicts.get(key, 0)}</b>" in dom
    assert f"<b>{summary.errors}</b><span>errors</span>" in dom
    assert dom.count('<rect class="bar"') == len(summary.classes)  # one histogram bar per predicted class
    thumbs = dom.count('<img src="data:image/jpeg;base64,')
    assert thumbs == min(summary.n_flagged, len(summary.flagged)) and thumbs > 0
    assert 'data-verdict="NG"' in dom or 'data-verdict="REVIEW"' in dom
    assert not any(f'{a}="http' in dom for a in ("src", "href"))  # self-contained: nothing fetched
