"""Instrument specs and margin tiers as stored: the version in force at a time.

The ``instruments`` and ``margin_tiers`` kinds keep history (``datasets.versions``): a spec is in
force from its ``effective_from`` until the symbol's next version. A backtest over a past window
uses the specs in force then (``instrument_specs_at``).

A venue's first stored version is in force from when it was fetched (or the ``--as-of`` of an
imported file); a time before it has no stored spec. ``before_first="earliest"`` takes the first
version for such times instead, for callers that accept today's tick sizes for older windows (the
README says where that is an assumption).

``spec_in_force`` turns the stored version into the ``InstrumentSpec`` the catalog export builds a
Nautilus instrument from. A symbol without stored specs can have them inferred from its bars
(``infer_instrument_spec``): the tick is the largest step every observed trade price (open, high, low,
close) is a whole multiple of, i.e. the finest tick consistent with the data, and the lot likewise from
the bars' positive volumes; margins are unknown (zero: no venue maximum leverage is checked), the
multiplier is 1 and the minimum quantity one lot. Such specs say ``inferred`` wherever they reach.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import polars as pl
from nautilus_trader.model import InstrumentId

from datasets.errors import NotInStoreError
from datasets.schemas import INSTRUMENTS, MARGIN_TIERS, OHLCV
from datasets.store import Store
from datasets.symbols import Market, market_of
from datasets.venues import instrument_id_for, raw_symbol_for, split_symbol

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
    price_precision: int | None
    size_precision: int | None
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


class MissingInstrumentSpecsError(NotInStoreError):
    """Symbols with data have no stored instrument spec in force (exit 3): the message says how to fetch them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentSpec:
    """What Nautilus needs to build one instrument, from a stored version (or inferred from the data).

    Attributes
    ----------
    venue, symbol : str
        Store venue (``binance``) and canonical symbol (``BTC-USDT-PERP``).
    instrument_id : InstrumentId
        The Nautilus id, by the venue's live adapter's rule.
    raw_symbol : str
        The venue's own name of the instrument.
    base, quote, settlement : str
        Currency codes; ``settlement`` equals ``quote`` for spot.
    price_increment, size_increment, min_quantity : Decimal
        Tick, lot and minimum order size.
    price_precision, size_precision : int
        Decimals of the tick and lot as the venue writes them (``"0.10"``: 2), Nautilus' precisions.
    margin_init, margin_maint : Decimal
        First-tier initial and maintenance margin rates of notional (zero for spot and when unknown).
    multiplier : Decimal
        Base units per contract (1 except contract-sized swaps such as OKX's).
    source : str
        Where the spec came from (the stored version's ``source``, or how it was inferred).
    effective_from : datetime or None
        When the stored version came into force (None for an inferred spec).
    inferred : bool
        True when tick and lot were derived from the data, not read from the venue.
    """

    venue: str
    symbol: str
    instrument_id: InstrumentId
    raw_symbol: str
    base: str
    quote: str
    settlement: str
    price_increment: Decimal
    size_increment: Decimal
    price_precision: int
    size_precision: int
    min_quantity: Decimal
    margin_init: Decimal
    margin_maint: Decimal
    multiplier: Decimal
    source: str
    effective_from: datetime | None
    inferred: bool = False

    @property
    def market(self) -> Market:
        return market_of(self.symbol)


def spec_from_record(record: InstrumentRecord) -> InstrumentSpec:
    """Return the ``InstrumentSpec`` of a stored version (precisions as the venue wrote tick and lot)."""
    tick, lot = record.tick_size.normalize(), record.lot_size.normalize()
    price_precision = record.price_precision if record.price_precision is not None else decimals(tick)
    size_precision = record.size_precision if record.size_precision is not None else decimals(lot)
    return InstrumentSpec(
        venue=record.venue,
        symbol=record.symbol,
        instrument_id=InstrumentId.from_str(record.instrument_id),
        raw_symbol=record.native_symbol,
        base=record.base,
        quote=record.quote,
        settlement=record.settle or record.quote,
        price_increment=_written(tick, price_precision),
        size_increment=_written(lot, size_precision),
        price_precision=price_precision,
        size_precision=size_precision,
        min_quantity=(record.min_quantity or lot).normalize(),
        margin_init=(record.initial_margin or Decimal(0)).normalize(),
        margin_maint=(record.maintenance_margin or Decimal(0)).normalize(),
        multiplier=record.contract_multiplier.normalize(),
        source=record.source,
        effective_from=record.effective_from,
    )


