"""The one listing of image folders shared by every reader (inspect, verify, data import): regular image files only,
in a stable order, and a named warning for every entry it meets but does not return.

`os.walk` drops what it cannot list (an unreadable folder, a path past the OS limit) without a word, and returns
FIFOs and sockets as files, on which a reader blocks forever. Here an unlistable folder or a special file with an
image name becomes a `Skipped` entry handed to `on_skip`, so a caller can warn and count it."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from inspection.core.files import is_image_name


@dataclass(frozen=True)
class Skipped:
    """An entry the listing met and did not return, and why (shown as `<path>: <reason>`)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


OnSkip = Callable[[Skipped], None]
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device"}


def special_file_kind(mode: int) -> str | None:
    """'a FIFO', 'a socket', ... for a non-regular, non-directory st_mode; None for a regular file or a folder."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _warn_nothing(_: Skipped) -> None:
    pass


def _entries(folder: str, on_skip: OnSkip) -> list[os.DirEntry] | None:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as e:
        on_skip(Skipped(folder, f"folder not listed ({e.strerror or e}); its images are not included"))
        return None


def iter_image_files(folder: str | os.PathLike, on_skip: OnSkip | None = None) -> Iterator[str]:
    """Image files under `folder`, recursively, sorted by name per folder, one folder listing at a time.

    Hidden entries are left out silently (they are not candidates). Symlinked folders are not followed (no loops);
    symlinked files are returned. A file whose type cannot be read (a dangling or looping link) is returned too, so
    the reader gives it an error row; an unlistable folder or a special file is passed to `on_skip` instead."""
    on_skip = on_skip or _warn_nothing
    stack = [os.fspath(folder)]
    while stack:
        current = stack.pop()
        entries = _entries(current, on_skip)
        if entries is None:
            continue
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir(follow_symlinks=False):
                    subdirs.append(e.path)
                    continue
            except OSError:
                pass
            if not is_image_name(e.name):
                continue
            try:
                mode = e.stat(follow_symlinks=True).st_mode
            except OSError:
                yield e.path  # a broken link: the reader names the problem in its row
                continue
            kind = special_file_kind(mode)
            if kind is None and stat.S_ISDIR(mode):
                kind = "a link to a folder"
            if kind is not None:
                on_skip(Skipped(e.path, f"{kind}, not an image file; skipped"))
                continue
            yield e.path
        # Depth first in name order, like the sorted os.walk it replaces: a folder's files, then its subfolders.
        stack.extend(reversed(subdirs))
