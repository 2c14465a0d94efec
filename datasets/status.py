"""Coverage of the store: what is there per venue, symbol, kind and interval, from file footers.

``summarise`` folds the per-symbol rows into one row per venue, kind, series and interval (how many
symbols, their combined range and rows): the view of a whole universe of perps. Rows of research-only
venues (``datasets.venues.DataVenue.research_only``: funding without an adapter) say so.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

import polars as pl

from datasets.store import Store
from datasets.venues import DATA_VENUES

RESEARCH_ONLY = "research-only"


@dataclass(frozen=True, slots=True)
class Coverage:
    """One series in the store."""

    kind: str
    venue: str
    symbol: str
    series: str
    interval: str
    first: datetime
    last: datetime
    rows: int
    files: int
    research_only: bool = False


@dataclass(frozen=True, slots=True)
class CoverageSummary:
    """The series of one venue, kind, series and interval across all its symbols."""

    venue: str
    kind: str
    series: str
    interval: str
    symbols: int
    first: datetime
    last: datetime
    rows: int
    files: int
    research_only: bool


def _research_only(venue: str) -> bool:
    return venue in DATA_VENUES and DATA_VENUES[venue].research_only


def coverage(store: Store) -> list[Coverage]:
    """Return one row per series: ohlcv per price type and interval, funding per interval in force."""
    groups: dict[tuple[str, str, str, str, str], list[tuple[datetime, datetime, int]]] = defaultdict(list)
    funding_files: dict[tuple[str, str], int] = defaultdict(int)
    if not store.root.exists():
        return []
    for part in store.partitions():
        values = part.values
        if part.kind == "funding":
            funding_files[(values["venue"], values["symbol"])] += 1
            continue
        # Instrument specs and margin tiers are partitioned by venue only: one row per venue, "*" symbols.
        series = values.get("price_type", "events" if "symbol" in values else "versions")
        key = (part.kind, values["venue"], values.get("symbol", "*"), series, values.get("interval", "-"))
        groups[key].append((part.ts_min, part.ts_max, part.rows))
    rows = [
        Coverage(
            kind,
            venue,
            symbol,
            series,
            interval,
            min(g[0] for g in parts),
            max(g[1] for g in parts),
            sum(g[2] for g in parts),
            len(parts),
            _research_only(venue),
        )
        for (kind, venue, symbol, series, interval), parts in groups.items()
    ]
    rows.extend(_funding_coverage(store, funding_files))
    return sorted(rows, key=lambda c: (c.venue, c.symbol, c.kind, c.series, c.interval, c.first))


def _funding_coverage(store: Store, files: dict[tuple[str, str], int]) -> list[Coverage]:
    if not files:
        return []
    per_interval = (
        store.scan("funding")
        .group_by("venue", "symbol", "interval")
        .agg(first=pl.col("ts").min(), last=pl.col("ts").max(), rows=pl.len())
        .collect()
    )
    return [
        Coverage(
            "funding",
            r["venue"],
            r["symbol"],
            "rate",
            r["interval"],
            r["first"],
            r["last"],
            r["rows"],
            files[(r["venue"], r["symbol"])],
            _research_only(r["venue"]),
        )
        for r in per_interval.iter_rows(named=True)
    ]


def summarise(rows: list[Coverage]) -> list[CoverageSummary]:
    """Return one row per venue, kind, series and interval: symbol count, combined range, rows and files."""
    groups: dict[tuple[str, str, str, str], list[Coverage]] = defaultdict(list)
    for row in rows:
        groups[(row.venue, row.kind, row.series, row.interval)].append(row)
    return [
        CoverageSummary(
            venue,
            kind,
            series,
            interval,
            len({c.symbol for c in members}),
            min(c.first for c in members),
            max(c.last for c in members),
            sum(c.rows for c in members),
            sum(c.files for c in members),
            members[0].research_only,
        )
        for (venue, kind, series, interval), members in sorted(groups.items())
    ]


def format_summary(rows: list[CoverageSummary]) -> str:
    """Return a fixed-width table of summary rows."""
    if not rows:
        return "the store is empty: import data with `python -m datasets import PATH`"
    header = ("venue", "kind", "series", "interval", "symbols", "first", "last", "rows", "files", "note")
    lines = [
        (
            c.venue,
            c.kind,
            c.series,
            c.interval,
            f"{c.symbols:,}",
            f"{c.first:%Y-%m-%d %H:%M}",
            f"{c.last:%Y-%m-%d %H:%M}",
            f"{c.rows:,}",
            f"{c.files:,}",
            RESEARCH_ONLY if c.research_only else "",
        )
        for c in rows
    ]
    return _table(header, lines)


def format_coverage(rows: list[Coverage]) -> str:
    """Return a fixed-width table of coverage rows."""
    if not rows:
        return "the store is empty: import data with `python -m datasets import PATH`"
    header = ("venue", "symbol", "kind", "series", "interval", "first", "last", "rows", "files", "note")
    lines = [
        (
            c.venue,
            c.symbol,
            c.kind,
            c.series,
            c.interval,
            f"{c.first:%Y-%m-%d %H:%M}",
            f"{c.last:%Y-%m-%d %H:%M}",
            f"{c.rows:,}",
            str(c.files),
            RESEARCH_ONLY if c.research_only else "",
        )
        for c in rows
    ]
    return _table(header, lines)


def _table(header: tuple[str, ...], lines: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in [header, *lines])


def coverage_json(rows: list[Coverage] | list[CoverageSummary]) -> str:
    """Return coverage or summary rows as a JSON array (timestamps ISO 8601 UTC)."""
    return json.dumps([{**asdict(c), "first": c.first.isoformat(), "last": c.last.isoformat()} for c in rows], indent=2)
