"""Liquidation records: Binance ``forceOrder`` (recorded CSV or raw WebSocket JSON) and Hyperliquid's dump.

Binance ``forceOrder`` comes in two shapes, read by one importer so the same event recorded both
ways is stored once:

- a recorder's CSV ``timestamp,symbol,side,avg_price,filled_qty,usd_value`` with naive ISO
  timestamps in UTC;
- the raw stream event ``{"e": "forceOrder", "E": ..., "o": {"s", "S", "ap", "z", "T", ...}}``, one
  JSON document (an event or a list of events) or JSON lines (what a recorder appends), optionally
  wrapped in a combined-stream envelope ``{"stream": ..., "data": {...}}``. ``ts`` is the order's
  trade time ``T``, ``price`` the average fill price ``ap`` and ``quantity`` the filled quantity ``z``.

``side`` is the side of the position that was liquidated: the liquidation order SELLs a long, so
``SELL -> long`` and ``BUY -> short``. Symbols are USDT-M or coin-margined perps (non-ASCII tickers
are kept). ``notional_usd`` is ``price x quantity`` computed exactly when the quote is USDT or USDC
(the CSV's ``usd_value`` is the recorder's float product of the same two numbers, with binary noise
such as ``296.92564200000004``, so it is not used); coin-margined quantities are contracts, so their
notional is left null.

Hyperliquid's official dump ``liquidations.csv`` (``time,user,liquidated_ntl_pos,
liquidated_account_value,leverage_type``) records account-level liquidations: no coin, no side, no
price. They are stored under the symbol ``ALL-USDC-PERP`` (``ACCOUNT_LEVEL_SYMBOL``): every USDC perp
the account held, with ``notional_usd`` = ``liquidated_ntl_pos`` and ``account`` = ``user``;
``liquidated_account_value`` and ``leverage_type`` have no column in the schema and are dropped.

Neither source carries an order id or a transaction signature, so ``event_id`` is a sha256 over the
record's canonical values (venue, symbol, ts, side, price, quantity, notional, account), never the
row number: the same event read from another file gets the same id. ``source`` is the importer name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from datasets.errors import EmptyInputError, SourceFormatError
from datasets.importers.base import Batch, ImportOptions, head_bytes, require_columns, with_row_numbers
from datasets.importers.common import (
    Unit,
    error_at,
    event_ids,
    first_line,
    first_true,
    parse_datetime,
    parse_decimals,
    parse_epoch,
    place,
    read_text_csv,
    require_values,
    text_or_none,
    translate_symbols,
)
from datasets.schemas import LIQUIDATIONS, PL_DECIMAL

ACCOUNT_LEVEL_SYMBOL = "ALL-USDC-PERP"
NOTIONAL_QUOTES = ("USDT", "USDC")
ID_FIELDS = ("venue", "symbol", "ts", "side", "price", "quantity", "notional_usd", "account")
SIDES = {"SELL": "long", "BUY": "short"}

BINANCE_CSV_HEADER = "timestamp,symbol,side,avg_price,filled_qty,usd_value"
BINANCE_CSV_COLUMNS = BINANCE_CSV_HEADER.split(",")[:5]
HYPERLIQUID_HEADER = "time,user,liquidated_ntl_pos,liquidated_account_value,leverage_type"
HYPERLIQUID_COLUMNS = ["time", "user", "liquidated_ntl_pos"]
# Binance event keys inside "o": symbol, side, average price, filled quantity, trade time.
ORDER_KEYS = {"symbol": "s", "side": "S", "price": "ap", "quantity": "z", "time": "T"}


class BinanceForceOrderImporter:
    """Reader of Binance ``forceOrder`` liquidations: a recorder's CSV, or stream events as JSON / JSON lines."""

    name = "binance-force-order"
    version = "1"
    description = (
        "Binance forceOrder liquidations: CSV timestamp,symbol,side,avg_price,filled_qty,usd_value "
        "or stream events {e: forceOrder, o: {...}} as JSON / JSON lines"
    )

    def sniff(self, path: Path) -> bool:
        head = head_bytes(path, 4096)
        if head.lstrip()[:1] in (b"{", b"["):
            return b'"forceOrder"' in head
        return first_line(head) == BINANCE_CSV_HEADER

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return the file's liquidations as one ``liquidations`` batch.

        Raises
        ------
        SourceFormatError
            If the file is neither the CSV nor stream JSON, a column or key is missing, or a row has an
            empty or unparseable time, side, price or quantity.
        """
        is_json = head_bytes(path, 4096).lstrip()[:1] in (b"{", b"[")
        frame, unit = _events_frame(path) if is_json else _csv_frame(path)
        require_values(frame, list(ORDER_KEYS), path=path, unit=unit)
        if is_json:
            frame = parse_epoch(frame, "time", path=path, unit=unit)
        else:
            frame = parse_datetime(frame, "time", "%Y-%m-%dT%H:%M:%S%.f", path=path, unit=unit, naive_utc=True)
        frame = parse_decimals(frame, ["price", "quantity"], path=path, unit=unit)
        frame = translate_symbols(frame, "symbol", venue="binance", path=path, unit=unit)
        side = pl.col("side").str.strip_chars().str.to_uppercase()
        bad = first_true(frame, ~side.is_in(list(SIDES)))
        if bad is not None:
            raise error_at(path, frame, bad, "side", "expected BUY or SELL, was {value!r}", unit)
        quote = pl.col("symbol").str.split("-").list.get(-2, null_on_oob=True)
        parsed = frame.select(
            "symbol",
            pl.col("time").alias("ts"),
            side.replace_strict(SIDES, return_dtype=pl.String).alias("side"),
            "price",
            "quantity",
            pl.when(quote.is_in(list(NOTIONAL_QUOTES)))
            .then(pl.col("price") * pl.col("quantity"))
            .cast(PL_DECIMAL)
            .alias("notional_usd"),
            "_row",
        )
        return [Batch("liquidations", _liquidations(parsed, venue=options.venue or "binance", source=self.name))]


class HyperliquidLiquidationsImporter:
    """Reader of Hyperliquid's official ``liquidations.csv`` (account-level, stored as ``ALL-USDC-PERP``)."""

    name = "hyperliquid-liquidations-csv"
    version = "1"
    description = "Hyperliquid official dump liquidations.csv: " + HYPERLIQUID_HEADER

    def sniff(self, path: Path) -> bool:
        return path.suffix.lower() == ".csv" and first_line(head_bytes(path, 256)) == HYPERLIQUID_HEADER

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return the file's account liquidations as one ``liquidations`` batch.

        Raises
        ------
        SourceFormatError
            If a column is missing, or a row has an empty or unparseable time, user or notional.
        """
        raw = read_text_csv(path, what="Hyperliquid liquidations")
        require_columns(raw, HYPERLIQUID_COLUMNS, path=path, what="Hyperliquid liquidations")
        frame = with_row_numbers(raw.select(HYPERLIQUID_COLUMNS), offset=1)
        require_values(frame, HYPERLIQUID_COLUMNS, path=path, unit="line")
        frame = parse_datetime(frame, "time", "%Y-%m-%dT%H:%M:%S%.f%#z", path=path, unit="line")
        frame = parse_decimals(frame, ["liquidated_ntl_pos"], path=path, unit="line")
        parsed = frame.select(
            pl.lit(ACCOUNT_LEVEL_SYMBOL).alias("symbol"),
            pl.col("time").alias("ts"),
            pl.col("liquidated_ntl_pos").alias("notional_usd"),
            pl.col("user").str.strip_chars().alias("account"),
            "_row",
        )
        return [Batch("liquidations", _liquidations(parsed, venue=options.venue or "hyperliquid", source=self.name))]


def _liquidations(frame: pl.DataFrame, *, venue: str, source: str) -> pl.DataFrame:
    return liquidation_rows(frame, {"venue": pl.lit(venue), "market": pl.lit("perp"), "source": pl.lit(source)})


def liquidation_rows(frame: pl.DataFrame, given: dict[str, pl.Expr]) -> pl.DataFrame:
    """Return ``frame`` (with ``_row``) as ``liquidations`` rows: ``given`` columns set, the absent ones null,
    each row's deterministic ``event_id``, sorted by time."""
    schema = LIQUIDATIONS.polars_schema
    rows = frame.with_columns(
        *(value.alias(name) for name, value in given.items()),
        *(
            pl.lit(None, dtype=schema[c]).alias(c)
            for c in LIQUIDATIONS.columns
            if c not in frame.columns and c not in given and c != "event_id"
        ),
    )
    rows = rows.with_columns(event_ids(rows, ID_FIELDS))
    return rows.sort("ts", "_row").select(*LIQUIDATIONS.columns, "_row")


