"""Shared fixtures: where the real recorded data lives, and a fresh store per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Return ``../shared/data``; fail (never skip) on CI when it is missing."""
    if not SHARED_DATA.is_dir():
        message = f"real data folder {SHARED_DATA} not found: clone the repo next to shared/ (see README)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    """Return an empty directory for a store."""
    return tmp_path / "store"
