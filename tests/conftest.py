"""Shared fixtures: where the real recorded data lives, and a fresh store per test."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
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


@pytest.fixture(autouse=True)
def _collect_garbage_on_the_main_thread() -> Iterator[None]:
    """Collect each test's cyclic garbage here, on the main thread, when the test ends.

    Nautilus objects (strategies, actors, clocks) are bound to the thread that made them; left in a
    reference cycle, they would otherwise be collected by whichever thread next triggers a collection
    (a loopback server's handler thread in a later test), and Nautilus reports that as "unsendable ...
    dropped on another thread", which pytest turns into a failure of an unrelated test.
    """
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Put structlog's configuration back after each test.

    ``python -m engine.live``'s ``main()`` run in-process configures structlog to print onto the
    ``sys.stderr`` of that moment, which is pytest's capture of that test: it is closed when the test
    ends, and a later test on the same worker that logs would fail with "I/O operation on closed file".
    """
    import structlog

    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
