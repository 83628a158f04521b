"""The manual: the MkDocs site builds with --strict (no dead links), the README stays short, its links resolve."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 230

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def relative_links(markdown: str) -> list[str]:
    """Targets of the inline links and images in `markdown` that point at files: no URLs, no bare #anchors."""
    text = _INLINE_CODE.sub("", _FENCE.sub("", markdown))
    targets = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # http(s), mailto, ... and links within the page
        targets.append(target.split("#", 1)[0].split("?", 1)[0])
    return targets


def test_relative_links_finds_files_only():
    md = ("[a](docs/x.md#y) [b](https://e.org/z.md) [c](#anchor) ![d](img/p.png \"title\")\n"
          "`[e](in/code.md)`\n```\n[f](in/fence.md)\n```\n")
    assert relative_links(md) == ["docs/x.md", "img/p.png"]


def test_mkdocs_build_strict(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    assert mkdocs.exists(), f"{mkdocs} not found: mkdocs is a dev dependency (pip install -e '.[train,dev]')"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [str(mkdocs), "build", "--strict", "-f", "mkdocs.yml", "-d", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()
    assert "Latest results" in (tmp_path / "site" / "benchmarks" / "index.html").read_text(encoding="utf-8")


def test_readme_is_short():
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines (at most {README_MAX_LINES}): move detail to docs/"


def test_readme_links_resolve():
    dead = []
    for doc in (ROOT / "README.md", ROOT / "benchmarks" / "README.md"):
        for target in relative_links(doc.read_text(encoding="utf-8")):
            if not (doc.parent / target).exists():
                dead.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not dead, "dead relative links:\n" + "\n".join(dead)
