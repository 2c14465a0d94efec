"""Hyperliquid ``fundingHistory`` saved as CSV: ``timestamp,symbol,funding_rate,premium``.

Timestamps are ISO 8601 with an offset and ms jitter (``2023-05-12T00:00:00.048000+00:00``) and
are snapped to the minute; symbols are bare coins (``BTC``), perps settled in USDC (``BTC-USDC-PERP``).
Hyperliquid settled every 8 hours until 2023-06-08 and hourly since, so the interval is inferred per
symbol from the settlement spacing; the premium is kept.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from datasets.importers.base import Batch, ImportOptions, head_bytes, require_columns, with_row_numbers
from datasets.importers.common import (
    first_line,
    funding_frame,
    parse_datetime,
    parse_decimals,
    read_text_csv,
    require_values,
    translate_symbols,
)

HEADER = "timestamp,symbol,funding_rate,premium"
COLUMNS = HEADER.split(",")
ISO_WITH_OFFSET = "%Y-%m-%dT%H:%M:%S%.f%#z"
# Hyperliquid's documented funding clock; used only for a symbol whose spacing cannot be inferred.
DEFAULT_INTERVAL = "1h"


class HyperliquidFundingCsvImporter:
    """Reader of Hyperliquid ``fundingHistory`` CSV exports."""

    name = "hyperliquid-funding-csv"
    version = "1"
    description = "Hyperliquid fundingHistory CSV: timestamp,symbol,funding_rate,premium (ISO times, bare coins)"

    def sniff(self, path: Path) -> bool:
        return path.suffix.lower() == ".csv" and first_line(head_bytes(path, 256)) == HEADER

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return the file's settlements as one ``funding`` batch.

        Raises
        ------
        SourceFormatError
            If a column is missing, or a row has an empty or unparseable timestamp, symbol or rate.
        """
        venue = options.venue or "hyperliquid"
        raw = read_text_csv(path, what="Hyperliquid funding")
        require_columns(raw, COLUMNS, path=path, what="Hyperliquid funding")
        frame = with_row_numbers(raw.select(COLUMNS), offset=1)
        require_values(frame, ["timestamp", "symbol", "funding_rate"], path=path, unit="line")
        frame = parse_datetime(frame, "timestamp", ISO_WITH_OFFSET, path=path, unit="line")
        frame = parse_decimals(frame, ["funding_rate", "premium"], path=path, unit="line")
        frame = translate_symbols(frame, "symbol", venue="hyperliquid", path=path, unit="line")
        parsed = frame.select(
            "symbol",
            pl.col("timestamp").alias("ts"),
            pl.col("funding_rate").alias("rate"),
            "premium",
            "_row",
        )
        return [
            Batch(
                "funding", funding_frame(parsed, venue=venue, default_interval=DEFAULT_INTERVAL, path=path, unit="line")
            )
        ]
