"""What the research-only funding importers (dYdX, Drift, Lighter) share: records to canonical rows.

Each venue module turns its payload's records into ``{symbol, time, rate}`` text (canonical symbol,
integer epoch, the rate per settlement as a decimal fraction, positive when longs pay), and this
module parses and checks them like every other funding source (``datasets.importers.common``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl

from datasets.errors import EmptyInputError, SourceFormatError
from datasets.importers.base import with_row_numbers
from datasets.importers.common import funding_frame, parse_decimals, parse_epoch, require_values, text_or_none
from datasets.symbols import canonical

FIELDS = ("symbol", "time", "rate", "mark_price", "index_price")
Record = dict[str, str | None]
# The three venues fund hourly; a payload with one settlement cannot show its spacing.
DEX_INTERVAL = "1h"
# The perps of all three are margined and settled in USDC: canonical ``BTC-USDC-PERP``, as for Hyperliquid.
DEX_QUOTE = "USDC"


def dex_symbol(base: str) -> str:
    """Return the canonical perp of a DEX market's base (``BTC`` -> ``BTC-USDC-PERP``)."""
    return canonical(base, DEX_QUOTE, "perp")


def base_from_name(path: Path, *, endpoint: str, venue: str) -> str:
    """Return the market a file name ends in after its endpoint (``lighter_fundings_BTC.json`` -> ``BTC``).

    Raises
    ------
    SourceFormatError
        If the name does not end in ``<endpoint>_<MARKET>``; the payload itself does not say which market it is.
    """
    example = f"{venue}_{endpoint}_BTC.json"
    match = re.search(rf"(?:^|[_-]){re.escape(endpoint)}[_-]([A-Za-z0-9]+)$", path.stem)
    if match is None:
        raise SourceFormatError(
            f"{path}: expected the market at the end of the file name (e.g. {example}), was none: this payload "
            "does not name its market, so rename the file after the market it was downloaded for"
        )
    return match.group(1).upper()


def require_keys(item: Any, keys: tuple[str, ...], *, path: Path, index: int, what: str) -> dict[str, Any]:
    """Return ``item`` when it is a JSON object holding ``keys``.

    Raises
    ------
    SourceFormatError
        Naming the record and the first missing key.
    """
    if not isinstance(item, dict):
        raise SourceFormatError(f"{path}: record {index}: expected a JSON object, was {item!r}")
    missing = [key for key in keys if key not in item]
    if missing:
        raise SourceFormatError(
            f"{path}: record {index}: key '{missing[0]}' is missing; a {what} record has {', '.join(keys)}, "
            f"found {', '.join(item)}"
        )
    return item


def record_text(item: dict[str, Any], key: str) -> str | None:
    """Return a record's field as text (numbers through their shortest repr)."""
    return text_or_none(item.get(key))


def dex_funding_rows(records: list[Record], *, venue: str, path: Path, what: str) -> pl.DataFrame:
    """Return canonical funding rows (with ``_row``) from records of ``FIELDS`` text.

    Raises
    ------
    EmptyInputError
        If there are no records.
    SourceFormatError
        At the first record with a missing or unparseable time or rate, or an off-clock settlement.
    """
    if not records:
        raise EmptyInputError(
            f"{path}: expected {what} records, was a payload without any; download it again "
            "(or pass --skip-unrecognised to skip empty files)"
        )
    frame = with_row_numbers(pl.DataFrame(records, schema=dict.fromkeys(FIELDS, pl.String)))
    require_values(frame, ["symbol", "time", "rate"], path=path, unit="record")
    frame = parse_epoch(frame, "time", path=path, unit="record")
    frame = parse_decimals(frame, ["rate", "mark_price", "index_price"], path=path, unit="record")
    return funding_frame(
        frame.rename({"time": "ts"}), venue=venue, default_interval=DEX_INTERVAL, path=path, unit="record"
    )


def pages_of(document: Any, key: str, *, path: Path, what: str) -> list[list[Any]]:
    """Return the record lists of one page (``{key: [...]}``, or ``{result: {key: [...]}}``) or a list of pages.

    Raises
    ------
    SourceFormatError
        If a page holds no ``key`` list (an error response, or another format).
    """
    pages = document if isinstance(document, list) else [document]
    lists: list[list[Any]] = []
    for number, page in enumerate(pages):
        body = page.get("result", page) if isinstance(page, dict) else None
        items = body.get(key) if isinstance(body, dict) else None
        if not isinstance(items, list):
            shown = {k: page[k] for k in list(page)[:4]} if isinstance(page, dict) else type(page).__name__
            raise SourceFormatError(
                f"{path}: page {number}: expected a {what} page with a '{key}' list, was {shown!r}: an error "
                "response or another format; fix the request and download it again"
            )
        lists.append(items)
    return lists
