"""Store funding settlements -> Nautilus ``FundingRateUpdate`` tables (pure, vectorised).

A store row is a settlement: at time ``T`` longs paid shorts ``rate`` times their notional (shorts paid
longs when negative), and the funding clock was ``interval``. Nautilus' simulated exchange settles
funding natively: an update with ``next_funding_ns = T`` schedules a settlement at ``T`` that uses
that update's ``rate`` and the latest mark price, and an update received at ``T`` for ``T + I`` does
not displace it (verified on 2.0.0rc6, ``tests/integration/test_catalog_backtest.py``).

So each settlement ``(T, r, I)`` becomes one update stamped at the previous settlement,
``ts_event = ts_init = T - I``, with ``rate = r``, ``interval = I`` in minutes and
``next_funding_ns = T``.

Look-ahead: venues publish a *predicted* rate during the interval that converges on ``r`` only at
``T``; stamping ``r`` at ``T - I`` shows a strategy the realised rate a whole interval early. The
settled cash flow is exact; a strategy that *decides* on ``on_funding_rate`` values sees the future
and must lag them (or use the previous update's rate) to be honest.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from datasets.schemas import interval_secs

TIMESTAMP = pa.timestamp("ns", tz="UTC")
FUNDING_SCHEMA = pa.schema(
    [
        pa.field("instrument_id", pa.string(), nullable=False),
        pa.field("rate", pa.string(), nullable=False),
        pa.field("interval", pa.uint64()),
        pa.field("next_funding_ns", TIMESTAMP),
        pa.field("ts_event", TIMESTAMP, nullable=False),
        pa.field("ts_init", TIMESTAMP, nullable=False),
    ]
)


def decimal_text(expr: pl.Expr) -> pl.Expr:
    """Return decimals as their shortest plain text (``0.000100000000000000`` -> ``0.0001``, ``-0`` -> ``0``)."""
    text = expr.cast(pl.String)
    trimmed = pl.when(text.str.contains(".", literal=True)).then(text.str.strip_chars_end("0")).otherwise(text)
    plain = trimmed.str.strip_chars_end(".")
    return pl.when(plain == "-0").then(pl.lit("0")).otherwise(plain)


def funding_updates_frame(frame: pl.DataFrame, *, instrument_id: str) -> pl.DataFrame:
    """Return settlements (``ts``, ``rate``, ``interval``) as update columns announced one interval earlier.

    Raises
    ------
    ValueError
        If an interval label is invalid.
    """
    labels = frame["interval"].unique().to_list()
    seconds = {label: interval_secs(label) for label in labels}
    interval_s = pl.col("interval").replace_strict(seconds, return_dtype=pl.Int64)
    announced = (pl.col("ts") - pl.duration(seconds=interval_s)).cast(pl.Datetime("ns", "UTC"))
    return frame.select(
        pl.lit(instrument_id).alias("instrument_id"),
        decimal_text(pl.col("rate")).alias("rate"),
        (interval_s // 60).cast(pl.UInt64).alias("interval"),
        pl.col("ts").cast(pl.Datetime("ns", "UTC")).alias("next_funding_ns"),
        announced.alias("ts_event"),
        announced.alias("ts_init"),
    ).sort("ts_init", "next_funding_ns")


def funding_table(frame: pl.DataFrame, *, instrument_id: str) -> pa.Table:
    """Return settlements of one instrument as the Arrow table Nautilus reads as ``FundingRateUpdate``."""
    columns = funding_updates_frame(frame, instrument_id=instrument_id).to_arrow()
    arrays = [columns.column(field.name).cast(field.type) for field in FUNDING_SCHEMA]
    metadata = {"instrument_id": instrument_id, "type_name": "FundingRateUpdate"}
    return pa.Table.from_arrays(arrays, schema=FUNDING_SCHEMA.with_metadata(metadata))
