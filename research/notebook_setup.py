"""Where a notebook runs: the repo it sits in, the shared real data beside it, and a fresh work store."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from datasets.store import Store


@dataclass(frozen=True, slots=True)
class Workspace:
    """The repo, ``../shared/data`` beside it, and a new temporary folder holding an empty store."""

    repo: Path
    shared: Path
    work: Path
    store: Store


def find_repo(start: Path) -> Path:
    """Return the carrylab checkout holding ``start``.

    Raises
    ------
    FileNotFoundError
        If no folder at or above ``start`` holds ``pyproject.toml`` and ``research/``.
    """
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "research").is_dir():
            return folder
    raise FileNotFoundError(f"expected to run inside the carrylab repo, was in {start}")


def notebook_workspace(prefix: str, *, start: Path | None = None) -> Workspace:
    """Return the notebook's workspace: a store in a new temporary folder named after ``prefix``.

    Raises
    ------
    FileNotFoundError
        If the repo is not found from ``start`` (default: the working directory) or has no
        ``../shared/data`` beside it.
    """
    repo = find_repo(start or Path.cwd())
    shared = repo.parent / "shared" / "data"
    if not shared.is_dir():
        raise FileNotFoundError(f"real data folder {shared} not found: clone the repo next to shared/ (see README)")
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}_"))
    return Workspace(repo=repo, shared=shared, work=work, store=Store(work / "store"))
