"""What every importer provides, and the helpers they share.

An importer turns one input file into canonical batches (polars frames with the kind's columns plus
``_row``, the source row each record came from). It never writes: the store validates and writes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import polars as pl

from datasets.errors import SourceFormatError
from datasets.schemas import Kind


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """Choices the user makes on the command line that an importer may need.

    Attributes
    ----------
    venue : str | None
        Venue to assume when the file does not say (``--venue``).
    tz : ZoneInfo | None
        Time zone of local-time timestamps (``--tz``); formats that need it refuse to guess.
    allow_extreme : bool
        Store funding rates beyond the venue's cap (``--allow-extreme``), with a lineage note.
    skip_unrecognised : bool
        Skip empty and unrecognised inputs instead of refusing them (``--skip-unrecognised``).
    as_of : datetime | None
        When the specs in an undated metadata file (leverage brackets) were in force (``--as-of``);
        it becomes their ``effective_from``.
    """

    venue: str | None = None
    tz: ZoneInfo | None = None
    allow_extreme: bool = False
    skip_unrecognised: bool = False
    as_of: datetime | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """Canonical rows of one kind read from one input."""

    kind: Kind
    frame: pl.DataFrame


class Importer(Protocol):
    """A reader of one source format."""

    name: str
    version: str
    description: str

    def sniff(self, path: Path) -> bool:
        """Return True when ``path`` looks like this importer's format (cheap: name and first bytes)."""
        ...

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return the canonical batches in ``path``.

        Raises
        ------
        SourceFormatError
            If the file cannot be read as this format (the message names the file and the fix).
        """
        ...


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def head_bytes(path: Path, size: int = 4096) -> bytes:
    """Return the first ``size`` bytes of a file."""
    with open(path, "rb") as handle:
        return handle.read(size)


def require_columns(frame: pl.DataFrame, columns: list[str], *, path: Path, what: str) -> None:
    """Raise ``SourceFormatError`` naming the first missing column of ``what`` in ``path``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SourceFormatError(
            f"{path}: column '{missing[0]}' is missing; a {what} file has columns {', '.join(columns)}, "
            f"found {', '.join(frame.columns)}"
        )


def with_row_numbers(frame: pl.DataFrame, *, offset: int = 0) -> pl.DataFrame:
    """Add ``_row`` (record index in the source, plus ``offset`` for header lines)."""
    return frame.with_row_index("_row", offset=offset).with_columns(pl.col("_row").cast(pl.Int64))
