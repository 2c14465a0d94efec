"""Drift v2 funding: ``FundingRateRecord`` events as Drift's data API serves them (research-only venue).

Format: ``GET https://data.api.drift.trade/fundingRates?marketName=SOL-PERP`` answers
``{fundingRates: [record, ...]}``, one record per ``FundingRateRecord`` event the program emitted
(Drift protocol-v2 ``FundingRateRecord``: ``ts, recordId, marketIndex, fundingRate, fundingRateLong,
fundingRateShort, cumulativeFundingRateLong/Short, oraclePriceTwap, markPriceTwap, periodRevenue,
...``, plus ``slot``/``txSig``), integers as text in the program's precisions. The same fields decode
from a real mainnet event in ``../shared/data/solana/solana_decoder_fixtures/drift_sdk_tests``.

The rate: ``fundingRate`` is quote paid per base unit for the hour in ``FUNDING_RATE_PRECISION``
(1e9) and ``oraclePriceTwap`` the oracle TWAP in ``PRICE_PRECISION`` (1e6), so the hour's rate as a
fraction of notional is ``(fundingRate / 1e9) / (oraclePriceTwap / 1e6)`` (positive: longs pay), as
the Drift SDK computes it; it rarely terminates, so it is rounded half-even to the store's 18 decimal
places. ``markPriceTwap`` (1e6) is kept as ``mark_price``, ``oraclePriceTwap`` as ``index_price``.
``ts`` is epoch seconds when a keeper cranked the update, minutes after the hour (snapped to it).

A record says its ``marketIndex``, not the market name, so the file name ends in the market:
``drift_fundingRates_SOL.json`` holds ``SOL-USDC-PERP`` (Drift perps settle in USDC).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

import polars as pl

from datasets.errors import SourceFormatError
from datasets.importers.base import Batch, ImportOptions, head_bytes
from datasets.importers.common import load_json
from datasets.importers.dex_funding import (
    Record,
    base_from_name,
    dex_funding_rows,
    dex_symbol,
    pages_of,
    record_text,
    require_keys,
)
from datasets.schemas import DECIMAL_SCALE

VENUE = "drift"
WHAT = "Drift fundingRates"
KEYS = ("ts", "fundingRate", "oraclePriceTwap")
FUNDING_RATE_PRECISION = Decimal(10**9)
PRICE_PRECISION = Decimal(10**6)
_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)


def drift_rate(funding_rate: Decimal, oracle_price_twap: Decimal) -> Decimal:
    """Return the hour's funding rate as a fraction of notional from a record's integer fields."""
    with localcontext() as context:
        context.prec = 60
        rate = (funding_rate / FUNDING_RATE_PRECISION) / (oracle_price_twap / PRICE_PRECISION)
        return rate.quantize(_QUANTUM)


def drift_funding_rows(pages: list[list[Any]], *, symbol: str, path: Path) -> pl.DataFrame:
    """Return canonical funding rows of ``symbol`` from pages of Drift ``fundingRates`` records.

    Raises
    ------
    SourceFormatError
        At the first record missing a key, with a non-integer precision field or an oracle TWAP <= 0.
    """
    records: list[Record] = []
    for items in pages:
        for item in items:
            records.append(_record(item, symbol=symbol, path=path, index=len(records)))
    return dex_funding_rows(records, venue=VENUE, path=path, what=WHAT)


def _integer(record: dict[str, Any], key: str, *, path: Path, index: int) -> Decimal:
    text = record_text(record, key) or ""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value != value.to_integral_value():
        raise SourceFormatError(
            f"{path}: record {index}, field '{key}': expected an integer in Drift's fixed-point precision, was {text!r}"
        )
    return value


def _record(item: Any, *, symbol: str, path: Path, index: int) -> Record:
    record = require_keys(item, KEYS, path=path, index=index, what=WHAT)
    funding_rate = _integer(record, "fundingRate", path=path, index=index)
    oracle_twap = _integer(record, "oraclePriceTwap", path=path, index=index)
    if oracle_twap <= 0:
        raise SourceFormatError(
            f"{path}: record {index}, field 'oraclePriceTwap': expected a positive price (1e6 precision), "
            f"was {oracle_twap}"
        )
    mark = None
    if record.get("markPriceTwap") is not None:
        mark = format(_integer(record, "markPriceTwap", path=path, index=index) / PRICE_PRECISION, "f")
    return {
        "symbol": symbol,
        "time": record_text(record, "ts"),
        "rate": format(drift_rate(funding_rate, oracle_twap).normalize(), "f"),
        "mark_price": mark,
        "index_price": format(oracle_twap / PRICE_PRECISION, "f"),
    }


class DriftFundingImporter:
    """Reader of Drift data-API ``fundingRates`` JSON of one market (named at the end of the file name)."""

    name = "drift-funding-json"
    description = "Drift data API fundingRates JSON of one market: {fundingRates: [FundingRateRecord]}, *_SOL.json"
    version = "1"

    def sniff(self, path: Path) -> bool:
        head = head_bytes(path, 4096)
        return path.suffix.lower() == ".json" and b'"fundingRates"' in head and b'"oraclePriceTwap"' in head

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return the payload's settlements as one ``funding`` batch.

        Raises
        ------
        SourceFormatError
            If the file name names no market, the file is not valid JSON, holds no ``fundingRates``
            list, or a record is malformed.
        """
        symbol = dex_symbol(base_from_name(path, endpoint="fundingRates", venue=VENUE))
        pages = pages_of(load_json(path, what=WHAT), "fundingRates", path=path, what=WHAT)
        return [Batch("funding", drift_funding_rows(pages, symbol=symbol, path=path))]
