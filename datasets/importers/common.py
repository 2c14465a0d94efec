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
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import polars as pl

from datasets.errors import EmptyInputError, SourceFormatError
from datasets.intervals import FUNDING_INTERVALS_SECS, infer_funding_interval
from datasets.numeric import MAX_ABS_DECIMAL, decimal_from_text, too_precise_text, unparseable_text
from datasets.schemas import DECIMAL_SCALE, FUNDING, PL_DECIMAL, SYMBOL_PATTERN, interval_label
from datasets.symbols import canonical, from_venue
from datasets.validate import ROW
from datasets.venues import DATA_VENUES, unknown_venue_message

Unit = Literal["line", "record"]
TIMESTAMP = pl.Datetime("ns", "UTC")

# Epoch units told apart by magnitude: each band covers 2001-09 to 2286 in its unit, and the bands
# are three decades apart, so a value between two bands (or a column mixing bands) is refused, never guessed.
EPOCH_UNITS: tuple[tuple[str, int, int, int], ...] = (
    ("s", 10**9, 10**10, 1_000_000_000),
    ("ms", 10**12, 10**13, 1_000_000),
    ("us", 10**15, 10**16, 1_000),
    ("ns", 10**18, 2**63 - 1, 1),
)


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

    Parsing is strict: every line must have as many fields as the first (a line cut short, such as
    the last line of an interrupted download, is refused, never padded with empty fields).

    Raises
    ------
    SourceFormatError
        If the file is not UTF-8, has an unterminated quote, or a line with more or fewer fields
        than the first; ``EmptyInputError`` if it holds no data line.
    """
    _require_rectangular(path, what, None if has_header else new_columns)
    try:
        frame = pl.read_csv(
            path,
            infer_schema=False,
            has_header=has_header,
            new_columns=new_columns,
            raise_if_empty=True,
        )
    except pl.exceptions.NoDataError as exc:
        raise EmptyInputError(f"{path}: expected a {what} CSV with data lines, was an empty file") from exc
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise SourceFormatError(f"{path}: not a readable {what} CSV ({exc}); re-export or re-download it") from exc
    if frame.height == 0:
        raise EmptyInputError(
            f"{path}: expected a {what} CSV with data lines, was a header only; "
            "re-export it (or pass --skip-unrecognised to skip empty files)"
        )
    return frame


def _require_rectangular(path: Path, what: str, names: Sequence[str] | None) -> None:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = csv.reader(handle, strict=True)
            first = next((row for row in rows if row), [])
            if not first:
                raise EmptyInputError(f"{path}: expected a {what} CSV with data lines, was an empty file")
            fields = list(names) if names is not None else first
            for row in rows:
                if row and len(row) != len(first):
                    raise SourceFormatError(_ragged_message(path, what, rows.line_num, row, fields, len(first)))
    except UnicodeDecodeError as exc:
        raise SourceFormatError(
            f"{path}: expected UTF-8 text, was a byte {exc.object[exc.start : exc.start + 1]!r} at offset "
            f"{exc.start} that is not UTF-8; re-save the file as UTF-8"
        ) from exc
    except csv.Error as exc:
        raise SourceFormatError(
            f"{path}: line {rows.line_num}: not valid CSV ({exc}); an unterminated quote usually means "
            "the file was cut off: download it again"
        ) from exc


def _ragged_message(path: Path, what: str, line: int, row: list[str], fields: Sequence[str], expected: int) -> str:
    def name(index: int) -> str:
        return fields[index] if index < len(fields) else f"#{index + 1}"

    if len(row) < expected:
        return (
            f"{path}: line {line}, field '{name(len(row))}': is missing (expected {expected} fields like the "
            f"first line, was {len(row)}, so field '{name(len(row) - 1)}' may be cut off too); a {what} CSV has "
            "every field on every line: the file is probably truncated: download it again"
        )
    return (
        f"{path}: line {line}, field '{name(expected)}': expected {expected} fields like the first line, was "
        f"{len(row)}; a field holds an unquoted separator: fix that line"
    )


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
        At the first value that is not a number (or, with ``percent``, lacks its ``%``), or that does
        not fit the store's decimal128(38, 18): 20 integer digits and 18 decimal places.
    """
    for column in columns:
        number = pl.col(column).str.strip_chars().str.strip_suffix("%").cast(pl.Float64, strict=False)
        bad = first_true(frame, number.abs() >= MAX_ABS_DECIMAL)
        if bad is not None:
            raise error_at(
                path,
                frame,
                bad,
                column,
                "expected a number below 1e20 in magnitude (the store's decimal128(38, 18) holds 20 integer "
                "digits), was {value!r}; a value that large is a corrupt field: fix that row",
                unit,
            )
        bad = unparseable_text(frame, column)
        if bad is not None:
            raise error_at(path, frame, bad, column, "expected a decimal number, was {value!r}; fix that row", unit)
        bad = first_true(frame, too_precise_text(pl.col(column)))
        if bad is not None:
            raise error_at(
                path,
                frame,
                bad,
                column,
                f"expected at most {DECIMAL_SCALE} decimal places (the store's decimal128(38, 18)), "
                "was {value!r}: it cannot be stored exactly; fix that row",
                unit,
            )
        if percent:
            text = pl.col(column).str.strip_chars()
            bad = first_true(frame, (text != "") & ~text.str.ends_with("%"))
            if bad is not None:
                raise error_at(path, frame, bad, column, "expected a percentage like '0.010000%', was {value!r}", unit)
    return frame.with_columns(decimal_from_text(pl.col(c), percent=percent).alias(c) for c in columns)


