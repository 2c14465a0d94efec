"""Binance USD-M leverage brackets (maintenance-margin tiers) into ``margin_tiers``.

Two layouts of the same records (``/fapi/v1/leverageBracket``: ``bracket, initialLeverage,
notionalCap, notionalFloor, maintMarginRatio, cum``) are read:

* ccxt ``fetch_leverage_tiers`` output keyed by unified symbol (``{"BTC/USDT:USDT": [{"tier": 1.0, ...,
  "info": {bracket...}}]}``), as freqtrade ships it (``../shared/data/binance_margin/binance_leverage_tiers.json``);
* the venue's own answer (``[{"symbol": "BTCUSDT", "brackets": [...]}]``).

Values come from the raw brackets (``info``), numbers through their shortest text. The file says
nothing about when the brackets were in force, so the import needs ``--as-of`` (``ImportOptions.as_of``),
which becomes ``effective_from``. Dated quarterlies (``BTC/USDT:USDT-260925``) and inverse contracts are
left out: the store's symbols are spot pairs and linear perpetuals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from datasets.errors import SourceFormatError
from datasets.importers.base import Batch, ImportOptions, head_bytes
from datasets.numeric import exact_decimal, reciprocal
from datasets.schemas import MARGIN_TIERS, SYMBOL_PATTERN
from datasets.symbols import canonical, split_concatenated
from datasets.validate import ROW

log = logging.getLogger(__name__)


class BinanceLeverageTiersImporter:
    """Binance USD-M leverage brackets (ccxt ``fetch_leverage_tiers`` JSON or the venue's answer)."""

    name = "binance-leverage-tiers"
    version = "1"
    description = "Binance USD-M leverage brackets JSON (ccxt fetch_leverage_tiers / leverageBracket); needs --as-of"

    def sniff(self, path: Path) -> bool:
        """Return True for a JSON file whose head holds Binance bracket fields."""
        if path.suffix.lower() != ".json":
            return False
        head = head_bytes(path)
        return b'"maintMarginRatio"' in head and b'"notionalCap"' in head and b'"initialLeverage"' in head

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return one ``margin_tiers`` batch, every tier of every linear perpetual in the file.

        Raises
        ------
        SourceFormatError
            If ``options.as_of`` is missing, the file is not JSON in either layout, or a bracket
            lacks a field or holds a number that is not decimal.
        """
        if options.as_of is None:
            raise SourceFormatError(
                f"{path}: Binance leverage brackets carry no date, so the import needs the time they were in "
                "force: pass --as-of (e.g. --as-of 2026-09-01 for freqtrade 2026.9's file)"
            )
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SourceFormatError(f"{path}: expected JSON leverage brackets, was unreadable ({exc})") from None
        rows: list[dict[str, Any]] = []
        left_out = 0
        for symbol, brackets in _symbols(document, path):
            if symbol is None:
                left_out += 1
                continue
            where = f"{path}: {symbol}"
            rows.extend(t | {"venue": "binance", "symbol": symbol} for t in binance_bracket_tiers(brackets, where))
        if left_out:
            log.info("%s: left out %d dated or inverse contracts (not linear perpetuals)", path, left_out)
        source = f"{path.name} (Binance /fapi/v1/leverageBracket via ccxt fetch_leverage_tiers)"
        records = [
            {name: row.get(name) for name in MARGIN_TIERS.columns} | {"source": source, "effective_from": options.as_of}
            for row in rows
        ]
        frame = pl.DataFrame(records, schema=MARGIN_TIERS.polars_schema, orient="row")
        return [Batch("margin_tiers", frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW)))]


def _symbols(document: Any, path: Path) -> Iterable[tuple[str | None, list[Any]]]:
    if isinstance(document, dict):
        for unified, tiers in document.items():
            if not isinstance(tiers, list):
                raise SourceFormatError(f"{path}: {unified}: expected a list of tiers, was {type(tiers).__name__}")
            yield _from_unified(str(unified)), [t.get("info") if isinstance(t, dict) else t for t in tiers]
        return
    if isinstance(document, list):
        for entry in document:
            if not isinstance(entry, dict) or not isinstance(entry.get("brackets"), list):
                raise SourceFormatError(f"{path}: expected {{symbol, brackets}} records, was {entry!r:.120}")
            yield _from_ticker(str(entry.get("symbol"))), entry["brackets"]
        return
    raise SourceFormatError(f"{path}: expected a JSON object or list of brackets, was {type(document).__name__}")


def _from_unified(unified: str) -> str | None:
    # ccxt: BASE/QUOTE:SETTLE for a linear perpetual, BASE/QUOTE:SETTLE-YYMMDD for a dated future.
    pair, _, settle = unified.partition(":")
    base, _, quote = pair.partition("/")
    if not base or settle != quote:
        return None
    symbol = canonical(base, quote, "perp")
    return symbol if SYMBOL_PATTERN.match(symbol) else None


def _from_ticker(ticker: str) -> str | None:
    if "_" in ticker:
        return None
    try:
        base, quote = split_concatenated(ticker)
    except SourceFormatError:
        return None
    return canonical(base, quote, "perp")


def binance_bracket_tiers(raws: Iterable[Any], where: str) -> list[dict[str, Any]]:
    """Return Binance leverage brackets (``/fapi/v1/leverageBracket`` records) as ``margin_tiers`` values.

    ``initial_margin`` is ``1 / initialLeverage`` at 18 decimals (Binance states the leverage only).

    Raises
    ------
    SourceFormatError
        If a bracket is not a record, lacks a field or holds a number that is not decimal.
    """
    tiers = []
    for index, raw in enumerate(raws):
        if not isinstance(raw, dict):
            raise SourceFormatError(f"{where}: bracket {index}: expected the raw bracket record, was {raw!r:.120}")
        values = {key: _number(raw, key, where, index) for key in ("bracket", "initialLeverage", "maintMarginRatio")}
        tier = values["bracket"]
        if tier is None or tier != tier.to_integral_value() or tier < 1:
            raise SourceFormatError(
                f"{where}: bracket {index}: expected a bracket number >= 1, was {raw.get('bracket')!r}"
            )
        leverage, maintenance = values["initialLeverage"], values["maintMarginRatio"]
        if leverage is None or leverage <= 0 or maintenance is None:
            raise SourceFormatError(
                f"{where}: bracket {index}: expected initialLeverage > 0 and maintMarginRatio, was {raw!r:.200}"
            )
        tiers.append(
            {
                "tier": int(tier),
                "bound_unit": "notional",
                "notional_floor": _number(raw, "notionalFloor", where, index) or Decimal(0),
                "notional_cap": _number(raw, "notionalCap", where, index),
                "max_leverage": leverage,
                "initial_margin": reciprocal(leverage),
                "maintenance_margin": maintenance,
                "maintenance_amount": _number(raw, "cum", where, index),
            }
        )
    return tiers


def _number(raw: dict[str, Any], key: str, where: str, index: int) -> Decimal | None:
    try:
        return exact_decimal(raw.get(key))
    except ValueError as exc:
        raise SourceFormatError(f"{where}: bracket {index}, field {key!r}: {exc}") from None
