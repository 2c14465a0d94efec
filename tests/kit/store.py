"""Builders of small hand-made store batches and catalogs for tests.

Batches follow the canonical schemas of ``datasets.schemas`` (``OHLCV``, ``FUNDING`` and every
``spec_for(kind)``) with the ``_row`` column ``Store.write`` expects. Values are given as decimal text
(or ``Decimal``/``int``), never parsed through float. Seeded large batches for benchmarks live in the
library: ``datasets.synthetic.synthetic_bars``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from datasets.catalog import export_catalog
from datasets.pipeline import import_paths
from datasets.schemas import FUNDING, OHLCV, PL_DECIMAL, spec_for
from datasets.store import Store
from datasets.symbols import market_of
from datasets.testing import FIXTURE_INSTRUMENTS
from datasets.validate import ROW


def ohlcv_batch(
    bars: Sequence[tuple[datetime, str, str, str, str, str]],
    *,
    venue: str = "binance",
    symbol: str = "BTC-USDT-PERP",
    price_type: str = "trade",
    interval: str = "1h",
) -> pl.DataFrame:
    """Return an ohlcv batch from ``(ts, open, high, low, close, volume)`` tuples of decimal text."""
    frame = pl.DataFrame(
        {
            "ts": [b[0] for b in bars],
            **{name: [b[i + 1] for b in bars] for i, name in enumerate(("open", "high", "low", "close", "volume"))},
        },
        schema={"ts": pl.Datetime("ns", "UTC"), **dict.fromkeys(("open", "high", "low", "close", "volume"), pl.String)},
    )
    return (
        frame.with_row_index("_row")
        .select(
            pl.lit(venue).alias("venue"),
            pl.lit(symbol).alias("symbol"),
            pl.lit(market_of(symbol)).alias("market"),
            pl.lit(price_type).alias("price_type"),
            pl.lit(interval).alias("interval"),
            "ts",
            *(pl.col(c).cast(PL_DECIMAL) for c in ("open", "high", "low", "close", "volume")),
            pl.col("_row").cast(pl.Int64),
        )
        .select(*OHLCV.columns, "_row")
    )


def funding_batch(
    settlements: Sequence[tuple[datetime, str]],
    *,
    venue: str = "binance",
    symbol: str = "BTC-USDT-PERP",
    interval: str = "8h",
    mark_prices: Sequence[str | None] | None = None,
) -> pl.DataFrame:
    """Return a funding batch from ``(settlement ts, rate text)`` pairs, one interval for all rows."""
    marks = list(mark_prices) if mark_prices is not None else [None] * len(settlements)
    frame = pl.DataFrame(
        {"ts": [s[0] for s in settlements], "rate": [s[1] for s in settlements], "mark_price": marks},
        schema={"ts": pl.Datetime("ns", "UTC"), "rate": pl.String, "mark_price": pl.String},
    )
    nothing = pl.lit(None, dtype=PL_DECIMAL)
    return (
        frame.with_row_index("_row")
        .select(
            pl.lit(venue).alias("venue"),
            pl.lit(symbol).alias("symbol"),
            "ts",
            pl.col("rate").cast(PL_DECIMAL),
            pl.lit(interval).alias("interval"),
            pl.col("mark_price").cast(PL_DECIMAL),
            nothing.alias("index_price"),
            nothing.alias("premium"),
            pl.col("_row").cast(pl.Int64),
        )
        .select(*FUNDING.columns, "_row")
    )


def catalog_from_files(
    root: Path,
    paths: Sequence[Path],
    *,
    start: datetime,
    end: datetime,
    venues: list[str] | None = None,
    symbols: list[str] | None = None,
) -> Path:
    """Import ``paths`` and the fixture instrument table into ``root/store``, export its ``[start, end)``."""
    store = Store(root / "store")
    import_paths([*paths, FIXTURE_INSTRUMENTS], store)
    export_catalog(store, root / "catalog", venues=venues, symbols=symbols, start=start, end=end)
    return root / "catalog"


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