def spec_in_force(
    store: Store, venue: str, symbol: str, ts: datetime, *, before_first: BeforeFirst = "raise"
) -> InstrumentSpec:
    """Return the ``InstrumentSpec`` of the stored version in force at ``ts`` (``instrument_specs_at``).

    Raises
    ------
    NotInStoreError
        As ``instrument_specs_at``.
    """
    return spec_from_record(instrument_specs_at(store, venue, symbol, ts, before_first=before_first))


def infer_instrument_spec(
    store: Store, venue: str, symbol: str, *, start: datetime | None = None, end: datetime | None = None
) -> InstrumentSpec | None:
    """Return a spec whose tick and lot are inferred from the symbol's trade bars in ``[start, end)``.

    Returns None when the store holds no trade bars with positive prices and volumes for the symbol.
    """
    frame = store.scan(OHLCV.kind, start=start, end=end, venue=venue, symbol=symbol, price_type="trade")
    bars = frame.select("open", "high", "low", "close", "volume").collect()
    if bars.height == 0:
        return None
    prices = pl.concat([bars[c] for c in ("open", "high", "low", "close")]).unique()
    tick = common_increment(prices.to_list())
    lot = common_increment(bars["volume"].drop_nulls().unique().to_list())
    if tick is None or lot is None:
        return None
    base, quote, _ = split_symbol(symbol)
    return InstrumentSpec(
        venue=venue,
        symbol=symbol,
        instrument_id=instrument_id_for(venue, symbol),
        raw_symbol=raw_symbol_for(venue, symbol),
        base=base,
        quote=quote,
        settlement=quote,
        price_increment=tick,
        size_increment=lot,
        price_precision=decimals(tick),
        size_precision=decimals(lot),
        min_quantity=lot,
        margin_init=Decimal(0),
        margin_maint=Decimal(0),
        multiplier=Decimal(1),
        source=f"inferred from {venue} {symbol} trade bars: tick and lot are the finest steps the data fits",
        effective_from=None,
        inferred=True,
    )


def common_increment(values: Iterable[Decimal | None]) -> Decimal | None:
    """Return the largest step every positive value is a whole multiple of (None: no positive value).

    ``[42000.1, 42000.3, 41999.9]`` gives ``0.1``: the finest tick the prices fit. Exact, on decimals.
    """
    positive = [v for v in values if v is not None and v > 0]
    if not positive:
        return None
    places = max(decimals(v.normalize()) for v in positive)
    scale = 10**places
    step = math.gcd(*(int(v * scale) for v in positive))
    return Decimal(step).scaleb(-places).normalize()


def missing_specs_message(missing: Mapping[str, Sequence[str]], *, at: str, inferable: bool) -> str:
    """Return the exit-3 message for symbols without stored specs: which, and the commands that fetch them."""
    listed = "; ".join(f"{venue}: {', '.join(symbols)}" for venue, symbols in sorted(missing.items()))
    fetches = " && ".join(f"python -m datasets fetch --kind instruments --venue {venue}" for venue in sorted(missing))
    infer = ", or pass --infer-instruments to derive tick and lot from the data (marked inferred)" if inferable else ""
    return (
        f"expected stored instrument specs in force at {at} for every exported symbol, was none for {listed}; "
        f"fetch them ({fetches}) or import a table of them (python -m datasets import FILE){infer}"
    )


def _written(value: Decimal, precision: int) -> Decimal:
    # "0.1" stored with precision 2 is the venue's "0.10": keep the decimals it was written with.
    return value.quantize(Decimal(1).scaleb(-precision)) if precision > decimals(value) else value


def decimals(value: Decimal) -> int:
    """Return the decimals of a decimal as written (``Decimal("0.10")``: 2)."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"an increment must be a finite decimal, was {value}")
    return max(0, -exponent)
