"""Lighter funding: ``GET /api/v1/fundings`` JSON of one market (research-only venue).

Format (Lighter API docs; the sample ``crates/adapters/lighter/test_data/http_fundings.json`` in
``../shared/data/exchange_payloads``): ``{code, resolution, fundings: [{timestamp, value, rate,
direction}]}``. ``timestamp`` is epoch seconds on the hour; ``rate`` is the hour's rate **in percent**
of notional, unsigned, paid by the side ``direction`` names (``long``: longs paid). The stored rate is
the signed fraction: ``+rate / 100`` when longs paid, ``-rate / 100`` when shorts did (``0.0012``
long -> ``0.000012``). ``value`` (what one unit of base paid) is not kept.

The payload does not name its market (``market_id`` is a request parameter), so the file name ends
in it: ``lighter_fundings_BTC.json`` holds ``BTC-USDC-PERP`` (Lighter perps settle in USDC).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
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

VENUE = "lighter"
WHAT = "Lighter fundings"
KEYS = ("timestamp", "rate", "direction")
_SIGNS = {"long": 1, "short": -1}


def lighter_funding_rows(pages: list[list[Any]], *, symbol: str, path: Path) -> pl.DataFrame:
    """Return canonical funding rows of ``symbol`` from pages of Lighter ``fundings`` records.

    Raises
    ------
    SourceFormatError
        At the first record missing a key, with a direction other than long/short, or a rate that is
        not a non-negative number.
    """
    records: list[Record] = []
    for items in pages:
        for item in items:
            records.append(_record(item, symbol=symbol, path=path, index=len(records)))
    return dex_funding_rows(records, venue=VENUE, path=path, what=WHAT)


def _record(item: Any, *, symbol: str, path: Path, index: int) -> Record:
    record = require_keys(item, KEYS, path=path, index=index, what=WHAT)
    direction = record_text(record, "direction")
    if direction not in _SIGNS:
        raise SourceFormatError(
            f"{path}: record {index}, field 'direction': expected 'long' or 'short' (the side that paid), "
            f"was {direction!r}"
        )
    text = record_text(record, "rate") or ""
    try:
        percent = Decimal(text)
    except InvalidOperation:
        percent = Decimal(-1)
    if not percent.is_finite() or percent < 0:
        raise SourceFormatError(
            f"{path}: record {index}, field 'rate': expected an unsigned percentage like '0.0012', was {text!r}"
        )
    fraction = _SIGNS[direction] * percent / 100
    return {
        "symbol": symbol,
        "time": record_text(record, "timestamp"),
        "rate": format(fraction, "f"),
        "mark_price": None,
        "index_price": None,
    }


class LighterFundingImporter:
    """Reader of Lighter ``/api/v1/fundings`` JSON pages of one market (named at the end of the file name)."""

    name = "lighter-funding-json"
    description = "Lighter /api/v1/fundings JSON of one market: {fundings: [{timestamp, rate, direction}]}, *_BTC.json"
    version = "1"

    def sniff(self, path: Path) -> bool:
        head = head_bytes(path, 4096)
        return path.suffix.lower() == ".json" and b'"fundings"' in head and b'"direction"' in head

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return the payload's settlements as one ``funding`` batch.

        Raises
        ------
        SourceFormatError
            If the file name names no market, the file is not valid JSON, holds no ``fundings`` list, or
            a record is malformed.
        """
        symbol = dex_symbol(base_from_name(path, endpoint="fundings", venue=VENUE))
        pages = pages_of(load_json(path, what=WHAT), "fundings", path=path, what=WHAT)
        return [Batch("funding", lighter_funding_rows(pages, symbol=symbol, path=path))]
