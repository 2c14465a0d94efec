"""dYdX v4 funding: the indexer's ``GET /v4/historicalFunding/{ticker}`` JSON (research-only venue).

Format (dYdX indexer HTTP docs; the sample ``crates/adapters/dydx/test_data/http_get_historical_funding.json``
in ``../shared/data/exchange_payloads`` wraps it in ``{requestId, status, result: {...}}``, also read):
``{historicalFunding: [{ticker, rate, price, effectiveAtHeight, effectiveAt}]}``, newest first.
``rate`` is the hourly rate as a fraction (positive: longs pay), ``price`` the oracle price it was
computed at (stored as ``index_price``), ``effectiveAt`` ISO 8601 UTC with millisecond jitter (snapped
to the hour). Tickers ``BTC-USD`` are perps margined in USDC: canonical ``BTC-USDC-PERP``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from datasets.errors import SourceFormatError
from datasets.importers.base import Batch, ImportOptions, head_bytes
from datasets.importers.common import load_json
from datasets.importers.dex_funding import Record, dex_funding_rows, dex_symbol, pages_of, record_text, require_keys

VENUE = "dydx"
WHAT = "dYdX historicalFunding"
KEYS = ("ticker", "rate", "effectiveAt")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def dydx_funding_rows(pages: list[list[Any]], *, path: Path) -> pl.DataFrame:
    """Return canonical funding rows from pages of dYdX ``historicalFunding`` records.

    Raises
    ------
    SourceFormatError
        At the first record missing a key, with a ticker not ``BASE-USD``, or an unparseable time or rate.
    """
    records: list[Record] = []
    for items in pages:
        for item in items:
            records.append(_record(item, path=path, index=len(records)))
    return dex_funding_rows(records, venue=VENUE, path=path, what=WHAT)


def _record(item: Any, *, path: Path, index: int) -> Record:
    record = require_keys(item, KEYS, path=path, index=index, what=WHAT)
    ticker = str(record["ticker"])
    base, _, quote = ticker.partition("-")
    if not base or quote != "USD":
        raise SourceFormatError(f"{path}: record {index}, field 'ticker': expected a perp like BTC-USD, was {ticker!r}")
    text = str(record["effectiveAt"])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise SourceFormatError(
            f"{path}: record {index}, field 'effectiveAt': expected an ISO 8601 UTC time like "
            f"2025-12-08T16:00:00.219Z, was {text!r}"
        )
    epoch_ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    return {
        "symbol": dex_symbol(base),
        "time": str(epoch_ms),
        "rate": record_text(record, "rate"),
        "mark_price": None,
        "index_price": record_text(record, "price"),
    }


class DydxFundingImporter:
    """Reader of dYdX v4 indexer ``historicalFunding`` JSON pages."""

    name = "dydx-funding-json"
    description = "dYdX v4 indexer historicalFunding JSON: {historicalFunding: [{ticker, rate, price, effectiveAt}]}"
    version = "1"

    def sniff(self, path: Path) -> bool:
        return path.suffix.lower() == ".json" and b'"historicalFunding"' in head_bytes(path, 4096)

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return the payload's settlements as one ``funding`` batch.

        Raises
        ------
        SourceFormatError
            If the file is not valid JSON, holds no ``historicalFunding`` list, or a record is malformed.
        """
        pages = pages_of(load_json(path, what=WHAT), "historicalFunding", path=path, what=WHAT)
        return [Batch("funding", dydx_funding_rows(pages, path=path))]
