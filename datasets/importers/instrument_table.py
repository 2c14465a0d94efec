"""The carrylab instrument table: instrument specs typed or exported as CSV, into ``instruments``.

A CSV file whose ``#`` lines are comments and whose header names columns of the store's ``instruments``
kind (``datasets.schemas.INSTRUMENTS``), one row per venue and canonical symbol::

    # where the values come from
    venue,symbol,tick_size,lot_size,min_quantity,initial_margin,maintenance_margin,contract_multiplier,effective_from
    binance,BTC-USDT-PERP,0.10,0.001,0.001,0.0067,0.004,1,2017-01-01T00:00:00Z

``venue, symbol, tick_size, lot_size, effective_from`` are required; the other stored columns are
optional; ``market, base, quote, instrument_id, native_symbol`` are derived from the symbol by the
venue's rules (``datasets.venues``) and ``price_precision``/``size_precision`` from the decimals of tick
and lot as written. ``configs/instruments_mid2025.csv`` (the hand-typed fixture of tests and the demo)
is one.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import polars as pl

from datasets.errors import DatasetError, SourceFormatError
from datasets.importers.base import Batch, ImportOptions, head_bytes
from datasets.instruments import decimals
from datasets.schemas import INSTRUMENTS, SYMBOL_PATTERN
from datasets.validate import ROW
from datasets.venues import instrument_id_for, raw_symbol_for, split_symbol

REQUIRED = ("venue", "symbol", "tick_size", "lot_size", "effective_from")
_DERIVED = ("market", "base", "quote", "instrument_id", "native_symbol", "price_precision", "size_precision")
_OPTIONAL = tuple(c for c in INSTRUMENTS.columns if c not in (*REQUIRED, *_DERIVED, "source"))
_DECIMALS = {c for c, t in INSTRUMENTS.polars_schema.items() if isinstance(t, pl.Decimal)}
_TIMES = ("effective_from", "listing_time", "delisting_time")


class InstrumentTableImporter:
    """CSV instrument tables with a header of ``instruments`` columns (``#`` comment lines allowed)."""

    name = "instrument-table"
    version = "1"
    description = "instrument table CSV (venue,symbol,tick_size,lot_size,...,effective_from; # comments)"

    def sniff(self, path: Path) -> bool:
        """Return True for a CSV whose first non-comment line holds the required columns."""
        if path.suffix.lower() != ".csv":
            return False
        header = _header(head_bytes(path, 65_536).decode("utf-8", errors="replace"))
        return header is not None and set(REQUIRED) <= set(header)

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return one ``instruments`` batch, a row per table row.

        Raises
        ------
        SourceFormatError
            If a column is not an ``instruments`` column, or a row's symbol, venue, decimal or time is
            malformed (the message names the line and the field).
        """
        lines = path.read_text(encoding="utf-8").splitlines()
        comments = next(i for i, line in enumerate(lines) if not line.startswith("#"))
        table = pl.read_csv(path, comment_prefix="#", infer_schema=False)
        unknown = [c for c in table.columns if c not in (*REQUIRED, *_OPTIONAL)]
        if unknown:
            raise SourceFormatError(
                f"{path}: line {comments + 1}: expected columns of the instruments kind ({', '.join(REQUIRED)} "
                f"and optionally {', '.join(_OPTIONAL)}), was also {', '.join(unknown)}; rename or drop them"
            )
        records = [
            _record(row, where=f"{path}: line {comments + 2 + index}", source=f"instrument table {path.name}")
            for index, row in enumerate(table.iter_rows(named=True))
        ]
        frame = pl.DataFrame(records, schema=INSTRUMENTS.polars_schema, orient="row")
        return [Batch("instruments", frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW)))]


def _header(text: str) -> list[str] | None:
    for line in text.splitlines():
        if not line.startswith("#"):
            return [c.strip() for c in line.split(",")]
    return None


def _record(row: dict[str, str | None], *, where: str, source: str) -> dict[str, Any]:
    symbol = row["symbol"] or ""
    venue = row["venue"] or ""
    try:
        if not SYMBOL_PATTERN.match(symbol):
            raise SourceFormatError(f"expected a canonical symbol such as BTC-USDT-PERP, was {symbol!r}")
        base, quote, market = split_symbol(symbol)
        record: dict[str, Any] = {
            "venue": venue,
            "symbol": symbol,
            "market": market,
            "native_symbol": raw_symbol_for(venue, symbol),
            "instrument_id": str(instrument_id_for(venue, symbol)),
            "base": base,
            "quote": quote,
            "settle": quote if market == "perp" else None,
            "contract_multiplier": Decimal(1),
            "source": source,
        }
    except DatasetError as exc:
        raise SourceFormatError(f"{where}: field venue/symbol: {exc}") from None
    for name, text in row.items():
        if name in ("venue", "symbol") or text is None or text == "":
            continue
        record[name] = _value(name, text, where)
    for name in REQUIRED:
        if record.get(name) is None:
            raise SourceFormatError(f"{where}: field {name}: expected a value, was empty; fill it in")
    record["price_precision"] = decimals(record["tick_size"])
    record["size_precision"] = decimals(record["lot_size"])
    return record


def _value(name: str, text: str, where: str) -> Any:
    if name in _DECIMALS:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise SourceFormatError(f"{where}: field {name}: expected a decimal number, was {text!r}") from None
        if not value.is_finite():
            raise SourceFormatError(f"{where}: field {name}: expected a finite decimal, was {text!r}")
        return value
    if name in _TIMES:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise SourceFormatError(
                f"{where}: field {name}: expected an ISO 8601 time with a zone (2017-01-01T00:00:00Z), was {text!r}"
            )
        return moment
    return text
