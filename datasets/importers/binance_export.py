"""Binance website funding-rate exports (``Funding Rate History_<contract>_<date>.csv``).

A UTF-8 BOM, quoted fields ``"Time","Contracts","Funding Interval","Funding Rate"``, rates as
percentages (``"0.010000%"``) and newest row first. ``Time`` is in the local time of the computer
that made the export, which the file does not record: the importer needs the zone (``--tz``) and
never guesses it.

Local times are converted to UTC in that zone. A time that does not exist there (skipped when the
clocks go forward) is refused. A time that occurs twice (when the clocks go back: in London
``01:00`` on the last Sunday of October is both 00:00 and 01:00 UTC, and Binance settles at
00:00 UTC) is resolved by the funding clock: of its two UTC readings, the one lying exactly one
``Funding Interval`` from an unambiguous neighbouring settlement is taken. When neither or both
fit, the row is refused.

``Converted settlements must fall on Binance's funding clock (multiples of the interval from 00:00
UTC); a file read with the wrong ``--tz`` fails that check instead of storing shifted times.

``Contracts`` ``BTCUSDT Perpetual`` is ``BTC-USDT-PERP``; ``BTCUSD CM Perpetual`` (coin-margined)
is ``BTC-USD-PERP``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import polars as pl

from datasets.errors import SourceFormatError
from datasets.importers.base import Batch, ImportOptions, head_bytes, require_columns, with_row_numbers
from datasets.importers.common import (
    error_at,
    first_line,
    first_true,
    funding_frame,
    parse_decimals,
    read_text_csv,
    require_values,
    venue_symbol,
)
from datasets.schemas import interval_secs

COLUMNS = ["Time", "Contracts", "Funding Interval", "Funding Rate"]
HEADER = ",".join(f'"{c}"' for c in COLUMNS)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CONTRACT = re.compile(r"^(?P<ticker>[A-Z0-9]+)(?: CM)? Perpetual$")


class BinanceFundingExportImporter:
    """Reader of Binance website funding-rate CSV exports (local-time stamps: needs ``--tz``)."""

    name = "binance-funding-export"
    version = "1"
    description = 'Binance website funding export: "Time","Contracts","Funding Interval","Funding Rate" (needs --tz)'

    def sniff(self, path: Path) -> bool:
        return path.suffix.lower() == ".csv" and first_line(head_bytes(path, 256)).startswith(HEADER)

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return the export's settlements as one ``funding`` batch, in UTC.

        Raises
        ------
        SourceFormatError
            If ``options.tz`` is not given, a column is missing, or a row has an empty or unparseable
            time, contract, interval or rate, or a local time that does not exist or cannot be
            resolved in ``options.tz``.
        """
        if options.tz is None:
            raise SourceFormatError(
                f"{path}: a Binance website export stamps rows in the local time of the computer that "
                "made it, and the file does not say which zone that was: pass it with --tz "
                "(e.g. --tz Europe/London); the importer never guesses"
            )
        raw = read_text_csv(path, what="Binance funding export")
        require_columns(raw, COLUMNS, path=path, what="Binance funding export")
        frame = with_row_numbers(raw.select(COLUMNS), offset=1)
        require_values(frame, COLUMNS, path=path, unit="line")
        frame = parse_decimals(frame, ["Funding Rate"], path=path, unit="line", percent=True)
        frame = _parse_contracts(frame, path)
        frame = _parse_intervals(frame, path)
        frame = _to_utc(frame, path, options.tz.key)
        parsed = frame.select(
            pl.col("Contracts").alias("symbol"),
            pl.col("Time").alias("ts"),
            pl.col("Funding Rate").alias("rate"),
            "_row",
        )
        venue = options.venue or "binance"
        funding = funding_frame(parsed, venue=venue, default_interval="8h", path=path, unit="line")
        # The export states each settlement's interval: it wins over the spacing inferred above.
        stated = frame.select("_row", pl.col("Funding Interval").alias("_stated"))
        funding = (
            funding.join(stated, on="_row", how="left")
            .with_columns(pl.col("_stated").alias("interval"))
            .drop("_stated")
        )
        return [Batch("funding", funding)]


