"""Coverage of the store: what is there per venue, symbol, kind and interval, from file footers."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime

import polars as pl

from datasets.store import Store


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
        )
        for r in per_interval.iter_rows(named=True)
    ]


def format_coverage(rows: list[Coverage]) -> str:
    """Return a fixed-width table of coverage rows."""
    if not rows:
        return "the store is empty: import data with `python -m datasets import PATH`"
    header = ("venue", "symbol", "kind", "series", "interval", "first", "last", "rows", "files")
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
        )
        for c in rows
    ]
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in [header, *lines])


def coverage_json(rows: list[Coverage]) -> str:
    """Return coverage rows as a JSON array (timestamps ISO 8601 UTC)."""
    return json.dumps([{**asdict(c), "first": c.first.isoformat(), "last": c.last.isoformat()} for c in rows], indent=2)
