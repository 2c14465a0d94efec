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

import numpy as np
import polars as pl
import pyarrow as pa

from datasets.errors import EmptyInputError, SourceFormatError
from datasets.importers.base import Batch, ImportOptions, require_columns, with_row_numbers
from datasets.importers.common import error_at, first_true, snap_settlements
from datasets.intervals import infer_funding_interval
from datasets.numeric import MAX_ABS_DECIMAL, decimals_from_floats
from datasets.schemas import FUNDING, OHLCV
from datasets.symbols import from_freqtrade_pair, market_of
from datasets.venues import DATA_VENUES

NAME = re.compile(
    r"^(?P<pair>[A-Z0-9]+(?:_[A-Z0-9]+){1,2})-(?P<timeframe>[1-9][0-9]*[mhdw])"
    r"(?:-(?P<candle>futures|mark|index|funding_rate))?\.feather$"
)
# A folder names its venue only when the registry knows it: a new venue is a DATA_VENUES entry first.
VENUES = tuple(DATA_VENUES)
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
        _require_numbers(raw, path)
        if raw.height == 0:
            raise EmptyInputError(
                f"{path}: expected candles, was a feather file with no rows; download it again with freqtrade "
                "(or pass --skip-unrecognised to skip empty files)"
            )
        utc = (
            pl.col("date").dt.replace_time_zone(None).dt.replace_time_zone("UTC").cast(pl.Datetime("ns", "UTC"))
            if raw.schema["date"].time_zone is None  # type: ignore[union-attr]
            else pl.col("date").dt.convert_time_zone("UTC").cast(pl.Datetime("ns", "UTC"))
        )
        candle = match["candle"]
        if candle == "funding_rate":
            frame = snap_settlements(
                with_row_numbers(raw).with_columns(utc), "date", venue=venue, path=path, unit="record"
            )
            return [Batch("funding", _funding(frame, venue=venue, symbol=symbol))]
        return [Batch("ohlcv", _ohlcv(raw, utc, venue, symbol, PRICE_TYPE[candle], match["timeframe"]))]


def _require_numbers(raw: pl.DataFrame, path: Path) -> None:
    schema = raw.schema
    for column in COLUMNS[1:]:
        if not schema[column].is_numeric():
            raise SourceFormatError(
                f"{path}: column '{column}' should be float64 (freqtrade writes numbers), was {schema[column]}; "
                "the file was not written by freqtrade: download it again"
            )
    if not any(_any_too_large(raw[c]) for c in COLUMNS[1:]):
        return
    frame = with_row_numbers(raw)
    for column in COLUMNS[1:]:
        bad = first_true(frame, _too_large(pl.col(column).cast(pl.Float64)))
        if bad is not None:
            raise error_at(
                path,
                frame,
                bad,
                column,
                "expected a number below 1e20 in magnitude (the store's decimal128(38, 18) holds 20 integer "
                "digits), was {value!r}; a value that large is corrupt: download the file again",
                "record",
            )


def _too_large(value: pl.Expr) -> pl.Expr:
    return value.is_finite() & (value.abs() >= MAX_ABS_DECIMAL)


def _any_too_large(values: pl.Series) -> bool:
    # ``_too_large`` on a whole column in numpy (nulls read as NaN): a few times cheaper than a polars query.
    magnitudes = np.abs(values.cast(pl.Float64).to_numpy())
    return bool(np.any((magnitudes >= MAX_ABS_DECIMAL) & np.isfinite(magnitudes)))


def _venue_from_path(path: Path) -> str:
    for part in reversed(path.resolve().parts[:-1]):
        for venue in VENUES:
            if part.lower() == venue or part.lower().startswith(f"{venue}_"):
                return venue
    raise SourceFormatError(
        f"{path}: cannot tell the venue from the path (no folder named after one of {', '.join(VENUES)}); pass --venue"
    )


def _ohlcv(raw: pl.DataFrame, ts: pl.Expr, venue: str, symbol: str, price_type: str, interval: str) -> pl.DataFrame:
    # One select from the file's columns, row numbers included: on files of a few thousand candles a query
    # per step (row index, time zone, columns, order) costs more than the work in it.
    columns: dict[str, pl.Expr | pl.Series] = {
        "venue": pl.lit(venue),
        "symbol": pl.lit(symbol),
        "market": pl.lit(market_of(symbol)),
        "price_type": pl.lit(price_type),
        "interval": pl.lit(interval),
        "ts": ts,
        **{c: decimals_from_floats(raw[c]) for c in ("open", "high", "low", "close", "volume")},
    }
    return raw.select(
        *(columns[name].alias(name) for name in OHLCV.columns), pl.int_range(pl.len(), dtype=pl.Int64).alias("_row")
    )


def _funding(frame: pl.DataFrame, *, venue: str, symbol: str) -> pl.DataFrame:
    nothing = pl.lit(None, dtype=FUNDING.polars_schema["rate"])
    return (
        frame.select(
            pl.lit(venue).alias("venue"),
            pl.lit(symbol).alias("symbol"),
            pl.col("date").alias("ts"),
            decimals_from_floats(frame["open"]).alias("rate"),
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
