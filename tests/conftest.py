"""Shared fixtures: where the real NEU / MVTec sets live (../shared/data beside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _require(path: Path, shown: str) -> Path:
    """The path, or skip; under CI=true fail instead, because CI must never go green by skipping."""
    if not path.is_dir():
        msg = f"{shown} not found: real-data tests need the shared NEU / MVTec sets beside the repo"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """<repo>/../shared/data (read-only)."""
    return _require(REPO.parent / "shared" / "data", "../shared/data")


@pytest.fixture(scope="session")
def neu_dir(shared_data: Path) -> Path:
    """NEU-DET: IMAGES/<class>_<n>.jpg + ANNOTATIONS/<class>_<n>.xml."""
    return _require(shared_data / "neu-det", "../shared/data/neu-det")


@pytest.fixture(scope="session")
def pill_dir(shared_data: Path) -> Path:
    """MVTec AD 'pill' category."""
    return _require(shared_data / "mvtec-pill", "../shared/data/mvtec-pill")
