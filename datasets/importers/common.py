"""Parsing steps shared by the text and JSON importers.

Every step checks its column before converting it and, on failure, raises ``SourceFormatError``
naming the file, the place (``line N`` of a text file, counted from 1 as an editor shows it, or
``record N`` of a JSON payload, counted from 0) and the field. Frames here carry ``_row``: the
zero-based line of a text file (the header is line 0) or the zero-based record of a payload.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import polars as pl

from datasets.errors import SourceFormatError
from datasets.intervals import FUNDING_INTERVALS_SECS, infer_funding_interval, snap_to_minute
from datasets.numeric import decimal_from_text, unparseable_text
from datasets.schemas import FUNDING, PL_DECIMAL, SYMBOL_PATTERN, interval_label
from datasets.symbols import canonical, from_venue
from datasets.validate import ROW

Unit = Literal["line", "record"]
TIMESTAMP = pl.Datetime("ns", "UTC")

# Epoch values below this are not milliseconds since 1973: a seconds column or a shifted field.
_MIN_EPOCH_MS = 100_000_000_000
_MIN_EPOCH_US = 100_000_000_000_000
_MIN_EPOCH_NS = 100_000_000_000_000_000


def place(row: int, unit: Unit) -> str:
    """Return how a user finds ``_row`` in the source: ``line 7`` (1-based) or ``record 6`` (0-based)."""
    return f"line {row + 1}" if unit == "line" else f"record {row}"


def error_at(path: Path, frame: pl.DataFrame, index: int, field: str, message: str, unit: Unit) -> SourceFormatError:
    """Return the error for row ``index`` of ``frame`` (``message`` may use ``{value!r}``)."""
    value = frame[field][index] if field in frame.columns else None
    where = place(int(frame[ROW][index]), unit)
    return SourceFormatError(f"{path}: {where}, field '{field}': {message.format(value=value)}")


def first_true(frame: pl.DataFrame, mask: pl.Expr) -> int | None:
    """Return the index of the first row where ``mask`` holds (nulls count as False), else None."""
    hit = frame.select(mask.fill_null(False).arg_true().first()).item()
    return None if hit is None else int(hit)


def read_text_csv(
    path: Path, *, what: str, has_header: bool = True, new_columns: Sequence[str] | None = None
) -> pl.DataFrame:
    """Read a CSV with every field as text (so numbers convert to decimals exactly).

    Raises
    ------
    SourceFormatError
        If the file is empty, not UTF-8, or has rows with more fields than the header.
    """
    try:
        return pl.read_csv(
            path,
            infer_schema=False,
            has_header=has_header,
            new_columns=new_columns,
            raise_if_empty=True,
        )
    except (OSError, pl.exceptions.PolarsError) as exc:
        ragged = _first_ragged_line(path)
        if ragged is not None:
            line, found, expected = ragged
            raise SourceFormatError(
                f"{path}: line {line} has {found} fields, the first line has {expected}; "
                f"a {what} CSV has the same fields on every line: fix or remove that line"
            ) from exc
        raise SourceFormatError(f"{path}: not a readable {what} CSV ({exc}); re-export or re-download it") from exc


def _first_ragged_line(path: Path) -> tuple[int, int, int] | None:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = csv.reader(handle)
            expected = len(next(rows, []))
            for row in rows:
                if len(row) > expected:
                    return rows.line_num, len(row), expected
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None


def first_line(head: bytes) -> str:
    """Return the first line of a file head, without a UTF-8 BOM or line ending."""
    return head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace")


def require_values(frame: pl.DataFrame, columns: Sequence[str], *, path: Path, unit: Unit) -> None:
    """Raise at the first row where one of ``columns`` is missing or empty.

    Raises
    ------
    SourceFormatError
        Naming the row and field; a short last row usually means the file was cut off.
    """
    for column in columns:
        hit = first_true(frame, pl.col(column).is_null() | (pl.col(column).str.strip_chars() == ""))
        if hit is not None:
            raise error_at(
                path,
                frame,
                hit,
                column,
                "is empty; it is required (a short last row means the file is truncated: download it again)",
                unit,
            )


def parse_decimals(
    frame: pl.DataFrame, columns: Sequence[str], *, path: Path, unit: Unit, percent: bool = False
) -> pl.DataFrame:
    """Return ``frame`` with ``columns`` (decimal text) converted exactly to the store's decimal.

    Empty text becomes null. With ``percent=True`` every value must end in ``%`` and is divided by 100.

    Raises
    ------
    SourceFormatError
        At the first value that is not a number (or, with ``percent``, lacks its ``%``).
    """
    for column in columns:
        bad = unparseable_text(frame, column)
        if bad is not None:
            raise error_at(path, frame, bad, column, "expected a decimal number, was {value!r}; fix that row", unit)
        if percent:
            text = pl.col(column).str.strip_chars()
            bad = first_true(frame, (text != "") & ~text.str.ends_with("%"))
            if bad is not None:
                raise error_at(path, frame, bad, column, "expected a percentage like '0.010000%', was {value!r}", unit)
    return frame.with_columns(decimal_from_text(pl.col(c), percent=percent).alias(c) for c in columns)


def parse_epoch(frame: pl.DataFrame, column: str, *, path: Path, unit: Unit) -> pl.DataFrame:
    """Return ``frame`` with ``column`` (epoch text in ms, us or ns, told apart by magnitude) as UTC ns.

    Raises
    ------
    SourceFormatError
        At the first value that is not an integer, or too small to be epoch milliseconds.
    """
    number = pl.col(column).str.strip_chars().cast(pl.Int64, strict=False)
    bad = first_true(frame, number.is_null() | (number < _MIN_EPOCH_MS))
    if bad is not None:
        raise error_at(
            path, frame, bad, column, "expected an epoch timestamp in milliseconds (or us/ns), was {value!r}", unit
        )
    ns = (
        pl.when(number >= _MIN_EPOCH_NS)
        .then(number)
        .when(number >= _MIN_EPOCH_US)
        .then(number * 1_000)
        .otherwise(number * 1_000_000)
    )
    return frame.with_columns(ns.cast(TIMESTAMP).alias(column))


def parse_datetime(
    frame: pl.DataFrame, column: str, fmt: str, *, path: Path, unit: Unit, naive_utc: bool = False
) -> pl.DataFrame:
    """Return ``frame`` with ``column`` parsed by ``fmt`` as UTC ns.

    ``fmt`` carries an offset (``%#z``) and the value is converted to UTC, or, with
    ``naive_utc=True``, has none and is declared UTC by the source's documentation.

    Raises
    ------
    SourceFormatError
        At the first value that does not match ``fmt``.
    """
    text = pl.col(column).str.strip_chars()
    if naive_utc:
        parsed = text.str.to_datetime(fmt, time_unit="ns", strict=False).dt.replace_time_zone("UTC")
    else:
        parsed = text.str.to_datetime(fmt, time_unit="ns", time_zone="UTC", strict=False)
    checked = frame.with_columns(parsed.alias("_parsed"))
    bad = first_true(checked, pl.col("_parsed").is_null())
    if bad is not None:
        raise error_at(path, frame, bad, column, f"expected a timestamp like {fmt!r}, was {{value!r}}", unit)
    return checked.with_columns(pl.col("_parsed").alias(column)).drop("_parsed")


def translate_symbols(
    frame: pl.DataFrame, column: str, *, venue: str, path: Path, unit: Unit, market: Literal["spot", "perp"] = "perp"
) -> pl.DataFrame:
    """Return ``frame`` with the venue's instrument names in ``column`` replaced by canonical symbols.

    Raises
    ------
    SourceFormatError
        At the first row whose name does not follow the venue's convention.
    """
    mapping: dict[str, str] = {}
    for raw in frame[column].unique(maintain_order=True).to_list():
        try:
            symbol = venue_symbol(venue, raw.strip(), market)
        except SourceFormatError as exc:
            hit = first_true(frame, pl.col(column) == raw)
            raise error_at(path, frame, hit or 0, column, f"{exc}", unit) from exc
        if not SYMBOL_PATTERN.match(symbol):
            hit = first_true(frame, pl.col(column) == raw)
            raise error_at(
                path,
                frame,
                hit or 0,
                column,
                f"{{value!r}} is not a {venue} instrument name (it gave {symbol!r})",
                unit,
            )
        mapping[raw] = symbol
    return frame.with_columns(pl.col(column).replace_strict(mapping, return_dtype=pl.String))


def venue_symbol(venue: str, raw: str, market: Literal["spot", "perp"] = "perp") -> str:
    """Return the canonical symbol of a venue's instrument name, including the forms ``from_venue`` leaves out.

    Binance coin-margined perps (``BTCUSD_PERP``) and Bybit USDC perps (``BTCPERP``) are perps of the
    pair before the suffix.

    Raises
    ------
    SourceFormatError
        If the name does not follow the venue's convention.
    """
    upper = raw.upper()
    if venue == "binance" and upper.endswith("_PERP"):
        return from_venue(venue, upper.removesuffix("_PERP"), "perp")
    if venue == "bybit" and upper.endswith("PERP") and len(upper) > len("PERP"):
        return canonical(upper.removesuffix("PERP"), "USDC", "perp")
    return from_venue(venue, raw, market)


def funding_frame(frame: pl.DataFrame, *, venue: str, default_interval: str) -> pl.DataFrame:
    """Return canonical funding rows from parsed ``symbol, ts, rate`` (and optional price columns) plus ``_row``.

    Timestamps are snapped to the minute (settlements carry ms jitter), exact duplicate records
    (overlapping pages) are dropped, and each symbol's interval is inferred from its settlement spacing.
    A symbol with two settlements takes their spacing when it is a standard funding clock; one with
    a single settlement, or no confirmed spacing, cannot be inferred and takes ``default_interval``,
    the venue's documented clock.
    """
    nothing = pl.lit(None, dtype=PL_DECIMAL)
    rows = frame.with_columns(
        snap_to_minute(pl.col("ts")).alias("ts"),
        *(nothing.alias(c) for c in ("mark_price", "index_price", "premium") if c not in frame.columns),
    )
    fields = ["symbol", "ts", "rate", "mark_price", "index_price", "premium"]
    rows = rows.unique(subset=fields, keep="first", maintain_order=True).sort(["symbol", "ts", ROW])
    labels = {secs: interval_label(secs) for secs in FUNDING_INTERVALS_SECS}
    pair_gap = (
        pl.when(pl.len().over("symbol") == 2)
        .then(pl.col("ts").diff().dt.total_seconds().over("symbol"))
        .replace_strict(labels, default=None, return_dtype=pl.String)
        .max()
        .over("symbol")
    )
    interval = pl.coalesce(infer_funding_interval(pl.col("ts")).over("symbol"), pair_gap, pl.lit(default_interval))
    return rows.with_columns(pl.lit(venue).alias("venue"), interval.alias("interval")).select(*FUNDING.columns, ROW)


def load_json(path: Path, *, what: str) -> Any:
    """Return the parsed JSON document in ``path``.

    Raises
    ------
    SourceFormatError
        If the file is not valid UTF-8 JSON (a truncated download fails here, with the line and column).
    """
    try:
        return json.loads(path.read_bytes())
    except UnicodeDecodeError as exc:
        raise SourceFormatError(f"{path}: a {what} file must be UTF-8 JSON ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise SourceFormatError(
            f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}); "
            f"a {what} file is one JSON document: if it was cut off, download it again"
        ) from exc


def text_or_none(value: Any) -> str | None:
    """Return a JSON scalar as text (numbers through their shortest repr, so decimals stay exact)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def event_ids(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """Return a sha256 hex id per row over the canonical values of ``columns``.

    Values are joined as text: timestamps as integer ns, decimals normalised (``184.220`` and
    ``184.22`` hash alike), nulls as the empty string. The row number is not part of the id, so
    the same event recorded in two files gets the same id and the store keeps it once.
    """
    parts: list[list[str]] = []
    for column in columns:
        series = frame[column]
        if isinstance(series.dtype, pl.Datetime):
            parts.append(["" if v is None else str(v) for v in series.dt.epoch("ns").to_list()])
        elif isinstance(series.dtype, pl.Decimal):
            parts.append(["" if v is None else _decimal_text(v) for v in series.to_list()])
        else:
            parts.append(["" if v is None else str(v) for v in series.to_list()])
    ids = [hashlib.sha256("|".join(values).encode()).hexdigest() for values in zip(*parts, strict=True)]
    return pl.Series("event_id", ids, dtype=pl.String)


def _decimal_text(value: Decimal) -> str:
    return format(value.normalize(), "f")
