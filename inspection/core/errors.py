"""Error types that say what went wrong and where (file, row, key)."""

from __future__ import annotations


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
