"""Where the catalog keeps each stream, and a writer that replaces streams without a half-written state.

Nautilus 2.x finds data by directory (``data/<kind>/<identifier>/``) and by file name
(``<first ts_init>_<last ts_init>.parquet``, timestamps as ``2024-01-01T00-00-00-000000000Z``); it
keeps no other index. ``CatalogWriter`` stages every stream of an export, and the files that describe
them (``venues.json``), under a hidden directory of the catalog root, then swaps each staged directory
in with two renames (old out, new in) and each staged file with one, files after every directory. An
exception before or inside ``commit`` leaves the catalog as it was (a failed commit moves every
swapped path back); a crash inside ``commit`` leaves each stream either old or new, with the
displaced copy in the staging directory, and a catalog whose staged files are new has all its
streams new.
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
    committing (an exception, in ``commit`` too) deletes the staging directory and leaves the catalog
    as it was.

    Parameters
    ----------
    catalog_dir : Path
        The catalog root (created if missing).
    """

    def __init__(self, catalog_dir: Path) -> None:
        self.catalog_dir = catalog_dir
        self.staging = catalog_dir / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._staged: dict[Path, bool] = {}  # relative path -> is a file (else a stream directory)
        self._keep_staging = False

    def __enter__(self) -> CatalogWriter:
        self.catalog_dir.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._keep_staging:
            shutil.rmtree(self.staging, ignore_errors=True)

    def staged_directory(self, relative: Path) -> Path:
        """Return the staging directory of a stream (``data/bars/<bar type>``), registering it for the swap.

        A stream registered but left without files is removed from the catalog at commit.

        Raises
        ------
        CatalogError
            If the stream was already staged by this export.
        """
        self._register(relative, is_file=False)
        return self.staging / "new" / relative

    def stage_file(self, relative: Path, content: bytes) -> Path:
        """Stage ``content`` as a file of the catalog (``venues.json``), swapped in after every stream.

        Raises
        ------
        CatalogError
            If the file was already staged by this export.
        """
        self._register(relative, is_file=True)
        path = self.staging / "new" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path

    def _register(self, relative: Path, *, is_file: bool) -> None:
        if relative in self._staged:
            why = "one export writes each file once" if is_file else "two store streams map to one bar type"
            raise CatalogError(f"{relative} was staged twice in one export: {why}")
        self._staged[relative] = is_file

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
        """Swap every staged stream, then every staged file, into the catalog; return the paths now holding data.

        Raises
        ------
        OSError
            If a swap fails; every path already swapped has been moved back, so the catalog is as it was.
        CatalogError
            If moving them back failed too; the previous copies are left in the staging directory.
        """
        displaced: list[Path] = []
        published: list[Path] = []
        try:
            for relative in sorted(self._staged, key=lambda r: (self._staged[r], r)):
                self._swap(relative, displaced, published)
        except BaseException:
            self._roll_back(displaced, published)
            raise
        self._staged.clear()
        return [self.catalog_dir / relative for relative in published]

    def _swap(self, relative: Path, displaced: list[Path], published: list[Path]) -> None:
        new = self.staging / "new" / relative
        final = self.catalog_dir / relative
        old = self.staging / "old" / relative
        if self._staged[relative]:
            # A file replaces its old version in one rename; the copy is for rolling back.
            existed = final.exists()
            if existed:
                old.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(final, old)
            os.replace(new, final)
            published.append(relative)
            if existed:
                displaced.append(relative)
            return
        if final.exists():
            old.parent.mkdir(parents=True, exist_ok=True)
            os.replace(final, old)
            displaced.append(relative)
        if new.is_dir() and any(new.iterdir()):
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(new, final)
            published.append(relative)

    def _roll_back(self, displaced: list[Path], published: list[Path]) -> None:
        try:
            for relative in reversed(published):
                os.replace(self.catalog_dir / relative, self.staging / "new" / relative)
            for relative in reversed(displaced):
                os.replace(self.staging / "old" / relative, self.catalog_dir / relative)
        except OSError as exc:
            self._keep_staging = True
            raise CatalogError(
                f"expected to restore the catalog after a failed commit, could not ({exc}); the previous "
                f"versions are in {self.staging / 'old'}: move them back to {self.catalog_dir} by hand"
            ) from exc
