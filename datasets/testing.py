"""Helpers that tests, notebooks and the demo share: the hand-typed instrument table, imported into a store.

``configs/instruments_mid2025.csv`` holds BTC/ETH/SOL (and Binance LINK/AVAX perp) specs typed from
the venues' docs as of mid-2025. It is a FIXTURE, not a source of truth: a store that should backtest
those symbols without fetching (the synthetic demo, tests, research on the shared files) imports it
into its ``instruments`` kind, so the path is always store -> catalog; real runs fetch the venues' own
specs (``python -m datasets fetch --kind instruments --venue V``).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import polars as pl

from datasets.errors import NotInStoreError
from datasets.importers.base import ImportOptions
from datasets.importers.instrument_table import InstrumentTableImporter
from datasets.instruments import InstrumentRecord, InstrumentSpec, spec_from_record
from datasets.store import SourceInfo, Store, WriteSummary

FIXTURE_INSTRUMENTS = Path(__file__).resolve().parents[1] / "configs" / "instruments_mid2025.csv"


def write_fixture_instruments(store: Store, path: Path = FIXTURE_INSTRUMENTS) -> WriteSummary:
    """Import the hand-typed instrument table (default: the mid-2025 fixture) into ``store``'s ``instruments``.

    Writing it again changes nothing (specs are versioned: an unchanged spec adds no row).

    Raises
    ------
    SourceFormatError
        If the table is malformed.
    ConflictError
        If the store holds a different spec of a symbol at the same ``effective_from``.
    """
    importer = InstrumentTableImporter()
    (batch,) = importer.read(path, ImportOptions())
    info = SourceInfo(
        source=str(path),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        importer=importer.name,
        importer_version=importer.version,
        extra=(("fixture", "hand-typed, not a source of truth"),),
    )
    return store.write(batch.kind, batch.frame, info)


def fixture_spec(venue: str, symbol: str) -> InstrumentSpec:
    """Return the fixture table's spec of ``symbol`` on ``venue``, for unit tests that need no store.

    Raises
    ------
    NotInStoreError
        If the table has no row for it.
    """
    rows = _fixture_rows().filter((pl.col("venue") == venue) & (pl.col("symbol") == symbol))
    if rows.height == 0:
        raise NotInStoreError(f"expected {venue} {symbol} in {FIXTURE_INSTRUMENTS}, was absent; add a row")
    return spec_from_record(InstrumentRecord(**rows.drop("_row").row(0, named=True)))


@cache
def _fixture_rows() -> pl.DataFrame:
    (batch,) = InstrumentTableImporter().read(FIXTURE_INSTRUMENTS, ImportOptions())
    return batch.frame
