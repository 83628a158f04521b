"""Expand inspection sources (files, folders, globs, .txt lists of paths) into a lazy stream of image paths."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from inspection.core.errors import InspectionError
from inspection.core.listing import OnSkip, iter_image_files

LIST_EXTENSIONS = frozenset({".txt", ".lst"})
_GLOB_CHARS = set("*?[")


class SourceError(InspectionError):
    """A source given on the command line does not exist or matches nothing."""


def _is_glob(s: str) -> bool:
    return any(c in s for c in _GLOB_CHARS) and not os.path.exists(s)


def check_sources(sources: Sequence[str | os.PathLike]) -> None:
    """Fail before any work starts if a source is missing or a glob matches nothing (names every bad one)."""
    if not sources:
        raise SourceError("no sources given: pass image files, folders, globs or a .txt list of paths")
    bad = []
    for s in map(str, sources):
        if _is_glob(s):
            if next(glob.iglob(s, recursive=True), None) is None:
                bad.append(f"{s} (glob matches nothing)")
        elif not os.path.exists(s):
            bad.append(f"{s} (not found)")
        elif os.path.isfile(s) and not os.access(s, os.R_OK):
            bad.append(f"{s} (not readable)")
    if bad:
        raise SourceError("missing sources: " + "; ".join(bad))


def walk_images(folder: str | os.PathLike, on_skip: OnSkip | None = None) -> Iterator[str]:
    """Image files under a folder (core.listing: regular files only, every skipped entry passed to `on_skip`)."""
    return iter_image_files(folder, on_skip)


def read_path_list(list_file: str | os.PathLike) -> Iterator[str]:
    """Paths from a text file, one per line (blank lines and '#' comments skipped); relative to the list's folder."""
    base = Path(list_file).parent
    # surrogateescape: a line naming a non-UTF-8 file maps to that file, as os.listdir would name it
    with open(list_file, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            yield s if os.path.isabs(s) or "://" in s else str(base / s)  # URIs: for engines that fetch them


def iter_sources(sources: Sequence[str | os.PathLike], on_skip: OnSkip | None = None) -> Iterator[str]:
    """Lazy stream of image paths; explicit files are taken whatever their extension (bad ones become error rows).

    Folders are listed by core.listing: what it skips (special files, unlistable folders) goes to `on_skip`."""
    for s in map(str, sources):
        if _is_glob(s):
            for match in sorted(glob.iglob(s, recursive=True)):
                if os.path.isdir(match):
                    yield from walk_images(match, on_skip)
                else:
                    yield match
        elif os.path.isdir(s):
            yield from walk_images(s, on_skip)
        elif os.path.splitext(s)[1].lower() in LIST_EXTENSIONS:
            yield from read_path_list(s)
        else:
            yield s


def expand_sources(sources: Sequence[str | os.PathLike], on_skip: OnSkip | None = None) -> Iterator[str]:
    """check_sources (eagerly) then iter_sources (lazily)."""
    check_sources(sources)
    return iter_sources(sources, on_skip)
