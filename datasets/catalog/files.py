"""Where the catalog keeps each stream, and a writer that replaces streams without a half-written state.

Nautilus 2.x finds data by directory (``data/<kind>/<identifier>/``) and by file name
(``<first ts_init>_<last ts_init>.parquet``, timestamps as ``2024-01-01T00-00-00-000000000Z``); it
keeps no other index. ``CatalogWriter`` stages every stream of an export under a hidden directory of
the catalog root, then swaps each staged directory in with two renames (old out, new in). A crash
before ``commit`` leaves the catalog untouched; a crash inside ``commit`` leaves each stream either
old or new, with the displaced copy in the staging directory.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from datasets.errors import DatasetError

STAGING_PREFIX = ".export-staging-"

# Bytes object_store percent-encodes in a path segment (besides non-ASCII): Nautilus' catalog looks for
# custom-data directories under the encoded name, so ours must match it.
_OBJECT_STORE_UNSAFE = set('\\{^}%`]">[~<#|*?') | {chr(c) for c in range(32)} | {"\x7f"}


class CatalogError(DatasetError):
    """The catalog on disk is not in the state an export expects."""


def timestamp_text(ts_ns: int) -> str:
    """Return a timestamp the way catalog file names spell it (``2024-01-01T00-00-00-000000000Z``)."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{moment:%Y-%m-%dT%H-%M-%S}-{nanos:09d}Z"


def file_name(first_ns: int, last_ns: int) -> str:
    """Return the file name of a catalog file holding ``ts_init`` from ``first_ns`` to ``last_ns`` inclusive."""
    return f"{timestamp_text(first_ns)}_{timestamp_text(last_ns)}.parquet"


def instrument_directory_name(identifier: str) -> str:
    """Return the directory name of an instrument id or bar type (``BTC/USD.KRAKEN`` -> ``BTCUSD.KRAKEN``)."""
    return identifier.replace("/", "").replace("^", "_")


def custom_directory_name(identifier: str) -> str:
    """Return the directory name of a custom-data identifier, percent-encoded as object_store encodes it."""
    if "/" in identifier:
        raise CatalogError(f"a custom-data identifier must not contain '/', was {identifier!r}")
    return "".join(
        "".join(f"%{byte:02X}" for byte in char.encode()) if ord(char) > 127 or char in _OBJECT_STORE_UNSAFE else char
        for char in identifier
    )


def write_parquet(table: pa.Table, directory: Path) -> Path:
    """Write ``table`` (sorted by ``ts_init``, at least one row) as one catalog file in ``directory``."""
    ts_init = table.column("ts_init")
    first, last = ts_init[0].value, ts_init[-1].value
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name(first, last)
    # Dictionary encoding buys little on prices and timestamps and costs ~40% of the write time.
    pq.write_table(table, path, compression="zstd", use_dictionary=False)
    return path


class CatalogWriter:
    """Stage streams of one export and swap them into the catalog together.

    Use as a context manager: ``commit()`` inside the block publishes; leaving the block without
    committing (an exception) deletes the staging directory and leaves the catalog as it was.

    Parameters
    ----------
    catalog_dir : Path
        The catalog root (created if missing).
    """

    def __init__(self, catalog_dir: Path) -> None:
        self.catalog_dir = catalog_dir
        self.staging = catalog_dir / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._staged: dict[Path, bool] = {}

    def __enter__(self) -> CatalogWriter:
        self.catalog_dir.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def staged_directory(self, relative: Path) -> Path:
        """Return the staging directory of a stream (``data/bars/<bar type>``), registering it for the swap.

        A stream registered but left without files is removed from the catalog at commit.

        Raises
        ------
        CatalogError
            If the stream was already staged by this export.
        """
        if relative in self._staged:
            raise CatalogError(f"{relative} was staged twice in one export: two store streams map to one bar type")
        self._staged[relative] = True
        return self.staging / "new" / relative

    def stage_table(self, relative: Path, table: pa.Table) -> Path:
        """Stage ``table`` as the whole content of a stream; an empty table stages the stream's removal."""
        directory = self.staged_directory(relative)
        if table.num_rows:
            write_parquet(table, directory)
        return directory

    def stage_instruments(self, relative_dirs: Iterable[Path], instruments: list[Any]) -> None:
        """Stage instruments through Nautilus' own writer (a catalog rooted in the staging directory)."""
        from nautilus_trader.persistence import ParquetDataCatalog

        for relative in relative_dirs:
            self.staged_directory(relative)
        root = self.staging / "new"
        root.mkdir(parents=True, exist_ok=True)
        ParquetDataCatalog(str(root)).write_instruments(instruments)

    def commit(self) -> list[Path]:
        """Swap every staged stream into the catalog; return the catalog directories now holding data."""
        published = []
        for relative in sorted(self._staged):
            new = self.staging / "new" / relative
            final = self.catalog_dir / relative
            if final.exists():
                displaced = self.staging / "old" / relative
                displaced.parent.mkdir(parents=True, exist_ok=True)
                os.replace(final, displaced)
            if new.exists() and any(new.iterdir()):
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(new, final)
                published.append(final)
        self._staged.clear()
        return published
