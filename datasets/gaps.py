"""Missing rows of a series: holes between rows, and the known gaps a venue would not fill.

A *hole* is a run of missing rows between two rows of one series, by the rule of the ``gap``
finding of ``datasets.check``: bars sit one ``interval`` apart; settlements one funding interval
apart, and a settlement up to half an interval late fills its slot.

A *known gap* is a hole a download asked the venue for repeatedly and never got (an outage on the
venue's side, or a venue that keeps answering short). It is recorded in the lineage of a partition
of its series, as a ``carrylab.lineage`` entry without rows (``rows`` 0, ``extra["known_gap"]``), so it
lives in the same Parquet footer as the data and survives copies of the store. ``check`` lists the
known gaps still missing as ``known_gap`` findings, and ``fetch``/``update`` do not ask for them
again unless told to (``--retry-known-gaps``). A known gap is a record of what was asked and not
answered: once its rows arrive (another source, a later retry), the hole is gone and the record is
simply no longer reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from datasets.store import LineageEntry, Store

KNOWN_GAP = "known_gap"
LATE_FRACTION = 0.5


@dataclass(frozen=True, slots=True)
class Hole:
    """Missing slots between two rows: ``missing`` slots from ``first_ms`` to ``last_ms`` every ``interval_ms``."""

    previous_ms: int
    next_ms: int
    first_ms: int
    last_ms: int
    missing: int
    interval_ms: int


def find_holes(ts_ms: Sequence[int], intervals_ms: Sequence[int | None], *, late_fraction: float = 0.0) -> list[Hole]:
    """Return the holes of a sorted series of epoch-ms times.

    ``intervals_ms[i]`` is the spacing expected before row ``i`` (the bar interval, or the funding
    interval in force; None: not judged). A slot counts as missing when no row arrived within
    ``late_fraction`` of an interval after it (0 for bars, one half for settlements).
    """
    holes = []
    for index in range(1, len(ts_ms)):
        expected = intervals_ms[index]
        if expected is None or expected <= 0:
            continue
        previous, following = ts_ms[index - 1], ts_ms[index]
        grace = int(expected * late_fraction)
        missing = -(-(following - previous - grace) // expected) - 1
        if missing >= 1:
            holes.append(
                Hole(
                    previous_ms=previous,
                    next_ms=following,
                    first_ms=previous + expected,
                    last_ms=previous + missing * expected,
                    missing=missing,
                    interval_ms=expected,
                )
            )
    return holes


@dataclass(frozen=True, slots=True)
class KnownGap:
    """A hole the venue was asked for ``attempts`` times and never filled.

    Attributes
    ----------
    first, last : datetime
        First and last missing slot (UTC).
    missing : int
        Slots missing.
    attempts : int
        Requests that asked for the range (the first included).
    venue, endpoint : str
        Who was asked, and where.
    recorded_at : str
        When the last attempt gave up, ISO 8601 UTC.
    """

    first: datetime
    last: datetime
    missing: int
    attempts: int
    venue: str
    endpoint: str
    recorded_at: str

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Return whether the gap shares a slot with ``[start, end]`` (both inclusive)."""
        return self.first <= end and start <= self.last

    def lineage_entry(self, *, series: str, source: str, importer: str, importer_version: str) -> LineageEntry:
        """Return the lineage entry (no rows) recording this gap of ``series`` (a description, part of its id)."""
        identity = f"{KNOWN_GAP} {series} {_iso(self.first)} {_iso(self.last)}"
        return LineageEntry(
            source=source,
            sha256=hashlib.sha256(identity.encode()).hexdigest(),
            importer=importer,
            importer_version=importer_version,
            rows=0,
            ts_min=_iso(self.first),
            ts_max=_iso(self.last),
            extra={
                KNOWN_GAP: "true",
                "missing": str(self.missing),
                "attempts": str(self.attempts),
                "venue": self.venue,
                "endpoint": self.endpoint,
                "recorded_at": self.recorded_at,
            },
        )

    @classmethod
    def from_entry(cls, entry: LineageEntry) -> KnownGap | None:
        """Return the gap a lineage entry records; None for an entry that records rows."""
        extra = entry.extra
        if extra.get(KNOWN_GAP) != "true":
            return None
        return cls(
            first=datetime.fromisoformat(entry.ts_min),
            last=datetime.fromisoformat(entry.ts_max),
            missing=int(extra.get("missing", "0")),
            attempts=int(extra.get("attempts", "0")),
            venue=extra.get("venue", ""),
            endpoint=extra.get("endpoint", ""),
            recorded_at=extra.get("recorded_at", ""),
        )

    def describe(self) -> str:
        """Return the gap in words, for logs and messages."""
        when = _minute(self.first) if self.missing == 1 else f"from {_minute(self.first)} to {_minute(self.last)}"
        return (
            f"{self.missing} missing {when}: {self.venue} {self.endpoint} was asked {self.attempts} times "
            f"and did not return them (last asked {self.recorded_at})"
        )


def known_gaps(store: Store, kind: str, values: Mapping[str, str]) -> list[KnownGap]:
    """Return the known gaps recorded for the series with these partition values (``year`` left out), by time."""
    if not (store.root / kind).is_dir():
        return []
    infos = (info for info in store.partitions(kind) if all(info.values.get(k) == v for k, v in values.items()))
    return sorted(_gaps_of(entry for info in infos for entry in info.lineage), key=lambda gap: gap.first)


def known_gaps_by_series(store: Store, kind: str, names: Sequence[str]) -> dict[tuple[str, ...], list[KnownGap]]:
    """Return every known gap of ``kind``, keyed by the partition values ``names`` of its series."""
    found: dict[tuple[str, ...], list[KnownGap]] = {}
    if not (store.root / kind).is_dir():
        return found
    for info in store.partitions(kind):
        gaps = list(_gaps_of(info.lineage))
        if gaps:
            found.setdefault(tuple(info.values.get(name, "") for name in names), []).extend(gaps)
    return {key: sorted(set(gaps), key=lambda gap: gap.first) for key, gaps in found.items()}


def _gaps_of(entries: Iterable[LineageEntry]) -> Iterable[KnownGap]:
    for entry in entries:
        gap = KnownGap.from_entry(entry)
        if gap is not None:
            yield gap


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _minute(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