def parse_epoch(frame: pl.DataFrame, column: str, *, path: Path, unit: Unit) -> pl.DataFrame:
    """Return ``frame`` with ``column`` (integer epoch text) as UTC ns.

    The unit (s, ms, us or ns) is detected from the magnitude of the whole column (``EPOCH_UNITS``):
    every value must fall in one unit's band (2001-09 to 2286 in that unit). A value between bands,
    or a column whose values fall in two bands, is ambiguous and refused rather than guessed.

    Raises
    ------
    SourceFormatError
        At the first value that is not an integer, in no unit's band, or in another band than the first row's.
    """
    number = pl.col(column).str.strip_chars().cast(pl.Int64, strict=False)
    bad = first_true(frame, number.is_null())
    if bad is not None:
        raise error_at(path, frame, bad, column, "expected an integer epoch timestamp, was {value!r}", unit)
    band = pl.lit(None, dtype=pl.String)
    for name, low, high, _ in reversed(EPOCH_UNITS):
        band = pl.when((number >= low) & (number < high)).then(pl.lit(name)).otherwise(band)
    banded = frame.with_columns(band.alias("_unit"))
    bad = first_true(banded, pl.col("_unit").is_null())
    if bad is not None:
        raise error_at(
            path,
            frame,
            bad,
            column,
            "expected an epoch timestamp in seconds (10 digits), milliseconds (13), microseconds (16) or "
            "nanoseconds (19) since 1970, was {value!r}, which is none of them: fix that field",
            unit,
        )
    first = banded["_unit"][0]
    bad = first_true(banded, pl.col("_unit") != first)
    if bad is not None:
        raise error_at(
            path,
            frame,
            bad,
            column,
            f"expected every timestamp in one unit like the first row ({first}), was {{value!r}} "
            f"({banded['_unit'][bad]}): a file mixing units is ambiguous; split it or fix that row",
            unit,
        )
    factor = next(f for name, _, _, f in EPOCH_UNITS if name == first)
    return frame.with_columns((number * factor).cast(TIMESTAMP).alias(column))


def require_period(frame: pl.DataFrame, column: str, period: str, *, path: Path, unit: Unit) -> None:
    """Raise at the first ``column`` time outside the month (``2024-01``) or day (``2024-01-15``) a dump file names.

    Raises
    ------
    SourceFormatError
        Naming the row, its time and the period.
    """
    start = datetime.strptime(period, "%Y-%m-%d" if len(period) == 10 else "%Y-%m").replace(tzinfo=UTC)
    if len(period) == 10:
        end = start + timedelta(days=1)
    else:
        end = (start + timedelta(days=32)).replace(day=1)
    bad = first_true(frame, (pl.col(column) < start) | (pl.col(column) >= end))
    if bad is not None:
        what = "day" if len(period) == 10 else "month"
        raise error_at(
            path,
            frame,
            bad,
            column,
            f"expected a time inside {period} (the {what} the file name states), was {{value}}; "
            "the file was renamed or mixes periods: fix the name or split the file",
            unit,
        )


def snap_settlements(frame: pl.DataFrame, column: str, *, venue: str, path: Path, unit: Unit) -> pl.DataFrame:
    """Return ``frame`` with settlement times in ``column`` moved onto the venue's funding clock.

    A stamp within the venue's stated jitter of a settlement (``datasets.venues.FundingClock``:
    on the hour, one minute either side, Hyperliquid up to 25 minutes late) is that settlement and
    is snapped to it, so a near-miss de-duplicates with the same settlement recorded on time. A
    stamp further off is not a settlement of that venue and is refused.

    Raises
    ------
    SourceFormatError
        If the venue is not in the registry, or at the first off-clock stamp.
    """
    if venue not in DATA_VENUES:
        raise SourceFormatError(f"{path}: {unknown_venue_message(venue)}")
    clock = DATA_VENUES[venue].funding
    grid = clock.grid_secs * 1_000_000_000
    offset = pl.col(column).dt.epoch("ns") % grid
    late = offset <= clock.late_secs * 1_000_000_000
    early = (grid - offset) <= clock.early_secs * 1_000_000_000
    checked = frame.with_columns(
        pl.when(late)
        .then(pl.col(column).dt.epoch("ns") - offset)
        .when(early)
        .then(pl.col(column).dt.epoch("ns") - offset + grid)
        .otherwise(None)
        .cast(TIMESTAMP)
        .alias("_snapped")
    )
    bad = first_true(checked, pl.col("_snapped").is_null())
    if bad is not None:
        raise error_at(
            path,
            frame,
            bad,
            column,
            f"expected a settlement on {venue}'s funding clock (every {clock.grid_secs // 60} minutes from "
            f"00:00 UTC, at most {clock.early_secs} s early or {clock.late_secs} s late), was {{value}}, "
            "which is no settlement: a shifted or hand-edited time; fix that row",
            unit,
        )
    return checked.with_columns(pl.col("_snapped").alias(column)).drop("_snapped")


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


def funding_frame(
    frame: pl.DataFrame, *, venue: str, default_interval: str, path: Path | None = None, unit: Unit = "record"
) -> pl.DataFrame:
    """Return canonical funding rows from parsed ``symbol, ts, rate`` (and optional price columns) plus ``_row``.

    Timestamps are snapped to the venue's funding clock (``snap_settlements``: settlements carry
    ms jitter, a near-miss joins its settlement), exact duplicate records (overlapping pages) are
    dropped, and each symbol's interval is inferred from its settlement spacing.
    A symbol with two settlements takes their spacing when it is a standard funding clock; one with
    a single settlement, or no confirmed spacing, cannot be inferred and takes ``default_interval``,
    the venue's documented clock.
    """
    nothing = pl.lit(None, dtype=PL_DECIMAL)
    source = path if path is not None else Path(f"<{venue} funding>")
    rows = snap_settlements(frame, "ts", venue=venue, path=source, unit=unit).with_columns(
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
