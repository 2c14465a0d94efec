"""Instrument specs and margin tiers as stored: the version in force at a time.

The ``instruments`` and ``margin_tiers`` kinds keep history (``datasets.versions``): a spec is in
force from its ``effective_from`` until the symbol's next version. A backtest over a past window
uses the specs in force then (``instrument_specs_at``).

A venue's first stored version is in force from when it was fetched (or the ``--as-of`` of an
imported file); a time before it has no stored spec. ``before_first="earliest"`` takes the first
version for such times instead, for callers that accept today's tick sizes for older windows (the
README says where that is an assumption).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import polars as pl

from datasets.errors import NotInStoreError
from datasets.schemas import INSTRUMENTS, MARGIN_TIERS
from datasets.store import Store

BeforeFirst = Literal["raise", "earliest"]


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentRecord:
    """One stored version of an instrument's spec (the ``instruments`` kind's columns)."""

    venue: str
    symbol: str
    market: str
    native_symbol: str
    instrument_id: str
    base: str
    quote: str
    settle: str | None
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: Decimal | None
    min_notional: Decimal | None
    contract_multiplier: Decimal
    max_leverage: Decimal | None
    initial_margin: Decimal | None
    maintenance_margin: Decimal | None
    maker_fee: Decimal | None
    taker_fee: Decimal | None
    funding_interval: str | None
    listing_time: datetime | None
    delisting_time: datetime | None
    source: str
    effective_from: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginTier:
    """One tier of a stored margin-tier version (the ``margin_tiers`` kind's columns)."""

    venue: str
    symbol: str
    tier: int
    bound_unit: str
    notional_floor: Decimal
    notional_cap: Decimal | None
    max_leverage: Decimal | None
    initial_margin: Decimal | None
    maintenance_margin: Decimal
    maintenance_amount: Decimal | None
    source: str
    effective_from: datetime


def instrument_specs_at(
    store: Store, venue: str, symbol: str, ts: datetime, *, before_first: BeforeFirst = "raise"
) -> InstrumentRecord:
    """Return the spec of ``symbol`` on ``venue`` in force at ``ts``: the latest version with ``effective_from <= ts``.

    Parameters
    ----------
    store : Store
        The store to read.
    venue, symbol : str
        Store venue and canonical symbol (``BTC-USDT-PERP``).
    ts : datetime
        A tz-aware time.
    before_first : {"raise", "earliest"}
        What a ``ts`` before the symbol's first stored version gets: an error (default) or that first version.

    Raises
    ------
    NotInStoreError
        If the store holds no spec of the symbol, or (with ``before_first="raise"``) none in force at ``ts``.
    """
    versions = _versions(store, INSTRUMENTS.kind, venue, symbol)
    frame = _in_force(versions, ts, before_first=before_first, what=f"instrument spec of {symbol} on {venue}")
    return InstrumentRecord(**frame.row(0, named=True))


def margin_tiers_at(
    store: Store, venue: str, symbol: str, ts: datetime, *, before_first: BeforeFirst = "raise"
) -> list[MarginTier]:
    """Return the margin tiers of ``symbol`` on ``venue`` in force at ``ts``, lowest tier first.

    Raises
    ------
    NotInStoreError
        As ``instrument_specs_at``.
    """
    versions = _versions(store, MARGIN_TIERS.kind, venue, symbol)
    frame = _in_force(versions, ts, before_first=before_first, what=f"margin tiers of {symbol} on {venue}")
    return [MarginTier(**row) for row in frame.sort("tier").iter_rows(named=True)]


def _versions(store: Store, kind: str, venue: str, symbol: str) -> pl.DataFrame:
    if not (store.root / kind).is_dir():
        return pl.DataFrame()
    return store.scan(kind, venue=venue).filter(pl.col("symbol") == symbol).collect()


def _in_force(versions: pl.DataFrame, ts: datetime, *, before_first: BeforeFirst, what: str) -> pl.DataFrame:
    if ts.tzinfo is None:
        raise ValueError(f"expected a tz-aware time for the {what}, was naive {ts}: pass tzinfo=UTC")
    if versions.height == 0:
        raise NotInStoreError(
            f"the store holds no {what}: run `python -m datasets fetch --kind instruments --venue ...` first"
        )
    moment = ts.astimezone(UTC)
    times = versions["effective_from"]
    earlier = times.filter(times <= moment)
    if earlier.len() == 0:
        first = versions["effective_from"].min()
        if before_first == "raise":
            raise NotInStoreError(
                f"no {what} in force at {moment.isoformat()}: the first stored version is from {first!s}; "
                "fetch or import older specs, or pass before_first='earliest' to use the first version"
            )
        chosen = first
    else:
        chosen = earlier.max()
    return versions.filter(pl.col("effective_from") == chosen)