def _csv_frame(path: Path) -> tuple[pl.DataFrame, Unit]:
    raw = read_text_csv(path, what="Binance liquidation")
    require_columns(raw, BINANCE_CSV_COLUMNS, path=path, what="Binance liquidation")
    renamed = raw.select(
        pl.col("symbol"),
        pl.col("side"),
        pl.col("avg_price").alias("price"),
        pl.col("filled_qty").alias("quantity"),
        pl.col("timestamp").alias("time"),
    )
    return with_row_numbers(renamed, offset=1), "line"


def _events_frame(path: Path) -> tuple[pl.DataFrame, Unit]:
    events, unit = _load_events(path)
    records: list[dict[str, str | None]] = []
    for row, event in events:
        order = _order_of(event, path, row, unit)
        missing = [key for key in ORDER_KEYS.values() if key not in order]
        if missing:
            raise SourceFormatError(
                f"{path}: {place(row, unit)}: key 'o.{missing[0]}' is missing; a forceOrder event's order has "
                f"{', '.join(ORDER_KEYS.values())}, found {', '.join(order)}"
            )
        records.append({name: text_or_none(order[key]) for name, key in ORDER_KEYS.items()} | {"_row": str(row)})
    if not records:
        raise EmptyInputError(f"{path}: expected forceOrder events, was a file without any; record it again")
    frame = pl.DataFrame(records, schema=dict.fromkeys([*ORDER_KEYS, "_row"], pl.String))
    return frame.with_columns(pl.col("_row").cast(pl.Int64)), unit


