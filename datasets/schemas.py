"""Canonical schemas of the Parquet store, declared once.

Every dataset in the store is one of these kinds. Each kind has an Arrow schema (the exact
column types written to disk), a unique key, and the columns that partition it on disk. Market data
(``ohlcv``, ``funding``, ``liquidations``) is keyed by its event time ``ts``; instrument metadata
(``instruments``, ``margin_tiers``) is *versioned*: keyed by ``effective_from``, the time from which a
spec is known to be in force, with a new row only when a spec changes (``KindSpec.versioned_by``).
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

Kind = Literal[
    "ohlcv", "funding", "liquidations", "instruments", "margin_tiers", "liquidation_extras", "account_states"
]
KINDS: tuple[Kind, ...] = (
    "ohlcv",
    "funding",
    "liquidations",
    "instruments",
    "margin_tiers",
    "liquidation_extras",
    "account_states",
)

DECIMAL_PRECISION = 38
DECIMAL_SCALE = 18
DECIMAL = pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE)
PL_DECIMAL = pl.Decimal(DECIMAL_PRECISION, DECIMAL_SCALE)
TIMESTAMP = pa.timestamp("ns", tz="UTC")
# Raw on-chain token amounts (u64, and Drift's u128 transfers): exact integers, their decimals in a column.
RAW_AMOUNT = pa.decimal128(DECIMAL_PRECISION, 0)

MARKETS = ("spot", "perp")
PRICE_TYPES = ("trade", "mark", "index")
LIQUIDATED_SIDES = ("long", "short")
BOUND_UNITS = ("notional", "contracts")

VENUE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
SYMBOL_PATTERN = re.compile(r"^[^\s/\\a-z-]+(-[^\s/\\a-z-]+)*$")
INTERVAL_PATTERN = re.compile(r"^[1-9][0-9]*(m|h|d|w)$")

_POLARS_TYPES: dict[str, pl.DataType] = {
    str(pa.string()): pl.String(),
    str(pa.int64()): pl.Int64(),
    str(DECIMAL): PL_DECIMAL,
    str(RAW_AMOUNT): pl.Decimal(DECIMAL_PRECISION, 0),
    str(TIMESTAMP): pl.Datetime("ns", "UTC"),
}

_UNIT_SECS = {"m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


@dataclass(frozen=True, slots=True)
class KindSpec:
    """How one kind of dataset is typed, keyed and partitioned.

    Attributes
    ----------
    time_column : str
        The timestamp that orders rows and picks the year partition: ``ts`` for market data,
        ``effective_from`` for versioned metadata.
    versioned_by : tuple of str
        Empty for market data. For versioned metadata, the columns naming one entity (``venue,
        symbol``): the rows of an entity sharing one ``time_column`` value are one snapshot, and a write
        drops a new snapshot equal to the one in force before it (``datasets.versions``).
    unversioned_columns : tuple of str
        Columns a snapshot comparison ignores (``source``: the same spec from another source is no change).
    """

    kind: Kind
    schema: pa.Schema
    key: tuple[str, ...]
    partition_by: tuple[str, ...]
    price_columns: tuple[str, ...]
    nonnegative_columns: tuple[str, ...]
    time_column: str = "ts"
    versioned_by: tuple[str, ...] = ()
    unversioned_columns: tuple[str, ...] = ()

    @property
    def order_by(self) -> list[str]:
        """Sort order inside a partition: the time column, then the key columns a partition does not fix."""
        time = self.time_column
        return [time, *(k for k in self.key if k != time and k not in self.partition_by)]

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

# Instrument specs as the venue states them, one row per (venue, symbol) and version. Sizes and
# prices are decimals from the venue's own text where it sends text; fees and margins are fractions of
# notional; ``settle`` is null for spot. ``funding_interval`` is the perp's settlement interval (null
# for spot); ``listing_time``/``delisting_time`` where the venue says (null otherwise); ``source`` says
# which endpoints (and which static tables) the row came from.
INSTRUMENTS = KindSpec(
    kind="instruments",
    schema=pa.schema(
        [
            pa.field("venue", pa.string(), nullable=False),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("market", pa.string(), nullable=False),
            pa.field("native_symbol", pa.string(), nullable=False),
            pa.field("instrument_id", pa.string(), nullable=False),
            pa.field("base", pa.string(), nullable=False),
            pa.field("quote", pa.string(), nullable=False),
            pa.field("settle", pa.string(), nullable=True),
            pa.field("tick_size", DECIMAL, nullable=False),
            pa.field("lot_size", DECIMAL, nullable=False),
            # Decimals of the tick and lot as the venue writes them ("0.10": 2, Nautilus' precision), which the
            # decimal128 value loses; null: the decimals of the normalised value.
            pa.field("price_precision", pa.int64(), nullable=True),
            pa.field("size_precision", pa.int64(), nullable=True),
            pa.field("min_quantity", DECIMAL, nullable=True),
            pa.field("min_notional", DECIMAL, nullable=True),
            pa.field("contract_multiplier", DECIMAL, nullable=False),
            pa.field("max_leverage", DECIMAL, nullable=True),
            pa.field("initial_margin", DECIMAL, nullable=True),
            pa.field("maintenance_margin", DECIMAL, nullable=True),
            pa.field("maker_fee", DECIMAL, nullable=True),
            pa.field("taker_fee", DECIMAL, nullable=True),
            pa.field("funding_interval", pa.string(), nullable=True),
            pa.field("listing_time", TIMESTAMP, nullable=True),
            pa.field("delisting_time", TIMESTAMP, nullable=True),
            pa.field("source", pa.string(), nullable=False),
            pa.field("effective_from", TIMESTAMP, nullable=False),
        ]
    ),
    key=("venue", "symbol", "effective_from"),
    partition_by=("venue",),
    price_columns=("tick_size", "lot_size", "contract_multiplier"),
    nonnegative_columns=(
        "price_precision",
        "size_precision",
        "min_quantity",
        "min_notional",
        "max_leverage",
        "initial_margin",
        "maintenance_margin",
    ),
    time_column="effective_from",
    versioned_by=("venue", "symbol"),
    unversioned_columns=("source",),
)

# Margin and leverage tiers of a perp: tier n applies to positions in [notional_floor, notional_cap),
# in the settle currency when ``bound_unit`` is "notional" and in contracts when it is "contracts" (OKX
# swaps bound tiers by position size). ``maintenance_amount`` is the venue's maintenance deduction
# (Binance ``cum``, Bybit ``mmDeduction``) where it states one. A snapshot is all tiers of one symbol at
# one effective_from, so a tier removed by the venue is a change too.
MARGIN_TIERS = KindSpec(
    kind="margin_tiers",
    schema=pa.schema(
        [
            pa.field("venue", pa.string(), nullable=False),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("tier", pa.int64(), nullable=False),
            pa.field("bound_unit", pa.string(), nullable=False),
            pa.field("notional_floor", DECIMAL, nullable=False),
            pa.field("notional_cap", DECIMAL, nullable=True),
            pa.field("max_leverage", DECIMAL, nullable=True),
            pa.field("initial_margin", DECIMAL, nullable=True),
            pa.field("maintenance_margin", DECIMAL, nullable=False),
            pa.field("maintenance_amount", DECIMAL, nullable=True),
            pa.field("source", pa.string(), nullable=False),
            pa.field("effective_from", TIMESTAMP, nullable=False),
        ]
    ),
    key=("venue", "symbol", "effective_from", "tier"),
    partition_by=("venue",),
    price_columns=(),
    nonnegative_columns=(
        "notional_floor",
        "notional_cap",
        "max_leverage",
        "initial_margin",
        "maintenance_margin",
        "maintenance_amount",
    ),
    time_column="effective_from",
    versioned_by=("venue", "symbol"),
    unversioned_columns=("source",),
)

# What a liquidator wants to know about one on-chain liquidation (datasets.onchain.decode): one row per
# liquidation instruction (and per LiquidationRecord, ``record_index``, when one instruction emits several).
# Amounts are raw integers of the mint (``*_amount``) with the mint's ``*_decimals``; ``pre_health`` /
# ``post_health`` are the protocol's own figure where the transaction carries one (marginfi's event health,
# Drift's total collateral minus margin requirement in USD); ``priority_fee_lamports`` is
# ceil(compute unit price x limit / 1e6). With a USD price of both mints (Drift's record, or a price table
# for marginfi and Kamino: ``price_source``), ``liquidation_bonus_usd`` = ``seized_value_usd`` -
# ``repaid_value_usd`` and ``liquidation_bonus_bps`` = that / repaid value x 1e4 (Drift perps: the
# liquidator fee). ``event_id`` joins the row to its ``liquidations`` row.
LIQUIDATION_EXTRAS = KindSpec(
    kind="liquidation_extras",
    schema=pa.schema(
        [
            pa.field("venue", pa.string(), nullable=False),
            pa.field("protocol", pa.string(), nullable=False),
            pa.field("ts", TIMESTAMP, nullable=False),
            pa.field("slot", pa.int64(), nullable=False),
            pa.field("tx_signature", pa.string(), nullable=False),
            pa.field("instruction_index", pa.int64(), nullable=False),
            pa.field("inner_instruction_index", pa.int64(), nullable=True),
            pa.field("record_index", pa.int64(), nullable=False),
            pa.field("instruction", pa.string(), nullable=False),
            pa.field("idl_version", pa.string(), nullable=False),
            pa.field("account", pa.string(), nullable=True),
            pa.field("account_authority", pa.string(), nullable=True),
            pa.field("liquidator", pa.string(), nullable=True),
            pa.field("liquidator_account", pa.string(), nullable=True),
            pa.field("repay_mint", pa.string(), nullable=True),
            pa.field("repay_amount", RAW_AMOUNT, nullable=True),
            pa.field("repay_decimals", pa.int64(), nullable=True),
            pa.field("seized_mint", pa.string(), nullable=True),
            pa.field("seized_amount", RAW_AMOUNT, nullable=True),
            pa.field("seized_decimals", pa.int64(), nullable=True),
            pa.field("liquidator_fee_mint", pa.string(), nullable=True),
            pa.field("liquidator_fee_amount", RAW_AMOUNT, nullable=True),
            pa.field("liquidation_bonus_bps", DECIMAL, nullable=True),
            pa.field("repaid_value_usd", DECIMAL, nullable=True),
            pa.field("seized_value_usd", DECIMAL, nullable=True),
            pa.field("liquidation_bonus_usd", DECIMAL, nullable=True),
            pa.field("price_source", pa.string(), nullable=True),
            pa.field("pre_health", DECIMAL, nullable=True),
            pa.field("post_health", DECIMAL, nullable=True),
            pa.field("compute_unit_limit", pa.int64(), nullable=True),
            pa.field("compute_unit_price_micro_lamports", pa.int64(), nullable=True),
            pa.field("priority_fee_lamports", pa.int64(), nullable=True),
            pa.field("fee_lamports", pa.int64(), nullable=True),
            pa.field("compute_units_consumed", pa.int64(), nullable=True),
            pa.field("position_in_block", pa.int64(), nullable=True),
            pa.field("amount_notes", pa.string(), nullable=True),
            pa.field("event_id", pa.string(), nullable=False),
        ]
    ),
    key=("protocol", "tx_signature", "instruction_index", "inner_instruction_index", "record_index"),
    partition_by=("venue", "protocol"),
    price_columns=(),
    nonnegative_columns=(
        "repay_amount",
        "seized_amount",
        "liquidator_fee_amount",
        "fee_lamports",
        "priority_fee_lamports",
    ),
)

# Decoded account states of the lending and perp programs (datasets.onchain.account_states), from a
# snapshot of accounts (``fetch-onchain --accounts``) read at ``slot`` and fetched at ``ts``. One row per
# position (``position`` 0.., ``position_kind`` deposit/borrow/perp) of an Obligation, MarginfiAccount or
# Drift User, and one row (``position`` null) per account with no position, Reserve, Bank or PythPrice.
# ``shares`` is the position in the protocol's own unit (Kamino cTokens, marginfi shares, Drift scaled
# balance or perp base); ``amount`` the native units of ``mint`` (``decimals``) where the state says.
# Account figures repeat on every row of the account: ``collateral_usd`` is the maintenance-weighted
# collateral (Drift: total collateral), ``borrows_usd`` the weighted borrows (Drift: maintenance margin
# requirement), ``health_ratio`` = collateral / borrows (below 1: liquidatable); ``health_source`` says
# whether the program cached them or they were computed, and from which prices.
ACCOUNT_STATES = KindSpec(
    kind="account_states",
    schema=pa.schema(
        [
            pa.field("venue", pa.string(), nullable=False),
            pa.field("protocol", pa.string(), nullable=False),
            pa.field("account_type", pa.string(), nullable=False),
            pa.field("account", pa.string(), nullable=False),
            pa.field("program_owner", pa.string(), nullable=False),
            pa.field("authority", pa.string(), nullable=True),
            pa.field("slot", pa.int64(), nullable=False),
            pa.field("ts", TIMESTAMP, nullable=False),
            pa.field("position", pa.int64(), nullable=True),
            pa.field("position_kind", pa.string(), nullable=True),
            pa.field("position_market", pa.string(), nullable=True),
            pa.field("mint", pa.string(), nullable=True),
            pa.field("shares", DECIMAL, nullable=True),
            pa.field("amount", DECIMAL, nullable=True),
            pa.field("decimals", pa.int64(), nullable=True),
            pa.field("price_usd", DECIMAL, nullable=True),
            pa.field("value_usd", DECIMAL, nullable=True),
            pa.field("weight", DECIMAL, nullable=True),
            pa.field("collateral_usd", DECIMAL, nullable=True),
            pa.field("borrows_usd", DECIMAL, nullable=True),
            pa.field("health_ratio", DECIMAL, nullable=True),
            pa.field("health_source", pa.string(), nullable=True),
            pa.field("idl_version", pa.string(), nullable=True),
            pa.field("source", pa.string(), nullable=False),
        ]
    ),
    key=("venue", "protocol", "ts", "account", "position"),
    partition_by=("venue", "protocol"),
    price_columns=("price_usd",),
    # Drift's total collateral (so the ratio) goes below zero when perp losses exceed the deposits.
    nonnegative_columns=("value_usd", "borrows_usd"),
)

SPECS: dict[Kind, KindSpec] = {
    "ohlcv": OHLCV,
    "funding": FUNDING,
    "liquidations": LIQUIDATIONS,
    "instruments": INSTRUMENTS,
    "margin_tiers": MARGIN_TIERS,
    "liquidation_extras": LIQUIDATION_EXTRAS,
    "account_states": ACCOUNT_STATES,
}


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
