"""Store OHLCV rows -> Nautilus bar, mark-price and index-price tables (pure, vectorised).

The store stamps a bar with its OPEN time, as the sources publish it. Nautilus stamps a bar with its
CLOSE time (``ts_event = ts_init = open + interval``): a bar must not reach a strategy before it has
closed, or the strategy trades on a close that has not happened yet. Mark and index updates derived
from a bar's close are stamped at the same close time.

Bar prices are rounded half-to-even to the instrument's tick (``price_increment``): Nautilus silently
rounds to the price precision on read, and its matching engine skips fills at prices off the tick
("fill price 42005.25 is not compatible with ... price_increment=0.10"), which older data recorded
under a finer tick would otherwise produce. Mark and index values, never filled against, are rounded
to the price precision; volumes to the size precision. Everything is carried as ``decimal128(38, 16)``
as Nautilus' own writer does.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pyarrow as pa

from datasets.schemas import interval_secs

NAUTILUS_DECIMAL = pa.decimal128(38, 16)
NAUTILUS_SCALE = 16
TIMESTAMP = pa.timestamp("ns", tz="UTC")

PRICE_TYPE_TAGS = {"trade": "LAST", "mark": "MARK"}
_AGGREGATIONS = {"m": ("MINUTE", 1), "h": ("HOUR", 1), "d": ("DAY", 1), "w": ("DAY", 7)}

BAR_SCHEMA = pa.schema(
    [pa.field(name, NAUTILUS_DECIMAL, nullable=False) for name in ("open", "high", "low", "close", "volume")]
    + [pa.field("ts_event", TIMESTAMP, nullable=False), pa.field("ts_init", TIMESTAMP, nullable=False)]
)
PRICE_UPDATE_SCHEMA = pa.schema(
    [
        pa.field("value", NAUTILUS_DECIMAL),
        pa.field("ts_event", TIMESTAMP, nullable=False),
        pa.field("ts_init", TIMESTAMP, nullable=False),
    ]
)


def bar_step(interval: str) -> tuple[int, str]:
    """Return the Nautilus step and aggregation of a store interval (``"4h" -> (4, "HOUR")``, ``"1w" -> (7, "DAY")``).

    Raises
    ------
    ValueError
        If the label is not a store interval.
    """
    interval_secs(interval)
    aggregation, factor = _AGGREGATIONS[interval[-1]]
    return int(interval[:-1]) * factor, aggregation


def bar_type_text(instrument_id: str, interval: str, price_type: str) -> str:
    """Return the bar type of a store stream (``BTCUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL``).

    Raises
    ------
    ValueError
        If the price type has no Nautilus bar price type (``index``) or the interval is invalid.
    """
    if price_type not in PRICE_TYPE_TAGS:
        raise ValueError(f"price type must be one of {', '.join(PRICE_TYPE_TAGS)} to make bars, was {price_type!r}")
    step, aggregation = bar_step(interval)
    return f"{instrument_id}-{step}-{aggregation}-{PRICE_TYPE_TAGS[price_type]}-EXTERNAL"


def bar_close(ts: pl.Expr, interval: str) -> pl.Expr:
    """Return the close time of bars opening at ``ts`` (open + interval)."""
    return ts + pl.duration(seconds=interval_secs(interval))


def round_to_precision(expr: pl.Expr, precision: int) -> pl.Expr:
    """Round a decimal column half-to-even to ``precision`` decimals, typed as Nautilus' ``decimal128(38, 16)``.

    Raises
    ------
    ValueError
        If ``precision`` is outside 0..16 (Nautilus' fixed scale).
    """
    if not 0 <= precision <= NAUTILUS_SCALE:
        raise ValueError(f"precision must be within 0..{NAUTILUS_SCALE}, was {precision}")
    return expr.round(precision, mode="half_to_even").cast(pl.Decimal(38, NAUTILUS_SCALE))


def round_to_increment(expr: pl.Expr, increment: Decimal) -> pl.Expr:
    """Round a decimal column half-to-even to a multiple of ``increment`` (a tick such as ``0.10`` or ``0.5``).

    Raises
    ------
    ValueError
        If the increment is not positive or has more than 16 decimals.
    """
    if increment <= 0:
        raise ValueError(f"increment must be > 0, was {increment}")
    precision = decimals_of(increment)
    if increment == Decimal(1).scaleb(-precision):
        return round_to_precision(expr, precision)
    ticks = (expr / pl.lit(increment)).round(0, mode="half_to_even")
    return round_to_precision(ticks * pl.lit(increment), precision)


def decimals_of(value: Decimal) -> int:
    """Return the decimals a value is written with (``Decimal("0.10") -> 2``), as Nautilus counts precision."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"expected a finite decimal, was {value}")
    return max(0, -exponent)


def bars_frame(frame: pl.DataFrame, *, interval: str, price_increment: Decimal, size_precision: int) -> pl.DataFrame:
    """Return store OHLCV rows (``ts`` = open) as Nautilus bar columns stamped at the close.

    Prices are rounded to the tick, volume to the size precision; a volume missing in the store
    becomes 0 (a Nautilus bar always has one).
    """
    close_ts = bar_close(pl.col("ts"), interval).cast(pl.Datetime("ns", "UTC"))
    ordered = frame if frame["ts"].is_sorted() else frame.sort("ts")
    return ordered.select(
        *(round_to_increment(pl.col(c), price_increment) for c in ("open", "high", "low", "close")),
        round_to_precision(pl.col("volume").fill_null(0), size_precision),
        close_ts.alias("ts_event"),
        close_ts.alias("ts_init"),
    )


def bars_table(
    frame: pl.DataFrame,
    *,
    bar_type: str,
    instrument_id: str,
    interval: str,
    price_increment: Decimal,
    size_precision: int,
) -> pa.Table:
    """Return store OHLCV rows of one stream as the Arrow table Nautilus reads for ``bar_type``."""
    price_precision = decimals_of(price_increment)
    columns = bars_frame(frame, interval=interval, price_increment=price_increment, size_precision=size_precision)
    metadata = {
        "bar_type": bar_type,
        "instrument_id": instrument_id,
        "price_precision": str(price_precision),
        "size_precision": str(size_precision),
        "type_name": "Bar",
    }
    return _to_arrow(columns, BAR_SCHEMA, metadata)


def price_updates_table(
    frame: pl.DataFrame, *, instrument_id: str, interval: str, price_precision: int, type_name: str
) -> pa.Table:
    """Return bar closes as ``MarkPriceUpdate`` or ``IndexPriceUpdate`` rows stamped at each bar's close."""
    close_ts = bar_close(pl.col("ts"), interval).cast(pl.Datetime("ns", "UTC"))
    ordered = frame if frame["ts"].is_sorted() else frame.sort("ts")
    columns = ordered.select(
        round_to_precision(pl.col("close"), price_precision).alias("value"),
        close_ts.alias("ts_event"),
        close_ts.alias("ts_init"),
    )
    metadata = {"instrument_id": instrument_id, "price_precision": str(price_precision), "type_name": type_name}
    return _to_arrow(columns, PRICE_UPDATE_SCHEMA, metadata)


def _to_arrow(frame: pl.DataFrame, schema: pa.Schema, metadata: dict[str, str]) -> pa.Table:
    arrow = frame.to_arrow()
    arrays = [arrow.column(field.name).cast(field.type) for field in schema]
    return pa.Table.from_arrays(arrays, schema=schema.with_metadata(metadata))
