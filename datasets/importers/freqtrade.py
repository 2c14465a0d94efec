"""freqtrade's feather files (Arrow IPC): spot, perp, mark and funding-rate candles.

File names are ``<PAIR>-<timeframe>[-<candle type>].feather``: ``BTC_USDT-1h`` (spot),
``BTC_USDT_USDT-1h-futures`` (perp trades), ``-mark``, ``-index``, ``-funding_rate``. The schema is
``date (timestamp, UTC), open, high, low, close, volume (float64)``. In funding files the rate sits
in ``open`` and the other columns are 0; the timeframe in the name is the download's, not the funding
clock (a ``-1h-funding_rate`` file may hold 8-hourly settlements), so the interval is inferred from
the settlement spacing.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pyarrow as pa

from datasets.errors import SourceFormatError
from datasets.importers.base import Batch, ImportOptions, require_columns, with_row_numbers
from datasets.intervals import infer_funding_interval, snap_to_minute
from datasets.numeric import decimal_from_float
from datasets.schemas import FUNDING, OHLCV
from datasets.symbols import from_freqtrade_pair, market_of

NAME = re.compile(
    r"^(?P<pair>[A-Z0-9]+(?:_[A-Z0-9]+){1,2})-(?P<timeframe>[1-9][0-9]*[mhdw])"
    r"(?:-(?P<candle>futures|mark|index|funding_rate))?\.feather$"
)
VENUES = ("binance", "bybit", "okx", "hyperliquid", "kraken", "gateio", "kucoin", "bitget")
COLUMNS = ["date", "open", "high", "low", "close", "volume"]
PRICE_TYPE = {None: "trade", "futures": "trade", "mark": "mark", "index": "index"}


class FreqtradeImporter:
    """Reader of freqtrade ``.feather`` candle and funding files."""

    name = "freqtrade-feather"
    version = "1"
    description = "freqtrade data dir: <PAIR>-<tf>[-futures|-mark|-index|-funding_rate].feather"

    def sniff(self, path: Path) -> bool:
        return NAME.match(path.name) is not None

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        match = NAME.match(path.name)
        if match is None:
            raise SourceFormatError(f"{path}: name does not follow freqtrade's <PAIR>-<tf>[-<type>].feather")
        venue = options.venue or _venue_from_path(path)
        symbol = from_freqtrade_pair(match["pair"])
        try:
            raw = pl.read_ipc(path)
        except (OSError, pl.exceptions.PolarsError, pa.ArrowException) as exc:
            raise SourceFormatError(f"{path}: not a readable Arrow IPC (feather) file ({exc}); re-download it") from exc
        require_columns(raw, COLUMNS, path=path, what="freqtrade feather")
        if not isinstance(raw.schema["date"], pl.Datetime):
            raise SourceFormatError(f"{path}: column 'date' should be a timestamp, was {raw.schema['date']}")
        frame = with_row_numbers(raw).with_columns(
            pl.col("date").dt.replace_time_zone(None).dt.replace_time_zone("UTC").cast(pl.Datetime("ns", "UTC"))
            if raw.schema["date"].time_zone is None  # type: ignore[union-attr]
            else pl.col("date").dt.convert_time_zone("UTC").cast(pl.Datetime("ns", "UTC"))
        )
        candle = match["candle"]
        if candle == "funding_rate":
            return [Batch("funding", _funding(frame, venue=venue, symbol=symbol))]
        return [Batch("ohlcv", _ohlcv(frame, venue, symbol, PRICE_TYPE[candle], match["timeframe"]))]


def _venue_from_path(path: Path) -> str:
    for part in reversed(path.resolve().parts[:-1]):
        for venue in VENUES:
            if part.lower() == venue or part.lower().startswith(f"{venue}_"):
                return venue
    raise SourceFormatError(
        f"{path}: cannot tell the venue from the path (no folder named after one of {', '.join(VENUES)}); pass --venue"
    )


def _ohlcv(frame: pl.DataFrame, venue: str, symbol: str, price_type: str, interval: str) -> pl.DataFrame:
    return frame.select(
        pl.lit(venue).alias("venue"),
        pl.lit(symbol).alias("symbol"),
        pl.lit(market_of(symbol)).alias("market"),
        pl.lit(price_type).alias("price_type"),
        pl.lit(interval).alias("interval"),
        pl.col("date").alias("ts"),
        *(decimal_from_float(pl.col(c)).alias(c) for c in ("open", "high", "low", "close", "volume")),
        "_row",
    ).select(*OHLCV.columns, "_row")


def _funding(frame: pl.DataFrame, *, venue: str, symbol: str) -> pl.DataFrame:
    nothing = pl.lit(None, dtype=FUNDING.polars_schema["rate"])
    return (
        frame.select(
            pl.lit(venue).alias("venue"),
            pl.lit(symbol).alias("symbol"),
            snap_to_minute(pl.col("date")).alias("ts"),
            decimal_from_float(pl.col("open")).alias("rate"),
            "_row",
        )
        .sort("ts")
        .with_columns(
            infer_funding_interval(pl.col("ts")).alias("interval"),
            nothing.alias("mark_price"),
            nothing.alias("index_price"),
            nothing.alias("premium"),
        )
        .select(*FUNDING.columns, "_row")
    )