def _order_of(event: Any, path: Path, row: int, unit: Unit) -> dict[str, Any]:
    if isinstance(event, dict) and isinstance(event.get("data"), dict):
        event = event["data"]  # combined-stream envelope
    if not isinstance(event, dict) or event.get("e") != "forceOrder" or not isinstance(event.get("o"), dict):
        shown = json.dumps(event)[:120]
        raise SourceFormatError(
            f"{path}: {place(row, unit)}: expected a forceOrder event like "
            f'{{"e": "forceOrder", "o": {{...}}}}, was {shown}'
        )
    order: dict[str, Any] = event["o"]
    return order


def _load_events(path: Path) -> tuple[list[tuple[int, Any]], Unit]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SourceFormatError(f"{path}: forceOrder JSON must be UTF-8 ({exc})") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise SourceFormatError(
                f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}); "
                "if the file was cut off, record or download it again"
            ) from exc
    else:
        events = document if isinstance(document, list) else [document]
        return list(enumerate(events)), "record"
    lines: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            lines.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise SourceFormatError(
                f"{path}: line {number + 1}: not a JSON event ({exc.msg}); a JSON-lines recording has one "
                "event per line: a cut-off last line means the recording stopped mid-write, delete that line"
            ) from exc
    return lines, "line"
