"""Error types that say what went wrong and where (file, row, key), and the one shell that turns them into
`error: ...` + exit 2 for every command (typer verbs, Hydra entry points, `python -m inspection.edge`)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

EXIT_USER_ERROR = 2  # a bad run setup: bad input, missing file, malformed metadata or setting
F = TypeVar("F", bound=Callable)


def listing(lines: list[str], limit: int = 20) -> str:
    """Problems one per indented line, the first `limit` of them: an error that names every bad item at once."""
    more = f"\n  ... and {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n  " + "\n  ".join(lines[:limit]) + more


class InspectionError(Exception):
    """Base class for errors a user can act on; the message names the file and the problem."""


class ImageDecodeError(InspectionError):
    """An image file could not be turned into pixels."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ManifestError(InspectionError):
    """A dataset manifest is malformed or inconsistent with the files on disk."""


class ModelCardError(InspectionError):
    """An exported model's metadata is missing or malformed."""


class CheckpointError(InspectionError):
    """A model.pt is missing, unreadable or not one of ours."""


class ConfigError(InspectionError, ValueError):
    """A setting is out of range or names something unknown (a ValueError too, for library callers)."""


def user_error_message(e: BaseException) -> str:
    """The text after `error: `: the exception's message, or for an OSError the file and the OS's reason."""
    if isinstance(e, OSError) and not isinstance(e, InspectionError) and e.strerror:
        where = e.filename if e.filename is not None else ""
        return f"{where}: {e.strerror}" if where else e.strerror
    return str(e)


def user_errors(fn: F) -> F:
    """Every command's shell: an InspectionError or OSError → `error: <what and where>` on stderr and exit 2.

    Anything else is a bug and keeps its traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (InspectionError, OSError) as e:
            print(f"error: {user_error_message(e)}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_USER_ERROR) from None

    return wrapper  # type: ignore[return-value]
