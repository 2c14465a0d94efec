"""Funding-history REST payloads saved as JSON: Binance, Bybit, OKX and Hyperliquid.

One file holds one response page, or a JSON list of pages (what a paginating downloader saves).

- Binance ``GET /fapi/v1/fundingRate``: ``[{symbol, fundingRate, fundingTime, markPrice?}]``.
- Bybit ``GET /v5/market/funding/history``: ``{retCode, retMsg, result: {category, list: [{symbol,
  fundingRate, fundingRateTimestamp}]}}``, newest first. A page with ``retCode != 0`` is an error
  response and is refused.
- OKX ``GET /api/v5/public/funding-rate-history``: ``{code, msg, data: [{instId, fundingRate,
  realizedRate, fundingTime}]}``. ``rate`` is ``realizedRate`` when present: the rate that actually
  settled (OKX may clamp or adjust it), which is what a position paid; ``fundingRate`` is the rate
  computed for the period and is used only when ``realizedRate`` is absent or empty. A page with
  ``code != "0"`` is an error response and is refused.
- Hyperliquid ``POST /info {"type": "fundingHistory"}``: ``[{coin, fundingRate, premium?, time}]``;
  the premium is kept.

Times are epoch ms (number or text), snapped to the minute. The funding interval is inferred per
symbol from the settlement spacing; when a payload is too short to show a spacing (one settlement)
the venue's documented clock is used: 8h for Binance, Bybit and OKX (their default for most perps;
a symbol on another clock needs a longer payload), 1h for Hyperliquid.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from datasets.errors import EmptyInputError, SourceFormatError
from datasets.importers.base import Batch, ImportOptions, head_bytes, with_row_numbers
from datasets.importers.common import (
    funding_frame,
    load_json,
    parse_decimals,
    parse_epoch,
    require_values,
    text_or_none,
    translate_symbols,
)

FIELDS = ("symbol", "time", "rate", "mark_price", "premium")
Record = dict[str, str | None]


class _FundingPayloadImporter:
    name: str
    description: str
    venue: ClassVar[str]
    default_interval: ClassVar[str]
    what: ClassVar[str]
    # Keys of one record, in the venue's names: (symbol, time, rate).
    required: ClassVar[tuple[str, str, str]]
    pages_are_objects: ClassVar[bool]

    version = "1"

    def sniff(self, path: Path) -> bool:
        if path.suffix.lower() != ".json":
            return False
        head = head_bytes(path, 4096)
        return head.lstrip()[:1] in (b"[", b"{") and self._recognise(head, path.name.lower())

    def read(self, path: Path, options: ImportOptions) -> list[Batch]:
        """Return the payload's settlements as one ``funding`` batch.

        Raises
        ------
        SourceFormatError
            If the file is not valid JSON, holds an error response, misses a key, or a record has an
            unparseable time or rate.
        """
        records: list[Record] = []
        for number, page in enumerate(self._pages(load_json(path, what=self.what), path)):
            for item in self._items(page, path, number):
                records.append(self._record(item, path, len(records)))
        if not records:
            raise EmptyInputError(
                f"{path}: expected {self.what} records, was a payload without any; download it again "
                "(or pass --skip-unrecognised to skip empty files)"
            )
        frame = with_row_numbers(pl.DataFrame(records, schema=dict.fromkeys(FIELDS, pl.String)))
        require_values(frame, ["symbol", "time", "rate"], path=path, unit="record")
        frame = parse_epoch(frame, "time", path=path, unit="record")
        frame = parse_decimals(frame, ["rate", "mark_price", "premium"], path=path, unit="record")
        frame = translate_symbols(frame, "symbol", venue=self.venue, path=path, unit="record")
        parsed = frame.rename({"time": "ts"})
        venue = options.venue or self.venue
        return [
            Batch(
                "funding",
                funding_frame(parsed, venue=venue, default_interval=self.default_interval, path=path, unit="record"),
            )
        ]

    def _recognise(self, head: bytes, name: str) -> bool:
        raise NotImplementedError

    def _items(self, page: Any, path: Path, number: int) -> list[Any]:
        raise NotImplementedError

    def _record(self, item: Any, path: Path, index: int) -> Record:
        if not isinstance(item, dict):
            raise SourceFormatError(f"{path}: record {index}: expected a JSON object, was {item!r}")
        missing = [key for key in self.required if key not in item]
        if missing:
            raise SourceFormatError(
                f"{path}: record {index}: key '{missing[0]}' is missing; a {self.what} record has "
                f"{', '.join(self.required)}, found {', '.join(item)}"
            )
        symbol, time, rate = (text_or_none(item[key]) for key in self.required)
        return {"symbol": symbol, "time": time, "rate": rate, "mark_price": None, "premium": None}

    def _pages(self, document: Any, path: Path) -> list[Any]:
        if self.pages_are_objects:
            if isinstance(document, dict):
                return [document]
            if isinstance(document, list) and all(isinstance(page, dict) for page in document):
                return document
        elif isinstance(document, list):
            return document if document and all(isinstance(page, list) for page in document) else [document]
        elif isinstance(document, dict) and "msg" in document:
            raise SourceFormatError(
                f"{path}: holds an error response (code {document.get('code')!r}, msg {document['msg']!r}), "
                f"not {self.what} records: fix the request and download it again"
            )
        shape = "a JSON object" if self.pages_are_objects else "a JSON list of records"
        raise SourceFormatError(
            f"{path}: expected {shape} (one {self.what} page) or a list of such pages, was {type(document).__name__}"
        )


class BinanceFundingPayloadImporter(_FundingPayloadImporter):
    """Reader of Binance ``/fapi/v1/fundingRate`` JSON pages."""

    name = "binance-funding-json"
    description = "Binance /fapi/v1/fundingRate JSON: [{symbol, fundingRate, fundingTime, markPrice?}] or pages"
    venue = "binance"
    default_interval = "8h"
    what = "Binance fundingRate"
    required = ("symbol", "fundingTime", "fundingRate")
    pages_are_objects = False

    def _recognise(self, head: bytes, name: str) -> bool:
        return b'"fundingTime"' in head and b'"symbol"' in head and b'"instId"' not in head

    def _items(self, page: Any, path: Path, number: int) -> list[Any]:
        return list(page)

    def _record(self, item: Any, path: Path, index: int) -> Record:
        record = super()._record(item, path, index)
        record["mark_price"] = text_or_none(item.get("markPrice"))
        return record


class BybitFundingPayloadImporter(_FundingPayloadImporter):
    """Reader of Bybit ``/v5/market/funding/history`` JSON pages."""

    name = "bybit-funding-json"
    description = "Bybit /v5/market/funding/history JSON: {retCode, result: {list: [...]}} or pages"
    venue = "bybit"
    default_interval = "8h"
    what = "Bybit funding history"
    required = ("symbol", "fundingRateTimestamp", "fundingRate")
    pages_are_objects = True

    def _recognise(self, head: bytes, name: str) -> bool:
        # An error response has no funding keys: recognise it by its envelope and a funding file name.
        return b'"fundingRateTimestamp"' in head or (b'"retCode"' in head and "funding" in name)

    def _items(self, page: Any, path: Path, number: int) -> list[Any]:
        code = page.get("retCode")
        if code not in (0, "0"):
            raise SourceFormatError(
                f"{path}: page {number} is a Bybit error response (retCode {code!r}, retMsg "
                f"{page.get('retMsg')!r}), not funding history: fix the request and download it again"
            )
        result = page.get("result")
        items = result.get("list") if isinstance(result, dict) else None
        if not isinstance(items, list):
            raise SourceFormatError(f"{path}: page {number} has no result.list; a Bybit funding page has one")
        return items


class OkxFundingPayloadImporter(_FundingPayloadImporter):
    """Reader of OKX ``/api/v5/public/funding-rate-history`` JSON pages (``rate`` = ``realizedRate``)."""

    name = "okx-funding-json"
    description = "OKX funding-rate-history JSON: {code, data: [{instId, fundingRate, realizedRate, fundingTime}]}"
    venue = "okx"
    default_interval = "8h"
    what = "OKX funding-rate-history"
    required = ("instId", "fundingTime", "fundingRate")
    pages_are_objects = True

    def _recognise(self, head: bytes, name: str) -> bool:
        if b'"instId"' in head and b'"fundingTime"' in head:
            return True
        # An error response: OKX codes are strings ({"code": "51001", "msg": ..., "data": []}).
        return "funding" in name and re.search(rb'"code"\s*:\s*"', head) is not None and b'"data"' in head

    def _items(self, page: Any, path: Path, number: int) -> list[Any]:
        code = page.get("code")
        if code != "0":
            raise SourceFormatError(
                f"{path}: page {number} is an OKX error response (code {code!r}, msg {page.get('msg')!r}), "
                "not funding history: fix the request and download it again"
            )
        items = page.get("data")
        if not isinstance(items, list):
            raise SourceFormatError(f"{path}: page {number} has no data list; an OKX funding page has one")
        return items

    def _record(self, item: Any, path: Path, index: int) -> Record:
        record = super()._record(item, path, index)
        realized = text_or_none(item.get("realizedRate"))
        if realized is not None and realized.strip():
            record["rate"] = realized
        return record


class HyperliquidFundingPayloadImporter(_FundingPayloadImporter):
    """Reader of Hyperliquid ``fundingHistory`` JSON responses."""

    name = "hyperliquid-funding-json"
    description = "Hyperliquid fundingHistory JSON: [{coin, fundingRate, premium?, time}] or pages"
    venue = "hyperliquid"
    default_interval = "1h"
    what = "Hyperliquid fundingHistory"
    required = ("coin", "time", "fundingRate")
    pages_are_objects = False

    def _recognise(self, head: bytes, name: str) -> bool:
        return b'"coin"' in head and b'"fundingRate"' in head

    def _items(self, page: Any, path: Path, number: int) -> list[Any]:
        return list(page)

    def _record(self, item: Any, path: Path, index: int) -> Record:
        record = super()._record(item, path, index)
        record["premium"] = text_or_none(item.get("premium"))
        return record
