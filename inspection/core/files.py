"""File helpers shared by every layer: which names are images, content hashes and atomic writes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

# Every reader of image folders (import, inspect, audit) lists these, so they agree on what an image is.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def is_image_name(name: str) -> bool:
    """A visible file whose extension (any case) is an image format the decoder reads."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (dataset identity, duplicate grouping, model hashes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


# What open() would give a new file (mkstemp makes 0600): read once, at import, since setting the umask to read
# it is process-wide and another thread could create a file in between.
_NEW_FILE_MODE = _umask_mode()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write via a temp file + rename so a crash never leaves a half-written file that looks complete."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, _NEW_FILE_MODE)  # readable by whoever could read a plainly written file (services, CI)
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """atomic_write_bytes for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))
