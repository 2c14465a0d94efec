"""Estimate the correlation of the configured instruments' returns from the canonical store.

``[sizing] max_correlated_exposure_usd`` counts correlated exposures together (``strategies.sizing``); the
matrix it needs is estimated here, before the run, from the store's ``ohlcv`` trade bars over
``correlation_window_days`` ending at the run's ``start`` (no bar of the run itself, so no look-ahead), and
handed to the strategy through its config: the strategy does no I/O.

The estimate is Pearson's correlation of log close-to-close returns on the timestamps every instrument
has a bar for, in float64 (a research estimate, not a ledger figure), rounded to 6 decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import polars as pl

from datasets.store import Store
from engine.config import RunConfig, SizingConfig
from engine.errors import ConfigError

MIN_COMMON_RETURNS = 3


def return_correlations(closes: pl.DataFrame, names: Sequence[str]) -> dict[str, dict[str, Decimal]]:
    """Return name -> name -> correlation of log returns of the float close columns ``names`` of ``closes``.

    ``closes`` holds one row per common timestamp in time order.

    Raises
    ------
    ConfigError
        If fewer than ``MIN_COMMON_RETURNS`` returns are common to all columns, or a column is constant.
    """
    returns = closes.select(pl.col(name).log().diff().alias(name) for name in names).drop_nulls()
    if returns.height < MIN_COMMON_RETURNS:
        raise ConfigError(
            f"sizing: expected at least {MIN_COMMON_RETURNS} returns common to {list(names)} in the correlation "
            f"window, was {returns.height}; widen correlation_window_days or import the bars"
        )
    result: dict[str, dict[str, Decimal]] = {}
    for first in names:
        row: dict[str, Decimal] = {}
        for second in names:
            if first == second:
                continue
            value = returns.select(pl.corr(first, second)).item()
            if value is None or value != value:
                raise ConfigError(
                    f"sizing: the returns of {first} or {second} are constant in the window, no correlation"
                )
            row[second] = Decimal(f"{max(-1.0, min(1.0, value)):.6f}")
        result[first] = row
    return result


def estimate_correlation(
    config: RunConfig, sizing: SizingConfig, *, instruments: Sequence[tuple[str, str, str]]
) -> dict[str, dict[str, Decimal]]:
    """Return the correlation matrix of ``instruments`` (venue, symbol, Nautilus id) from the store.

    Raises
    ------
    ConfigError
        If an instrument has no bars in the window or too few returns are common to all.
    """
    store = Store(sizing.store)
    end = config.start
    start = end - timedelta(days=sizing.correlation_window_days)
    joined: pl.DataFrame | None = None
    names = [name for _, _, name in instruments]
    for venue, symbol, name in instruments:
        frame = (
            store.scan(
                "ohlcv",
                start=start,
                end=end,
                floats=True,
                venue=venue,
                symbol=symbol,
                price_type="trade",
                interval=sizing.correlation_interval,
            )
            .select("ts", pl.col("close").alias(name))
            .collect()
        )
        if frame.is_empty():
            raise ConfigError(
                f"sizing: expected {venue}:{symbol} {sizing.correlation_interval} trade bars in {store.root} from "
                f"{start.isoformat()} to {end.isoformat()} for the correlation, found none; import them or "
                "drop max_correlated_exposure_usd"
            )
        joined = frame if joined is None else joined.join(frame, on="ts", how="inner")
    if joined is None:
        return {}
    return return_correlations(joined.sort("ts"), names)
