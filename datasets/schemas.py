"""Canonical schemas of the Parquet store, declared once.

Every dataset in the store is one of three kinds. Each kind has an Arrow schema (the exact
column types written to disk), a unique key, and the columns that partition it on disk.
Prices, quantities and rates are ``decimal128(38, 18)``: exact, so a funding rate published as
``"0.00010000"`` reads back as exactly that value, and the ledger never inherits binary-float error.
Research code that wants float64 vectors casts at read time (``datasets.store.scan(..., floats=True)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import polars as pl
import pyarrow as pa

Kind = Literal["ohlcv", "funding", "liquidations"]
KINDS: tuple[Kind, ...] = ("ohlcv", "funding", "liquidations")

DECIMAL_PRECISION = 38
DECIMAL_SCALE = 18
DECIMAL = pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE)
PL_DECIMAL = pl.Decimal(DECIMAL_PRECISION, DECIMAL_SCALE)
TIMESTAMP = pa.timestamp("ns", tz="UTC")

MARKETS = ("spot", "perp")
PRICE_TYPES = ("trade", "mark", "index")
LIQUIDATED_SIDES = ("long", "short")

VENUE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
SYMBOL_PATTERN = re.compile(r"^[^\s/\\a-z-]+(-[^\s/\\a-z-]+)*$")
INTERVAL_PATTERN = re.compile(r"^[1-9][0-9]*(m|h|d|w)$")

_POLARS_TYPES: dict[str, pl.DataType] = {
    str(pa.string()): pl.String(),
    str(DECIMAL): PL_DECIMAL,
    str(TIMESTAMP): pl.Datetime("ns", "UTC"),
}

_UNIT_SECS = {"m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


@dataclass(frozen=True, slots=True)
class KindSpec:
    """How one kind of dataset is typed, keyed and partitioned."""

    kind: Kind
    schema: pa.Schema
    key: tuple[str, ...]
    partition_by: tuple[str, ...]
    price_columns: tuple[str, ...]
    nonnegative_columns: tuple[str, ...]

    @property
    def order_by(self) -> list[str]:
        """Sort order inside a partition: ``ts``, then the key columns a partition does not fix."""
        return ["ts", *(k for k in self.key if k != "ts" and k not in self.partition_by)]

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    @property
    def polars_schema(self) -> pl.Schema:
        return pl.Schema({f.name: _POLARS_TYPES[str(f.type)] for f in self.schema})


OHLCV = KindSpec(
    kind="ohlcv",
    schema=pa.schema(
        [
            pa.field("venue", pa.string(), nullable=False),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("market", pa.string(), nullable=False),
            pa.field("price_type", pa.string(), nullable=False),
            pa.field("interval", pa.string(), nullable=False),
            pa.field("ts", TIMESTAMP, nullable=False),
            pa.field("open", DECIMAL, nullable=False),
            pa.field("high", DECIMAL, nullable=False),
            pa.field("low", DECIMAL, nullable=False),
            pa.field("close", DECIMAL, nullable=False),
            pa.field("volume", DECIMAL, nullable=True),
        ]
    ),
    key=("venue", "symbol", "price_type", "interval", "ts"),
    partition_by=("venue", "symbol", "price_type", "interval"),
    price_columns=("open", "high", "low", "close"),
    nonnegative_columns=("volume",),
)

FUNDING = KindSpec(
    kind="funding",
    schema=pa.schema(
        [
            pa.field("venue", pa.string(), nullable=False),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("ts", TIMESTAMP, nullable=False),
            pa.field("rate", DECIMAL, nullable=False),
            pa.field("interval", pa.string(), nullable=False),
            pa.field("mark_price", DECIMAL, nullable=True),
            pa.field("index_price", DECIMAL, nullable=True),
            pa.field("premium", DECIMAL, nullable=True),
        ]
    ),
    key=("venue", "symbol", "ts"),
    partition_by=("venue", "symbol"),
    price_columns=("mark_price", "index_price"),
    nonnegative_columns=(),
)

LIQUIDATIONS = KindSpec(
    kind="liquidations",
    schema=pa.schema(
        [
            pa.field("venue", pa.string(), nullable=False),
            pa.field("protocol", pa.string(), nullable=True),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("market", pa.string(), nullable=True),
            pa.field("ts", TIMESTAMP, nullable=False),
            pa.field("side", pa.string(), nullable=True),
            pa.field("price", DECIMAL, nullable=True),
            pa.field("quantity", DECIMAL, nullable=True),
            pa.field("notional_usd", DECIMAL, nullable=True),
            pa.field("account", pa.string(), nullable=True),
            pa.field("liquidator", pa.string(), nullable=True),
            pa.field("order_id", pa.string(), nullable=True),
            pa.field("tx_signature", pa.string(), nullable=True),
            pa.field("source", pa.string(), nullable=False),
            pa.field("event_id", pa.string(), nullable=False),
        ]
    ),
    key=("venue", "symbol", "event_id"),
    partition_by=("venue", "symbol"),
    price_columns=("price",),
    nonnegative_columns=("quantity", "notional_usd"),
)

SPECS: dict[Kind, KindSpec] = {"ohlcv": OHLCV, "funding": FUNDING, "liquidations": LIQUIDATIONS}


def spec_for(kind: str) -> KindSpec:
    """Return the spec of a kind.

    Raises
    ------
    ValueError
        If ``kind`` is not one of ``KINDS``.
    """
    try:
        return SPECS[kind]  # type: ignore[index]
    except KeyError:
        raise ValueError(f"unknown dataset kind {kind!r}: expected one of {', '.join(KINDS)}") from None


def interval_secs(interval: str) -> int:
    """Return the length of an interval label such as ``"1m"``, ``"8h"`` or ``"1d"`` in seconds.

    Raises
    ------
    ValueError
        If the label is not a positive count followed by m, h, d or w.
    """
    if not INTERVAL_PATTERN.match(interval):
        raise ValueError(f"interval must look like '1m', '8h' or '1d', was {interval!r}")
    return int(interval[:-1]) * _UNIT_SECS[interval[-1]]


def interval_label(secs: int) -> str:
    """Return the shortest label for an interval in seconds (``28800 -> "8h"``).

    Raises
    ------
    ValueError
        If ``secs`` is not a positive whole number of minutes.
    """
    if secs <= 0 or secs % 60:
        raise ValueError(f"an interval must be a positive whole number of minutes, was {secs} s")
    for unit in ("w", "d", "h", "m"):
        if secs % _UNIT_SECS[unit] == 0:
            return f"{secs // _UNIT_SECS[unit]}{unit}"
    raise AssertionError("unreachable: every whole minute divides by 60")
