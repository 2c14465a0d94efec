"""Bring your own table: a tidy long-format CSV or Parquet (one row per venue, symbol and time) of funding,
OHLCV or liquidations, read through a small declared mapping (TOML).

A mapping names the kind, which source column holds which store field, and how to read the values::

    kind = "funding"                  # funding | ohlcv | liquidations
    ignore = ["note"]                 # source columns deliberately not imported
    [where]                           # keep only rows whose column holds one of these values
    contract = ["perpetual"]
    [symbol_map]                      # source symbol = canonical symbol (before the [values] symbols style)
    BTCUSDCM = "BTC-USD-PERP"
    [columns]                         # store field = source column
    ts = "time"
    venue = "exchange"
    symbol = "pair"
    rate = "funding_rate"
    [time]
    unit = "ms"                       # s | ms | us | ns | auto (epoch, unit from magnitude) | text
    format = "%Y-%m-%d %H:%M:%S"      # unit = "text": a strftime format, with %z when the text has an offset
    zone = "UTC"                      # IANA zone of text times without an offset (never guessed)
    ambiguous = "raise"               # the repeated hour when clocks go back: raise | earliest | latest
    [values]
    rate = "percent"                  # fraction (default) | percent (0.01 means 0.01 %)
    interval = "8h"                   # funding: the clock (default inferred from the spacing); ohlcv: the bar
    market = "perp"                   # spot | perp
    price_type = "trade"              # ohlcv: trade | mark | index
    symbols = "native"                # native (venue ticker BTCUSDT) | canonical (BTC-USDT-PERP) | base (BTC)
    quote = "USDT"                    # symbols = "base": the quote currency
    venue = "binance"                 # the venue when no column holds it
    [venues]                          # source venue name = store venue
    Binance = "binance"
    [sides]                           # liquidations: source side = long | short (the liquidated position)
    SELL = "long"

Every source column must be mapped or ignored, and every mapped column present: a table that does
not say what a column is, is refused rather than guessed. Values go through the same parsing
steps as the native importers (``datasets.importers.common``: exact decimals, epoch units,
settlements snapped to the venue's funding clock) and the store's validation, so a tidy table of a
venue's funding stores exactly the rows its native importer stores. Errors name the file, the line
(CSV, 1-based) or row (Parquet, 0-based) and the field; nothing is written.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import polars as pl

from datasets.errors import EmptyInputError, SourceFormatError
from datasets.importers.base import Batch, ImportOptions, with_row_numbers
from datasets.importers.common import (
    Unit,
    error_at,
    first_true,
    funding_frame,
    parse_datetime,
    parse_decimals,
    parse_epoch,
    read_text_csv,
    require_values,
    translate_symbols,
)
from datasets.importers.liquidations import liquidation_rows
from datasets.schemas import FUNDING, INTERVAL_PATTERN, OHLCV, PL_DECIMAL, SYMBOL_PATTERN
from datasets.symbols import canonical
from datasets.validate import ROW
from datasets.venues import DATA_VENUES, VENUES, unknown_venue_message

TidyKind = Literal["funding", "ohlcv", "liquidations"]
NAME = "tidy-table"
VERSION = "1"
# Store fields a mapping may name per kind: (required, optional). venue is required unless [values] venue is set.
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "funding": (("ts", "symbol", "rate"), ("venue", "mark_price", "index_price", "premium", "interval")),
    "ohlcv": (("ts", "symbol", "open", "high", "low", "close"), ("venue", "volume")),
    "liquidations": (("ts", "symbol"), ("venue", "side", "price", "quantity", "notional_usd", "account", "order_id")),
}
DECIMAL_FIELDS = (
    "rate",
    "mark_price",
    "index_price",
    "premium",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "price",
    "quantity",
    "notional_usd",
)


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class TimeSpec(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the time column is written."""

    unit: Literal["s", "ms", "us", "ns", "auto", "text"] = "auto"
    format: str | None = None
    zone: str = "UTC"
    ambiguous: Literal["raise", "earliest", "latest"] = "raise"


