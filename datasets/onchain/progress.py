"""Which part of a program's signature history a fetch has processed: the resume record of ``fetch-onchain``.

A Solana program's history, as ``getSignaturesForAddress`` pages it (newest first, by slot and
position in the block), is walked once. Most signatures carry no liquidation, so the rows in the
store cannot say how far a fetch got; and lineage lives in the footers of partitions that a range
without liquidations never creates. So each protocol keeps a small record beside the partitions:
``<store>/onchain-progress.solana.<protocol>.json``, a list of **spans**. A span is a run of
consecutive signatures of the program's history, every one of which was processed (failed
transactions skipped, the others fetched, decoded, and their rows written to the store before the
span was extended over them). Spans are disjoint and kept newest first; a walk that reaches the
next older span merges with it.

The record is replaced atomically (temp file, fsync, rename) after every written batch, so a run
killed at any point resumes at the last batch it wrote: its rows went in before the span grew, so a
batch cut in the middle is fetched again and its rows merge into the store as the same keys (no
duplicate), and nothing inside a span is ever fetched twice. A file lock on the record stops two
fetches of one protocol from interleaving.

The plan (``regions``) is the complement of the spans within the requested range: the head (from
the tip down to the newest span), the holes between spans (left by an interrupted run), and the
tail (below the oldest span, down to ``--since``), unless the program's first signature was reached.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from datasets.errors import StoreError, StoreWriteError

FORMAT = 1
CHAIN = "solana"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a signature sits in the program's history: its slot and block time (None if the node has none)."""

    signature: str
    slot: int
    block_time: int | None


