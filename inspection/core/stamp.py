"""Stamps: what a cached or resumable folder was made from, so it is reused only for the very same inputs.

Every place that reuses earlier work (a dataset imported by `data.prepare`, a compare's output folder, a search
study) writes `.inspection-stamp.json` holding a key — the manifest's content hash, the source, the settings that
shape the result — and, before reusing the folder, compares it with the key of the run at hand. A folder is never
reused by its name alone.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from inspection.core.errors import ConfigError
from inspection.core.files import atomic_write_text

STAMP = ".inspection-stamp.json"


def stamp_key(parts: dict) -> str:
    """A short hash of plain JSON-able parts (order of dict keys does not matter)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_stamp(folder: str | Path) -> dict | None:
    """The stamp of `folder` ({"key", "made_from"}), or None when absent or unreadable."""
    try:
        data = json.loads((Path(folder) / STAMP).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "key" in data else None


def write_stamp(folder: str | Path, parts: dict) -> str:
    """Record what `folder` was made from; returns the key."""
    key = stamp_key(parts)
    Path(folder).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(folder) / STAMP, json.dumps({"key": key, "made_from": parts}, indent=2, default=str) + "\n")
    return key


def stamp_matches(folder: str | Path, parts: dict) -> bool:
    """True when `folder` carries a stamp for exactly these inputs."""
    s = read_stamp(folder)
    return s is not None and s["key"] == stamp_key(parts)


def differences(folder: str | Path, parts: dict) -> list[str]:
    """Which recorded inputs differ from `parts` (names only; for error messages)."""
    s = read_stamp(folder)
    if s is None:
        return ["no stamp"]
    made = s.get("made_from") or {}
    return sorted(k for k in set(made) | set(parts) if json.dumps(made.get(k), sort_keys=True, default=str)
                  != json.dumps(parts.get(k), sort_keys=True, default=str))


def claim_folder(folder: str | Path, parts: dict, explicit: bool, what: str = "output") -> Path:
    """The folder to write (or resume) work made from `parts`.

    `folder` itself when it is new, empty, or stamped with the same inputs (a resume). When it holds work made
    from other inputs (or unstamped work, which cannot be checked): a chosen folder (`explicit`) is refused with a
    message; a default one is left alone and a sibling keyed by the inputs' hash, `<folder>-<key>`, is used.
    """
    folder = Path(folder)
    key = stamp_key(parts)
    for candidate in (folder, folder.with_name(f"{folder.name}-{key[:8]}")):
        if not candidate.exists() or not any(candidate.iterdir()) or stamp_matches(candidate, parts):
            if candidate != folder:
                print(f"[{what}] {folder} holds work made from other inputs ({', '.join(differences(folder, parts))}"
                      f" differ): writing to {candidate} instead", flush=True)
            if read_stamp(candidate) is None:
                write_stamp(candidate, parts)
            return candidate
        if explicit:
            raise ConfigError(f"{folder}: holds {what} made from other inputs ({', '.join(differences(folder, parts))}"
                              " differ); choose another folder or remove it")
    raise ConfigError(f"{folder} and {candidate}: both hold {what} made from other inputs; remove one")


class WallClock:
    """Wall time of a resumable job summed over its attempts, kept in a small JSON file beside its outputs."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.start = time.monotonic()
        try:
            saved = json.loads(self.path.read_text())
            self.before, self.complete = float(saved["seconds"]), bool(saved.get("complete"))
        except (OSError, ValueError, KeyError, TypeError):
            self.before, self.complete = 0.0, False

    def save(self, complete: bool = False) -> float:
        """Record the time so far (an interrupted attempt counts too); returns it. A finished job's total stays."""
        if self.complete:
            return self.before
        total = self.before + time.monotonic() - self.start
        atomic_write_text(self.path, json.dumps({"seconds": total, "complete": complete}) + "\n")
        return total

    def total(self) -> float:
        """The job is done: its wall time over every attempt."""
        return self.save(complete=True)