class ValueSpec(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How values are written, and the constants a table leaves out."""

    rate: Literal["fraction", "percent"] = "fraction"
    interval: str | None = None
    market: Literal["spot", "perp"] = "perp"
    price_type: Literal["trade", "mark", "index"] = "trade"
    symbols: Literal["native", "canonical", "base"] = "native"
    quote: str | None = None
    venue: str | None = None


class TidyMapping(_Strict, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A declared mapping from a tidy table's columns to one store kind (see the module docstring)."""

    kind: TidyKind
    columns: dict[str, str]
    ignore: list[str] = msgspec.field(default_factory=list)
    where: dict[str, list[str]] = msgspec.field(default_factory=dict)
    symbol_map: dict[str, str] = msgspec.field(default_factory=dict)
    time: TimeSpec = msgspec.field(default_factory=TimeSpec)
    values: ValueSpec = msgspec.field(default_factory=ValueSpec)
    venues: dict[str, str] = msgspec.field(default_factory=dict)
    sides: dict[str, Literal["long", "short"]] = msgspec.field(default_factory=dict)


def load_mapping(path: Path) -> TidyMapping:
    """Return the mapping in a TOML file, checked for consistency.

    Raises
    ------
    SourceFormatError
        If the file is not TOML, has an unknown or mistyped key (named with its path), maps a field the
        kind does not have, leaves a required field unmapped, or declares an unknown zone or interval.
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
        mapping = msgspec.convert(document, type=TidyMapping)
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceFormatError(f"{path}: cannot read the mapping ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SourceFormatError(f"{path}: not a TOML mapping ({exc})") from exc
    except msgspec.ValidationError as exc:
        raise SourceFormatError(f"{path}: invalid mapping: {exc}; see datasets/importers/tidy.py for the keys") from exc
    _check_fields(mapping, path)
    _check_values(mapping, path)
    return mapping


def _check_fields(mapping: TidyMapping, path: Path) -> None:
    required, optional = FIELDS[mapping.kind]
    unknown = [f for f in mapping.columns if f not in (*required, *optional)]
    if unknown:
        raise SourceFormatError(
            f"{path}: [columns] {unknown[0]!r} is not a field of {mapping.kind}: expected some of "
            f"{', '.join((*required, *optional))}"
        )
    missing = [f for f in required if f not in mapping.columns]
    if "venue" not in mapping.columns and mapping.values.venue is None:
        missing.append("venue")
    if missing:
        raise SourceFormatError(
            f"{path}: [columns] maps no {missing[0]!r}: a {mapping.kind} table needs {', '.join(required)} and a "
            "venue (a column, or [values] venue)"
        )


def _check_values(mapping: TidyMapping, path: Path) -> None:
    try:
        ZoneInfo(mapping.time.zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SourceFormatError(
            f"{path}: [time] zone: expected an IANA zone like UTC or Europe/London, was {mapping.time.zone!r}"
        ) from None
    if mapping.time.unit == "text" and not mapping.time.format:
        raise SourceFormatError(f"{path}: [time] unit = 'text' needs a format, e.g. '%Y-%m-%d %H:%M:%S'")
    interval = mapping.values.interval
    if mapping.kind == "ohlcv" and interval is None:
        raise SourceFormatError(f"{path}: an ohlcv mapping needs [values] interval (the bar length, e.g. '1h')")
    if interval is not None and not INTERVAL_PATTERN.match(interval):
        raise SourceFormatError(f"{path}: [values] interval: expected a length like 1m, 1h, 8h, 1d, was {interval!r}")
    if mapping.values.symbols == "base" and not mapping.values.quote:
        raise SourceFormatError(f"{path}: [values] symbols = 'base' needs quote, e.g. 'USDT'")


class TidyImporter:
    """Reader of tidy long tables through a ``TidyMapping``; never sniffed: chosen with ``--mapping``."""

    name = NAME
    version = VERSION
    description = "tidy long-format CSV or Parquet through a declared TOML mapping (import FILE --mapping MAP.toml)"

    def __init__(self, mapping: TidyMapping) -> None:
        self.mapping = mapping

    def sniff(self, path: Path) -> bool:
        return False

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return the table's rows as one batch of the mapping's kind.

        Raises
        ------
        SourceFormatError
            If the file is neither CSV nor Parquet, a column is unmapped or missing, or a value is empty
            where required or cannot be parsed (naming the line or row and the field).
        """
        frame, unit = _read_table(path)
        mapping = self.mapping
        used = {*mapping.columns.values(), *mapping.ignore, *mapping.where, ROW}
        unmapped = [c for c in frame.columns if c not in used]
        if unmapped:
            raise SourceFormatError(
                f"{path}: column {unmapped[0]!r} is not mapped: name the store field it holds under [columns], "
                "or list it in ignore = [...] of the mapping"
            )
        absent = [
            (f, c)
            for f, c in [*mapping.columns.items(), *(("where", c) for c in mapping.where)]
            if c not in frame.columns
        ]
        if absent:
            field, column = absent[0]
            raise SourceFormatError(
                f"{path}: column {column!r} (mapped to {field}) is missing; the table has {', '.join(frame.columns)}"
            )
        for column, kept in mapping.where.items():
            frame = frame.filter(pl.col(column).str.strip_chars().is_in(kept))
        if frame.height == 0:
            raise EmptyInputError(f"{path}: expected rows, was none (after the mapping's where = {mapping.where})")
        frame = frame.select(*(pl.col(column).alias(field) for field, column in mapping.columns.items()), "_row")
        if "venue" not in frame.columns:
            frame = frame.with_columns(pl.lit(mapping.values.venue).alias("venue"))
        required, _ = FIELDS[mapping.kind]
        require_values(frame, [*required, "venue"], path=path, unit=unit)
        frame = _venues(frame, mapping, path=path, unit=unit)
        frame = _times(frame, mapping.time, path=path, unit=unit)
        frame = parse_decimals(frame, [c for c in DECIMAL_FIELDS if c in frame.columns], path=path, unit=unit)
        if mapping.values.rate == "percent" and "rate" in frame.columns:
            frame = frame.with_columns((pl.col("rate") / 100).cast(PL_DECIMAL))
        frame = _symbols(frame, mapping, path=path, unit=unit)
        if mapping.kind == "funding":
            return [Batch("funding", _funding(frame, mapping, path=path, unit=unit))]
        if mapping.kind == "ohlcv":
            return [Batch("ohlcv", _ohlcv(frame, mapping))]
        return [Batch("liquidations", _liquidations(frame, mapping, path=path, unit=unit))]


def _read_table(path: Path) -> tuple[pl.DataFrame, Unit]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return with_row_numbers(read_text_csv(path, what="tidy table"), offset=1), "line"
    if suffix == ".parquet":
        try:
            raw = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise SourceFormatError(f"{path}: not a readable Parquet table ({exc}); re-export it") from exc
        # Text for every column (floats through their shortest repr), datetimes as integer ns kept apart.
        return with_row_numbers(raw.select(_as_text(name, dtype) for name, dtype in raw.schema.items())), "record"
    raise SourceFormatError(f"{path}: expected a tidy table as .csv or .parquet, was {path.suffix or 'no suffix'!r}")


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    # Zoned datetimes as integer ns since the epoch (read back with [time] unit = "ns"); the rest as text.
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return pl.col(name).dt.convert_time_zone("UTC").dt.epoch("ns").cast(pl.String).alias(name)
    return pl.col(name).cast(pl.String).alias(name)


def _venues(frame: pl.DataFrame, mapping: TidyMapping, *, path: Path, unit: Unit) -> pl.DataFrame:
    named = pl.col("venue").str.strip_chars().replace(mapping.venues)
    frame = frame.with_columns(named.alias("venue"))
    bad = first_true(frame, ~pl.col("venue").is_in(list(DATA_VENUES)))
    if bad is not None:
        raise error_at(
            path,
            frame,
            bad,
            "venue",
            f"{unknown_venue_message(str(frame['venue'][bad]))}; or map it under [venues]",
            unit,
        )
    return frame


def _times(frame: pl.DataFrame, spec: TimeSpec, *, path: Path, unit: Unit) -> pl.DataFrame:
    if spec.unit == "auto":
        return parse_epoch(frame, "ts", path=path, unit=unit)
    if spec.unit != "text":
        factor = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[spec.unit]
        number = pl.col("ts").str.strip_chars().cast(pl.Int64, strict=False)
        bad = first_true(frame, number.is_null())
        if bad is not None:
            raise error_at(path, frame, bad, "ts", f"expected an integer epoch in {spec.unit}, was {{value!r}}", unit)
        return frame.with_columns((number * factor).cast(pl.Datetime("ns", "UTC")).alias("ts"))
    fmt = spec.format or ""
    if "%z" in fmt or "%#z" in fmt:
        return parse_datetime(frame, "ts", fmt, path=path, unit=unit)
    local = (
        pl.col("ts")
        .str.strip_chars()
        .str.to_datetime(fmt, time_unit="ns", strict=False)
        .dt.replace_time_zone(
            spec.zone, ambiguous="null" if spec.ambiguous == "raise" else spec.ambiguous, non_existent="null"
        )
        .dt.convert_time_zone("UTC")
    )
    checked = frame.with_columns(local.alias("_parsed"))
    bad = first_true(checked, pl.col("_parsed").is_null())
    if bad is not None:
        raise error_at(
            path,
            frame,
            bad,
            "ts",
            f"expected a {spec.zone} time like {fmt!r}, was {{value!r}} (or a local time the clock change skips, "
            "or makes ambiguous: declare [time] ambiguous = 'earliest' or 'latest', or give times with %z)",
            unit,
        )
    return checked.with_columns(pl.col("_parsed").alias("ts")).drop("_parsed")


def _symbols(frame: pl.DataFrame, mapping: TidyMapping, *, path: Path, unit: Unit) -> pl.DataFrame:
    listed = pl.col("symbol").str.strip_chars().is_in(list(mapping.symbol_map))
    fixed = frame.filter(listed).with_columns(pl.col("symbol").str.strip_chars().replace(mapping.symbol_map))
    rest = frame.filter(~listed)
    styled = _styled_symbols(rest, mapping, path=path, unit=unit) if rest.height else rest
    frame = pl.concat([fixed, styled]).sort(ROW)
    bad = first_true(frame, ~pl.col("symbol").str.contains(SYMBOL_PATTERN.pattern))
    if bad is not None:
        raise error_at(
            path, frame, bad, "symbol", "expected a canonical symbol like BTC-USDT-PERP, was {value!r}", unit
        )
    return frame


def _styled_symbols(frame: pl.DataFrame, mapping: TidyMapping, *, path: Path, unit: Unit) -> pl.DataFrame:
    values = mapping.values
    if values.symbols == "native":
        parts = [
            translate_symbols(part, "symbol", venue=str(venue), path=path, unit=unit, market=values.market)
            for (venue,), part in frame.group_by("venue", maintain_order=True)
        ]
        return pl.concat(parts).sort("_row")
    symbol = pl.col("symbol").str.strip_chars().str.to_uppercase()
    if values.symbols == "base":
        quote = values.quote or ""
        mapped = {raw: canonical(raw, quote, values.market) for raw in frame["symbol"].str.strip_chars().unique()}
        symbol = pl.col("symbol").str.strip_chars().replace_strict(mapped, return_dtype=pl.String)
    return frame.with_columns(symbol.alias("symbol"))


def _funding(frame: pl.DataFrame, mapping: TidyMapping, *, path: Path, unit: Unit) -> pl.DataFrame:
    declared = mapping.values.interval
    parts = []
    for (venue,), part in frame.group_by("venue", maintain_order=True):
        name = str(venue)
        default = declared or (VENUES[name].funding_interval if name in VENUES else "1h")
        rows = funding_frame(
            part.drop("venue", "interval", strict=False), venue=name, default_interval=default, path=path, unit=unit
        )
        if "interval" in frame.columns:
            given = part.select("_row", pl.col("interval").str.strip_chars().alias("_given"))
            rows = (
                rows.join(given, on="_row", how="left").with_columns(pl.col("_given").alias("interval")).drop("_given")
            )
        elif declared is not None:
            rows = rows.with_columns(pl.lit(declared).alias("interval"))
        parts.append(rows)
    return pl.concat(parts).select(*FUNDING.columns, "_row")


def _ohlcv(frame: pl.DataFrame, mapping: TidyMapping) -> pl.DataFrame:
    values = mapping.values
    schema = OHLCV.polars_schema
    return frame.with_columns(
        pl.lit(values.market).alias("market"),
        pl.lit(values.price_type).alias("price_type"),
        pl.lit(values.interval).alias("interval"),
        *(pl.lit(None, dtype=schema[c]).alias(c) for c in ("volume",) if c not in frame.columns),
    ).select(*OHLCV.columns, "_row")


def _liquidations(frame: pl.DataFrame, mapping: TidyMapping, *, path: Path, unit: Unit) -> pl.DataFrame:
    if "side" in frame.columns:
        side = pl.col("side").str.strip_chars().replace(dict(mapping.sides))
        frame = frame.with_columns(side.alias("side"))
        bad = first_true(frame, pl.col("side").is_not_null() & ~pl.col("side").is_in(["long", "short"]))
        if bad is not None:
            raise error_at(
                path,
                frame,
                bad,
                "side",
                "expected long or short (the liquidated position), was {value!r}: map it under [sides]",
                unit,
            )
    return liquidation_rows(frame, {"market": pl.lit(mapping.values.market), "source": pl.lit(NAME)})


def mapping_digest(path: Path) -> str:
    """Return the sha256 of a mapping file (recorded in the lineage beside the table's)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