@dataclass(frozen=True, slots=True)
class Bound:
    """One end of a requested range: a UTC time or a slot."""

    unit: Literal["time", "slot"]
    value: int  # epoch seconds for "time"

    @classmethod
    def at_time(cls, when: datetime) -> Bound:
        return cls("time", int(when.astimezone(UTC).timestamp()))

    @classmethod
    def at_slot(cls, slot: int) -> Bound:
        return cls("slot", slot)

    def of(self, position: Position) -> int | None:
        """Return the position's value in this bound's unit (None: a time bound and no block time)."""
        return position.slot if self.unit == "slot" else position.block_time

    def describe(self) -> str:
        if self.unit == "slot":
            return f"slot {self.value:,}"
        return datetime.fromtimestamp(self.value, UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class Span:
    """Consecutive signatures of the program's history, all processed (newest and oldest included).

    ``below`` is the first older signature a walk saw and left out because it lay before the range
    asked for: everything between ``oldest`` and it is processed, so a later ``--since`` at or after
    its position needs no tail walk. ``history_start``: nothing older exists.
    """

    newest: Position
    oldest: Position
    signatures: int = 0
    failed: int = 0
    transactions: int = 0
    liquidations: int = 0
    extras: int = 0
    skips: int = 0
    below: Position | None = None
    history_start: bool = False

    def absorb(self, older: Span) -> None:
        """Extend this span over ``older``, which starts right after its oldest signature."""
        self.oldest = older.oldest
        self.below = older.below
        self.history_start = older.history_start
        self.signatures += older.signatures
        self.failed += older.failed
        self.transactions += older.transactions
        self.liquidations += older.liquidations
        self.extras += older.extras
        self.skips += older.skips


@dataclass(frozen=True, slots=True)
class Region:
    """A stretch of history to walk: signatures older than ``before`` and newer than ``until`` (exclusive).

    ``newer``/``older`` index the spans that bound it in ``Progress.spans`` (None: the tip, or no older span).
    """

    before: Position | None
    until: Position | None
    newer: int | None
    older: int | None

    def describe(self) -> str:
        top = "the tip" if self.before is None else _where(self.before)
        bottom = "the range start" if self.until is None else _where(self.until)
        name = "head" if self.before is None else ("hole" if self.until is not None else "tail")
        return f"{name}: below {top} down to {bottom}"


@dataclass(slots=True)
class Progress:
    """The processed spans of one protocol's program, newest first, and the oldest start ever asked for."""

    protocol: str
    program_id: str
    spans: list[Span] = field(default_factory=list)
    since: Bound | None = None

    def regions(self, *, since: Bound | None, until: Bound | None) -> list[Region]:
        """Return the stretches of history not processed yet within ``[since, until)``, newest first."""
        spans = self.spans
        if not spans:
            return [Region(None, None, None, None)]
        regions = []
        if until is None or _above(until, spans[0].newest):
            regions.append(Region(None, spans[0].newest, None, 0))
        for index in range(len(spans) - 1):
            newer, older = spans[index], spans[index + 1]
            inside_top = until is None or _above(until, older.newest)
            inside_bottom = since is None or _at_or_below(since, newer.oldest)
            if inside_top and inside_bottom:
                regions.append(Region(newer.oldest, older.newest, index, index + 1))
        last = spans[-1]
        if since is not None and not last.history_start and _tail_needed(since, last):
            regions.append(Region(last.oldest, None, len(spans) - 1, None))
        return regions

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "chain": CHAIN,
                "protocol": self.protocol,
                "program_id": self.program_id,
                "since": None if self.since is None else asdict(self.since),
                "spans": [asdict(span) for span in self.spans],
            },
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, *, where: str) -> Progress:
        """Parse a record.

        Raises
        ------
        StoreError
            If the record is not this format.
        """
        try:
            raw = json.loads(text)
            if raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
            since = raw.get("since")
            return cls(
                protocol=raw["protocol"],
                program_id=raw["program_id"],
                spans=[_span(item) for item in raw["spans"]],
                since=None if since is None else Bound(**since),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreError(
                f"{where}: expected a fetch-onchain progress record (format {FORMAT}), was unreadable ({exc}); "
                "delete it to fetch the range again (stored rows are kept, not duplicated)"
            ) from None


def progress_path(root: Path, protocol: str) -> Path:
    """Return the file of a protocol's progress record in a store."""
    return root / f"onchain-progress.{CHAIN}.{protocol}.json"


def load_progress(root: Path, protocol: str, program_id: str) -> Progress:
    """Return the protocol's progress record in the store at ``root`` (empty if there is none).

    Raises
    ------
    StoreError
        If the record is unreadable or belongs to another program id.
    """
    path = progress_path(root, protocol)
    if not path.exists():
        return Progress(protocol=protocol, program_id=program_id)
    progress = Progress.from_json(path.read_text(), where=str(path))
    if progress.program_id != program_id:
        raise StoreError(
            f"{path}: expected the progress of program {program_id}, was {progress.program_id}; "
            "move the file away to fetch this program from scratch"
        )
    return progress


def save_progress(root: Path, progress: Progress) -> None:
    """Replace the protocol's progress record atomically.

    Raises
    ------
    StoreWriteError
        If the file cannot be written (nothing is changed then).
    """
    path = progress_path(root, progress.protocol)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w") as handle:
            handle.write(progress.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreWriteError(
            f"{path}: expected a writable store, was an error writing the fetch progress ({exc}); the rows of the "
            "last batch are stored and will be fetched again, not duplicated: free disk space or fix permissions"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def progress_lock(root: Path, protocol: str) -> Iterator[None]:
    """Hold the protocol's fetch lock for the duration of a fetch.

    Raises
    ------
    StoreError
        If another fetch of the protocol holds it.
    """
    root.mkdir(parents=True, exist_ok=True)
    path = root / f".onchain-progress.{CHAIN}.{protocol}.lock"
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"another fetch-onchain of {protocol} is writing {root} (it holds {path}); wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def position_of(info: dict[str, Any]) -> Position:
    """Return the position of a ``getSignaturesForAddress`` entry."""
    block_time = info.get("blockTime")
    return Position(info["signature"], int(info["slot"]), block_time if isinstance(block_time, int) else None)


def _span(raw: dict[str, Any]) -> Span:
    below = raw.get("below")
    return Span(
        **{k: v for k, v in raw.items() if k not in ("newest", "oldest", "below")},
        newest=Position(**raw["newest"]),
        oldest=Position(**raw["oldest"]),
        below=None if below is None else Position(**below),
    )


def _above(bound: Bound, position: Position) -> bool:
    # An upper bound (exclusive) lies above a position when signatures at the position can be inside the range.
    value = bound.of(position)
    return value is None or bound.value > value


def _at_or_below(bound: Bound, position: Position) -> bool:
    value = bound.of(position)
    return value is None or bound.value <= value


def _tail_needed(since: Bound, last: Span) -> bool:
    if last.below is not None:
        below = since.of(last.below)
        # The walk stopped at a signature before an earlier start: the range [since, ...) is covered
        # unless this start reaches back to that signature.
        if below is not None and since.value > below:
            return False
    return _at_or_below(since, last.oldest)


def _where(position: Position) -> str:
    when = (
        "no block time"
        if position.block_time is None
        else datetime.fromtimestamp(position.block_time, UTC).isoformat().replace("+00:00", "Z")
    )
    return f"{position.signature[:12]}... (slot {position.slot:,}, {when})"