def _parse_contracts(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    mapping: dict[str, str] = {}
    for raw in frame["Contracts"].unique(maintain_order=True).to_list():
        match = CONTRACT.match(raw.strip())
        if match is None:
            hit = first_true(frame, pl.col("Contracts") == raw)
            raise error_at(
                path,
                frame,
                hit or 0,
                "Contracts",
                "expected a perpetual like 'BTCUSDT Perpetual' or 'BTCUSD CM Perpetual', was {value!r}",
                "line",
            )
        mapping[raw] = venue_symbol("binance", match["ticker"], "perp")
    return frame.with_columns(pl.col("Contracts").replace_strict(mapping, return_dtype=pl.String))


def _parse_intervals(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    seconds: dict[str, int] = {}
    for raw in frame["Funding Interval"].unique(maintain_order=True).to_list():
        try:
            seconds[raw] = interval_secs(raw.strip().lower())
        except ValueError:
            hit = first_true(frame, pl.col("Funding Interval") == raw)
            raise error_at(
                path, frame, hit or 0, "Funding Interval", "expected an interval like '8h', was {value!r}", "line"
            ) from None
    return frame.with_columns(
        pl.col("Funding Interval").str.strip_chars().str.to_lowercase(),
        pl.col("Funding Interval").replace_strict(seconds, return_dtype=pl.Int64).alias("_secs"),
    )


def _to_utc(frame: pl.DataFrame, path: Path, zone: str) -> pl.DataFrame:
    local = pl.col("Time").str.strip_chars().str.to_datetime(TIME_FORMAT, time_unit="ns", strict=False)
    bad = first_true(frame, local.is_null())
    if bad is not None:
        raise error_at(path, frame, bad, "Time", f"expected a local time like {TIME_FORMAT!r}, was {{value!r}}", "line")

    def reading(ambiguous: Literal["earliest", "latest"]) -> pl.Expr:
        return local.dt.replace_time_zone(zone, ambiguous=ambiguous, non_existent="null").dt.convert_time_zone("UTC")

    frame = frame.with_columns(reading("earliest").alias("_early"), reading("latest").alias("_late"))
    missing = first_true(frame, pl.col("_early").is_null())
    if missing is not None:
        raise error_at(
            path,
            frame,
            missing,
            "Time",
            f"local time {{value!r}} does not exist in {zone} (the clocks skipped it); check --tz",
            "line",
        )
    ambiguous = pl.col("_early") != pl.col("_late")
    # Neighbours in file order; an ambiguous neighbour gives no evidence.
    previous = pl.when(~ambiguous).then(pl.col("_early")).otherwise(None).shift(1)
    following = pl.when(~ambiguous).then(pl.col("_early")).otherwise(None).shift(-1)

    def fits(candidate: str) -> pl.Expr:
        step = pl.col("_secs")
        return ((pl.col(candidate) - previous).dt.total_seconds().abs() == step) | (
            (pl.col(candidate) - following).dt.total_seconds().abs() == step
        )

    early, late = fits("_early").fill_null(False), fits("_late").fill_null(False)
    resolved = (
        pl.when(~ambiguous)
        .then(pl.col("_early"))
        .when(early & ~late)
        .then(pl.col("_early"))
        .when(late & ~early)
        .then(pl.col("_late"))
        .otherwise(None)
    )
    frame = frame.with_columns(resolved.cast(pl.Datetime("ns", "UTC")).alias("_utc"))
    unresolved = first_true(frame, pl.col("_utc").is_null())
    if unresolved is not None:
        raise error_at(
            path,
            frame,
            unresolved,
            "Time",
            f"local time {{value!r}} occurs twice in {zone} (the clocks went back) and no unambiguous "
            "neighbouring settlement one 'Funding Interval' away tells which of the two instants is meant: "
            "check --tz, or drop the row and take that settlement from a UTC source such as the REST payload",
            "line",
        )
    _require_funding_clock(frame, path, zone)
    return frame.with_columns(pl.col("_utc").alias("Time")).drop("_early", "_late", "_utc", "_secs")


def _require_funding_clock(frame: pl.DataFrame, path: Path, zone: str) -> None:
    # Binance settles on a clock anchored at 00:00 UTC (8h: 00/08/16). Settlements off that clock
    # after conversion mean the export was read in the wrong zone.
    utc = pl.col("_utc")
    since_midnight = utc.dt.hour().cast(pl.Int64) * 3_600 + utc.dt.minute().cast(pl.Int64) * 60
    off = first_true(frame, since_midnight % pl.col("_secs") != 0)
    if off is not None:
        raise error_at(
            path,
            frame,
            off,
            "Time",
            f"local time {{value!r}} read in {zone} is {frame['_utc'][off]:%H:%M} UTC, which is not on "
            "Binance's funding clock (whole multiples of the funding interval from 00:00 UTC): "
            "--tz is probably wrong; "
            "pass the zone of the computer that saved the export (e.g. --tz Europe/London)",
            "line",
        )
