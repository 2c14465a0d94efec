"""Builders of small hand-made and large seeded store batches, for tests, benchmarks and notebooks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl

from datasets.schemas import PL_DECIMAL, interval_secs, spec_for
from datasets.symbols import market_of
from datasets.validate import ROW


def canonical_frame(kind: str, rows: Sequence[Mapping[str, Any]], **constants: Any) -> pl.DataFrame:
    """Return rows (dicts; missing nullable columns become null) as a store batch of ``kind`` with ``_row``.

    ``constants`` fill a column for every row (``venue="binance"``). Decimals may be given as
    ``Decimal``, ``int`` or decimal text; they are never parsed through float.
    """
    spec = spec_for(kind)
    schema = spec.polars_schema
    columns: dict[str, list[Any]] = {name: [] for name in schema}
    for row in rows:
        values = {**constants, **row}
        for name, dtype in schema.items():
            value = values.get(name)
            if isinstance(dtype, pl.Decimal) and value is not None:
                value = Decimal(str(value))
            columns[name].append(value)
    frame = pl.DataFrame(columns, schema=schema)
    return frame.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64)).select(*spec.columns, ROW)


def synthetic_bars(
    n_bars: int,
    *,
    venue: str,
    symbol: str,
    start: datetime,
    interval: str = "1m",
    price_type: str = "trade",
    first_price: float = 30_000.0,
    volatility: float = 0.0005,
    tick: str = "0.01",
    seed: int = 42,
) -> pl.DataFrame:
    """Return ``n_bars`` consecutive OHLCV rows of a seeded geometric random walk, as a store batch.

    Prices are multiples of ``tick``, volumes have three decimals; high and low enclose open and close.
    """
    rng = np.random.default_rng(seed)
    closes = first_price * np.exp(np.cumsum(rng.normal(0.0, volatility, n_bars)))
    opens = np.concatenate(([first_price], closes[:-1]))
    wick = np.abs(rng.normal(0.0, volatility / 2, (2, n_bars))) * closes
    highs = np.maximum(opens, closes) + wick[0]
    lows = np.minimum(opens, closes) - wick[1]
    volumes = rng.gamma(2.0, 5.0, n_bars)
    last = start + timedelta(seconds=interval_secs(interval) * (n_bars - 1))
    ts = pl.datetime_range(start, last, interval, eager=True, time_unit="ns").cast(pl.Datetime("ns", "UTC"))

    step = float(tick)
    places = max(0, -Decimal(tick).as_tuple().exponent)  # type: ignore[operator]

    def on_tick(values: np.ndarray) -> pl.Series:
        return pl.Series(np.round(np.round(values / step) * step, places)).cast(pl.String).cast(PL_DECIMAL)

    frame = pl.DataFrame(
        {
            "venue": venue,
            "symbol": symbol,
            "market": market_of(symbol),
            "price_type": price_type,
            "interval": interval,
            "ts": ts,
            "open": on_tick(opens),
            "high": on_tick(np.maximum(highs, step)),
            "low": on_tick(np.maximum(lows, step)),
            "close": on_tick(closes),
            "volume": pl.Series(np.round(volumes, 3)).cast(pl.String).cast(PL_DECIMAL),
        }
    )
    return frame.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64)).select(*spec_for("ohlcv").columns, ROW)
