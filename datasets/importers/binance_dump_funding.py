"""Binance public-dump funding CSVs (data.binance.vision ``fundingRate`` zips, extracted).

File names are ``<SYMBOL>-fundingRate-<YYYY-MM>.csv`` with the header
``calc_time,funding_interval_hours,last_funding_rate``: the settlement time in epoch milliseconds,
the symbol's funding interval in hours as Binance published it at that settlement, and the rate that
settled. The interval is taken as published (no inference from spacing); times are snapped to the
minute like every other funding source. Symbols are USD-M perps (``BTCUSDT`` -> ``BTC-USDT-PERP``).
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from datasets.errors import SourceFormatError
from datasets.importers.base import Batch, ImportOptions, head_bytes, require_columns, with_row_numbers
from datasets.importers.common import (
    error_at,
    first_line,
    first_true,
    parse_decimals,
    parse_epoch,
    read_text_csv,
    require_period,
    require_values,
    snap_settlements,
    venue_symbol,
)
from datasets.schemas import FUNDING, PL_DECIMAL

NAME = re.compile(r"^(?P<ticker>[A-Z0-9]+(?:_PERP)?)-fundingRate-(?P<period>\d{4}-\d{2})\.csv$")
HEADER = "calc_time,funding_interval_hours,last_funding_rate"
COLUMNS = HEADER.split(",")


class BinanceDumpFundingImporter:
    """Reader of Binance public-dump funding CSVs (``<SYMBOL>-fundingRate-<YYYY-MM>.csv``)."""

    name = "binance-dump-funding"
    version = "1"
    description = "Binance public-dump funding: <SYMBOL>-fundingRate-<YYYY-MM>.csv, " + HEADER

    def sniff(self, path: Path) -> bool:
        return NAME.match(path.name) is not None and first_line(head_bytes(path, 256)) == HEADER

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return the file's settlements as one ``funding`` batch.

        Raises
        ------
        SourceFormatError
            If the name does not follow the dump's pattern, a column is missing, or a row has an empty
            or unparseable time, interval or rate.
        """
        match = NAME.match(path.name)
        if match is None:
            raise SourceFormatError(
                f"{path}: name should follow the Binance dump pattern <SYMBOL>-fundingRate-<YYYY-MM>.csv"
            )
        symbol = venue_symbol("binance", match["ticker"], "perp")
        raw = read_text_csv(path, what="Binance funding dump")
        require_columns(raw, COLUMNS, path=path, what="Binance funding dump")
        frame = with_row_numbers(raw.select(COLUMNS), offset=1)
        require_values(frame, COLUMNS, path=path, unit="line")
        frame = parse_epoch(frame, "calc_time", path=path, unit="line")
        venue = options.venue or "binance"
        # A settlement a few ms before midnight belongs to the next month's file: snap first.
        frame = snap_settlements(frame, "calc_time", venue=venue, path=path, unit="line")
        require_period(frame, "calc_time", match["period"], path=path, unit="line")
        frame = parse_decimals(frame, ["last_funding_rate"], path=path, unit="line")
        hours = pl.col("funding_interval_hours").str.strip_chars().cast(pl.Int64, strict=False)
        bad = first_true(frame, hours.is_null() | (hours <= 0))
        if bad is not None:
            raise error_at(
                path, frame, bad, "funding_interval_hours", "expected a whole number of hours, was {value!r}", "line"
            )
        nothing = pl.lit(None, dtype=PL_DECIMAL)
        rows = frame.select(
            pl.lit(venue).alias("venue"),
            pl.lit(symbol).alias("symbol"),
            pl.col("calc_time").alias("ts"),
            pl.col("last_funding_rate").alias("rate"),
            (hours.cast(pl.String) + "h").alias("interval"),
            nothing.alias("mark_price"),
            nothing.alias("index_price"),
            nothing.alias("premium"),
            "_row",
        )
        rows = rows.unique(subset=FUNDING.columns, keep="first", maintain_order=True).sort("ts", "_row")
        return [Batch("funding", rows.select(*FUNDING.columns, "_row"))]
