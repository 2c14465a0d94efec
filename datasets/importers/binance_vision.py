"""Binance public-dump kline CSVs (data.binance.vision), with or without their header line.

File names are ``<SYMBOL>-<interval>-<YYYY-MM[-DD]>.csv``; the 12 columns are ``open_time, open,
high, low, close, volume, close_time, quote_volume, count, taker_buy_volume,
taker_buy_quote_volume, ignore``. ``open_time`` is epoch milliseconds, or microseconds in newer
dumps: the unit is told by the magnitude of the whole column, and a file mixing units is refused.
Every row must lie inside the month or day the file name states. Every field is read as text so
prices convert to decimals exactly.

The dump's folder says what the file holds: ``.../spot/...`` is spot (anything else is a USDT-M or
coin-margined perp, ``BTCUSD_PERP``), and ``markPriceKlines`` / ``indexPriceKlines`` hold mark or
index prices, whose volume column is always 0 and is stored as null. ``premiumIndexKlines`` hold a
premium (it can be negative), not prices, and are refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from datasets.errors import SourceFormatError
from datasets.importers.base import Batch, ImportOptions, head_bytes, require_columns, with_row_numbers
from datasets.importers.common import (
    first_line,
    parse_decimals,
    parse_epoch,
    read_text_csv,
    require_period,
    require_values,
    venue_symbol,
)
from datasets.schemas import OHLCV, PL_DECIMAL, interval_secs
from datasets.symbols import Market, market_of

NAME = re.compile(
    r"^(?P<ticker>[A-Z0-9]+(?:_PERP)?)-(?P<interval>[1-9][0-9]*(?:s|m|h|d|w|mo))-(?P<period>\d{4}-\d{2}(?:-\d{2})?)\.csv$"
)
COLUMNS = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
]
USED = COLUMNS[:6]
PRICES = ["open", "high", "low", "close"]
HEADERLESS_ROW = re.compile(r"^\d{12,19}(,[^,]*){11}$")
SPOT_FOLDER = re.compile(r"(^|[_.-])spot($|[_.-])")


class BinanceVisionImporter:
    """Reader of Binance public-dump kline CSVs (``<SYMBOL>-<interval>-<YYYY-MM[-DD]>.csv``)."""

    name = "binance-vision-klines"
    version = "1"
    description = "Binance public-dump klines: <SYMBOL>-<interval>-<YYYY-MM[-DD]>.csv, 12 columns, ms/us epochs"

    def sniff(self, path: Path) -> bool:
        if NAME.match(path.name) is None:
            return False
        line = first_line(head_bytes(path, 512))
        return line.startswith("open_time,") or HEADERLESS_ROW.match(line) is not None

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return the file's bars as one ``ohlcv`` batch.

        Raises
        ------
        SourceFormatError
            If the name does not follow the dump's pattern, the interval is not a whole number of
            minutes, a column is missing, or a row has an empty, non-numeric or non-epoch field.
        """
        match = NAME.match(path.name)
        if match is None:
            raise SourceFormatError(
                f"{path}: name should follow the Binance dump pattern <SYMBOL>-<interval>-<YYYY-MM[-DD]>.csv"
            )
        interval = _interval(path, match["interval"])
        price_type = _price_type(path)
        market = _market(path, match["ticker"])
        symbol = venue_symbol("binance", match["ticker"], market)

        has_header = first_line(head_bytes(path, 512)).startswith("open_time")
        raw = read_text_csv(
            path, what="Binance kline", has_header=has_header, new_columns=None if has_header else COLUMNS
        )
        if has_header:
            require_columns(raw, USED, path=path, what="Binance kline")
        elif raw.width != len(COLUMNS):
            raise SourceFormatError(
                f"{path}: a header-less Binance kline file has {len(COLUMNS)} columns "
                f"({', '.join(COLUMNS)}), found {raw.width}"
            )
        frame = with_row_numbers(raw.select(USED), offset=1 if has_header else 0)
        require_values(frame, USED, path=path, unit="line")
        frame = parse_epoch(frame, "open_time", path=path, unit="line")
        require_period(frame, "open_time", match["period"], path=path, unit="line")
        frame = parse_decimals(frame, [*PRICES, "volume"], path=path, unit="line")
        volume = pl.col("volume") if price_type == "trade" else pl.lit(None, dtype=PL_DECIMAL)
        bars = frame.select(
            pl.lit(options.venue or "binance").alias("venue"),
            pl.lit(symbol).alias("symbol"),
            pl.lit(market_of(symbol)).alias("market"),
            pl.lit(price_type).alias("price_type"),
            pl.lit(interval).alias("interval"),
            pl.col("open_time").alias("ts"),
            *PRICES,
            volume.alias("volume"),
            "_row",
        ).select(*OHLCV.columns, "_row")
        return [Batch("ohlcv", bars)]


def _interval(path: Path, label: str) -> str:
    try:
        interval_secs(label)
    except ValueError:
        raise SourceFormatError(
            f"{path}: interval {label!r} cannot be stored: bars must be whole minutes, hours, days or weeks "
            "(1m ... 1w); second and monthly dumps are not supported"
        ) from None
    return label


def _price_type(path: Path) -> str:
    where = str(path).lower()
    if "premiumindexklines" in where:
        raise SourceFormatError(
            f"{path}: premiumIndexKlines hold the premium index (it can be negative), not prices; "
            "they do not fit the ohlcv kind: import the trade, mark or index klines instead"
        )
    if "markpriceklines" in where:
        return "mark"
    if "indexpriceklines" in where:
        return "index"
    return "trade"


def _market(path: Path, ticker: str) -> Market:
    if ticker.endswith("_PERP"):
        return "perp"
    # The dump keeps files at data/<spot|futures>/<period>/klines/<SYMBOL>/<interval>/: look only that far up.
    folders = [part.lower() for part in path.resolve().parts[-6:-1]]
    return "spot" if any(SPOT_FOLDER.search(part) for part in folders) else "perp"
