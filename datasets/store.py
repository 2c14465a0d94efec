"""The canonical Parquet store: validated, atomic, idempotent writes and partition-pruned reads.

Layout (hive style, values percent-encoded)::

    <root>/<kind>/venue=<v>/symbol=<s>[/price_type=<p>/interval=<i>]/year=<YYYY>/data.parquet

Each file holds one year of one series as whole rows of the canonical schema (partition columns
included, so a file read on its own is complete), sorted by ``ts`` then key, with unique keys.
Row groups hold at most 50,000 rows (about a month of one-minute bars) with ``ts`` statistics, so a
one-month read of minute bars touches one or two row groups of one file, and a year of hourly bars
(8,760 rows, a few hundred KB) is a single small read instead of twelve tiny files. Its Parquet key-value metadata
carries ``carrylab.lineage`` (every input that contributed rows: path, sha256, importer and version,
row count, time range) and ``carrylab.summary`` (rows, first and last ts), so lineage is written in
the same atomic rename as the data it describes.

Writes inside ``Store.deferred()`` (the import pipeline's) hold the lock once and are committed
together when the block ends (or a row budget fills): the same files as one commit per write,
with one batch of syncs instead of one per input. Each partition staged there starts encoding to
its temp file at once, while the caller goes on (reading its next input); a partition staged again
has its earlier temp file discarded, and nothing is renamed before the commit.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import polars as pl
import pyarrow.parquet as pq

from datasets.errors import ConflictError, StoreError, StoreWriteError
from datasets.schemas import KindSpec, spec_for
from datasets.validate import ROW, has_duplicate_keys, validate_batch
from datasets.versions import changed_versions

DATA_FILE = "data.parquet"
TEMP_MARK = ".tmp-"
LINEAGE_KEY = "carrylab.lineage"
SUMMARY_KEY = "carrylab.summary"
DEFAULT_ROOT = Path("data/store")
# About a month of one-minute bars: a month's read of minute data touches one or two row groups.
ROW_GROUP_ROWS = 50_000
WRITE_THREADS = min(4, os.cpu_count() or 1)
SYNC_THREADS = 16
# Rows staged by deferred writes before they are committed: bounds what a long import holds beyond its inputs.
DEFERRED_ROWS = 2_000_000
_TEMP_NUMBERS = itertools.count()  # one temp file name per encoding, even of one partition twice in one thread


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """Where a batch came from: recorded in the lineage of every partition it touches."""

    source: str
    sha256: str
    importer: str
    importer_version: str
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class LineageEntry:
    """One input's contribution to one partition."""

    source: str
    sha256: str
    importer: str
    importer_version: str
    rows: int
    ts_min: str
    ts_max: str
    extra: dict[str, str] = field(default_factory=dict)

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.sha256, self.importer, self.source, self.ts_min)


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """A partition file and what its footer says about it."""

    kind: str
    path: Path
    values: dict[str, str]
    rows: int
    ts_min: datetime
    ts_max: datetime
    lineage: tuple[LineageEntry, ...]


@dataclass(frozen=True, slots=True)
class _Staged:
    frame: pl.DataFrame
    metadata: dict[str, str]


@dataclass(slots=True)
class WriteSummary:
    """What a write did: rows offered, partitions rewritten or left as they were."""

    rows_in: int = 0
    partitions_written: list[Path] = field(default_factory=list)
    partitions_unchanged: list[Path] = field(default_factory=list)


def resolve_root(root: str | os.PathLike[str] | None) -> Path:
    """Return the store root: ``root`` if given, else ``$DATA_ROOT``, else ``./data/store``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("DATA_ROOT")
    return Path(env) if env else DEFAULT_ROOT


class Store:
    """A canonical Parquet store rooted at a directory.

    Parameters
    ----------
    root : str | os.PathLike | None
        The store directory; ``None`` means ``$DATA_ROOT`` or ``./data/store``. Created on first write.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = resolve_root(root)
        self._holder: int | None = None  # the thread holding the lock through this instance
        # Partitions merged by writes inside ``deferred()`` and not committed yet, in order of first staging,
        # and the encoding of each to its temp file, started when it was staged.
        self._pending: dict[Path, _Staged] | None = None
        self._encoding: dict[Path, Future[Path]] = {}
        self._encoder: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"Store(root={str(self.root)!r})"

    # ----------------------------------------------------------------------------------- writes
    def write(self, kind: str, batch: pl.DataFrame, info: SourceInfo, *, validate: bool = True) -> WriteSummary:
        """Validate ``batch`` and merge it into the store, atomically per partition.

        Every partition the batch touches is merged in memory first (existing rows + new rows,
        exact duplicates dropped) and checked; only when all of them pass are the files written,
        each to a temporary file that is renamed over the old one. Re-writing rows that are already
        stored leaves the files byte-identical.

        Parameters
        ----------
        kind : str
            ``ohlcv``, ``funding`` or ``liquidations``.
        batch : pl.DataFrame
            The kind's canonical columns plus ``_row`` (source row numbers, for error messages).
        info : SourceInfo
            The input's identity, recorded in each touched partition's lineage.
        validate : bool
            Check the hard invariants first. Turn off only for a batch that ``validate_batch``
            has already passed (the import pipeline validates every input before writing any).

        Raises
        ------
        ValidationError
            If the batch breaks a hard invariant (nothing is written).
        ConflictError
            If a key already stored (or stored by another part of the batch) holds different values.
        """
        spec = spec_for(kind)
        if validate:
            validate_batch(batch, spec, source=info.source)
        summary = WriteSummary(rows_in=batch.height)
        if batch.height == 0:
            return summary
        rows = batch.drop(ROW)
        if has_duplicate_keys(rows, spec):
            rows = rows.unique(maintain_order=True)
        time = spec.time_column
        if not (spec.order_by == [time] and rows[time].is_sorted()):
            rows = rows.sort(spec.order_by)
        with self._lock():
            if spec.versioned_by:
                self._flush()
                rows = changed_versions(spec, self._stored_versions(spec, rows), rows)
            staged: list[tuple[Path, _Staged]] = []
            for values, group in _split_partitions(spec, rows):
                path = self.partition_path(spec, values)
                table = self._merge(spec, path, group, info)
                if table is None:
                    summary.partitions_unchanged.append(path)
                else:
                    staged.append((path, table))
            if self._pending is None or self._encoder is None:
                with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
                    encoding = [(path, pool.submit(_write_temp, path, table, sync=False)) for path, table in staged]
                self._commit(encoding)
            else:
                self._stage(staged, self._pending, self._encoder)
                if sum(table.frame.height for table in self._pending.values()) >= DEFERRED_ROWS:
                    self._flush()
            summary.partitions_written.extend(path for path, _ in staged)
        return summary

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold the store lock across several writes and commit them together at the end of the block.

        Each write still merges and checks all its partitions before staging any, against the
        store as the writes before it left it (staged partitions included), so the files are
        exactly those of one commit per write. Staged partitions are committed when the block ends,
        when they hold ``DEFERRED_ROWS`` rows, and before a versioned kind or ``annotate`` needs the
        store's contents. If a write raises ``ConflictError``, the writes before it are committed
        (as they would have been) and the error propagates; on any other error nothing staged is
        committed, so every partition is as the last commit left it. Reads (``scan``, ``files``)
        inside the block do not see staged writes. Blocks do not nest; other threads' writes wait for the end.
        """
        if self._holder == threading.get_ident():
            raise StoreError(f"{self.root}: deferred() is already active on this store; nest no blocks")
        with self._lock(), ThreadPoolExecutor(max_workers=WRITE_THREADS) as encoder:
            self._pending, self._encoder = {}, encoder
            try:
                yield
                self._flush()
            except ConflictError:
                self._flush()
                raise
            finally:
                self._pending, self._encoder = None, None
                for future in self._encoding.values():  # staged by a block that failed
                    _discard(future)
                self._encoding = {}

    def _stage(
        self, staged: list[tuple[Path, _Staged]], pending: dict[Path, _Staged], encoder: ThreadPoolExecutor
    ) -> None:
        for path, table in staged:
            if (earlier := self._encoding.pop(path, None)) is not None:
                _discard(earlier)
            pending[path] = table
            self._encoding[path] = encoder.submit(_write_temp, path, table, sync=False)

    def _flush(self) -> None:
        if self._pending:
            encoding = [(path, self._encoding.pop(path)) for path in self._pending]
            self._pending.clear()
            self._commit(encoding)

    def _stored_versions(self, spec: KindSpec, rows: pl.DataFrame) -> pl.DataFrame:
        if not (self.root / spec.kind).is_dir():
            return pl.DataFrame(schema=spec.polars_schema)
        filters: dict[str, list[str]] = {name: rows[name].unique().to_list() for name in spec.partition_by}
        entities = rows.select(spec.versioned_by).unique()
        stored = self.scan(spec.kind, **filters)  # type: ignore[arg-type]  # filters hold partition columns only
        return stored.join(entities.lazy(), on=list(spec.versioned_by), how="semi").collect()

    def _commit(self, encoding: list[tuple[Path, Future[Path]]]) -> None:
        # Every temp file is written and synced before the first rename, so a full disk or an I/O
        # error leaves every partition as it was. Independent files: encoding releases the GIL, so
        # several writers use several cores; the syncs are issued together (``_sync_all``).
        renamed = 0
        try:
            wait([future for _, future in encoding])
            temps = [(path, future.result()) for path, future in encoding if future.exception() is None]
            failed = next((future.exception() for _, future in encoding if future.exception() is not None), None)
            if failed is not None:
                raise failed
            _sync_all([tmp for _, tmp in temps])
            for path, tmp in temps:
                os.replace(tmp, path)
                renamed += 1
        except (OSError, pl.exceptions.PolarsError) as exc:
            kept = "nothing was changed" if renamed == 0 else f"{renamed} of {len(encoding)} partitions were replaced"
            raise StoreWriteError(
                f"{self.root}: expected a writable store, was an error writing it ({exc}); {kept}: free disk "
                "space or fix the permissions and run the command again"
            ) from exc
        finally:
            for _, future in encoding:  # the temp files not renamed
                _discard(future)

    def _remove_stale_temp_files(self) -> None:
        # Called on taking the store lock: every writer holds it while its temp files exist, so any
        # temp file found now was left by a writer that was killed.
        for tmp in self.root.glob(f"*/**/.{DATA_FILE}{TEMP_MARK}*"):
            tmp.unlink(missing_ok=True)

    def _merge(self, spec: KindSpec, path: Path, new: pl.DataFrame, info: SourceInfo) -> _Staged | None:
        pending = self._pending.get(path) if self._pending is not None else None
        if pending is not None:
            old_lineage: list[LineageEntry] | None = list(_lineage_from(pending.metadata))
        else:
            old_lineage = list(_lineage_from(_file_metadata(path))) if path.exists() else None
        lineage = _merge_lineage(old_lineage or [], new[spec.time_column], info)
        if old_lineage is None:
            merged = new
        else:
            old = pending.frame if pending is not None else pl.read_parquet(path, hive_partitioning=False)
            merged = _combine(spec, old, new, source=info.source, path=path).sort(spec.order_by)
            if lineage == old_lineage and merged.equals(old):
                return None
        summary = {
            "rows": merged.height,
            "ts_min": _iso(merged[spec.time_column].min()),
            "ts_max": _iso(merged[spec.time_column].max()),
        }
        metadata = {
            LINEAGE_KEY: json.dumps([asdict(e) for e in lineage], sort_keys=True),
            SUMMARY_KEY: json.dumps(summary, sort_keys=True),
        }
        return _Staged(merged, metadata)

    def annotate(self, kind: str, values: dict[str, str], entries: Sequence[LineageEntry]) -> bool:
        """Add lineage entries that carry no rows to one partition, atomically; return whether it changed.

        Such an entry records something about the partition's range that is not a row, such as a
        range a venue was asked for and never returned (``datasets.gaps``). Entries already present
        (same sort key) are kept as they are, so annotating twice leaves the file byte-identical.

        Parameters
        ----------
        kind : str
            ``ohlcv``, ``funding`` or ``liquidations``.
        values : dict of str to str
            The partition's column values, ``year`` included.
        entries : sequence of LineageEntry
            The entries to add.

        Raises
        ------
        StoreError
            If the partition does not exist.
        """
        spec = spec_for(kind)
        path = self.partition_path(spec, values)
        with self._lock():
            self._flush()
            if not path.exists():
                raise StoreError(f"cannot annotate {path}: the partition does not exist; write its rows first")
            metadata = _file_metadata(path)
            lineage = {entry.sort_key(): entry for entry in _lineage_from(metadata)}
            known = len(lineage)
            for entry in entries:
                lineage.setdefault(entry.sort_key(), entry)
            if len(lineage) == known:
                return False
            ordered = sorted(lineage.values(), key=LineageEntry.sort_key)
            kept = {
                LINEAGE_KEY: json.dumps([asdict(e) for e in ordered], sort_keys=True),
                SUMMARY_KEY: metadata[SUMMARY_KEY],
            }
            _write_atomic(path, _Staged(pl.read_parquet(path, hive_partitioning=False), kept))
        return True

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        if self._holder == threading.get_ident():  # inside deferred(), which holds it
            yield
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.root / ".lock", "w")  # closed by the with block below, after the unlock
        except OSError as exc:
            raise StoreWriteError(
                f"{self.root}: expected a writable store directory, was not writable ({exc.strerror}); "
                "fix its permissions, free disk space or pass another --store (nothing was written)"
            ) from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._holder = threading.get_ident()
            try:
                self._remove_stale_temp_files()
                yield
            finally:
                self._holder = None
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ------------------------------------------------------------------------------------ reads
    def partition_path(self, spec: KindSpec, values: dict[str, str]) -> Path:
        """Return the file of the partition with these column values (``year`` included)."""
        parts = [f"{name}={quote(values[name], safe='')}" for name in [*spec.partition_by, "year"]]
        return self.root.joinpath(spec.kind, *parts, DATA_FILE)

    def files(self, kind: str, **filters: str | Sequence[str]) -> list[Path]:
        """Return the partition files of ``kind`` whose partition values match ``filters``.

        A filter value may be one string or a sequence of accepted strings; ``year`` is a filter too.
        """
        spec = spec_for(kind)
        unknown = set(filters) - {*spec.partition_by, "year"}
        if unknown:
            raise ValueError(
                f"cannot filter {kind} partitions by {sorted(unknown)}: "
                f"partition columns are {', '.join([*spec.partition_by, 'year'])}"
            )
        pattern_parts = []
        for name in [*spec.partition_by, "year"]:
            wanted = filters.get(name)
            pattern_parts.append(f"{name}={quote(wanted, safe='')}" if isinstance(wanted, str) else f"{name}=*")
        found = sorted(self.root.joinpath(kind).glob("/".join([*pattern_parts, DATA_FILE])))
        sets = {k: set(v) for k, v in filters.items() if not isinstance(v, str)}
        return [path for path in found if _matches(path, sets)]

    def scan(
        self,
        kind: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        floats: bool = False,
        **filters: str | Sequence[str],
    ) -> pl.LazyFrame:
        """Return a lazy frame over the matching partitions, pruned to the years (files) and row groups of a range.

        Parameters
        ----------
        kind : str
            ``ohlcv``, ``funding`` or ``liquidations``.
        start, end : datetime, optional
            Half-open UTC range ``[start, end)`` of ``ts``.
        floats : bool
            Cast decimal columns to float64 (research vectors only; the ledger uses decimals).
        **filters
            Partition values, e.g. ``venue="binance", symbol="BTC-USDT-PERP", interval="1h"``.
        """
        spec = spec_for(kind)
        paths = [p for p in self.files(kind, **filters) if _year_in_range(p, start, end)]
        if not paths:
            frame = pl.LazyFrame(schema=spec.polars_schema)
        else:
            frame = pl.scan_parquet(paths, hive_partitioning=False)
        if start is not None:
            frame = frame.filter(pl.col(spec.time_column) >= start)
        if end is not None:
            frame = frame.filter(pl.col(spec.time_column) < end)
        if floats:
            frame = frame.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
        return frame

    def partitions(self, kind: str | None = None) -> Iterator[PartitionInfo]:
        """Yield every partition file with the row count, time range and lineage from its footer."""
        kinds = [kind] if kind else [k.name for k in sorted(self.root.iterdir()) if k.is_dir()]
        for name in kinds:
            for path in self.files(name):
                metadata = _file_metadata(path)
                if SUMMARY_KEY not in metadata:
                    raise StoreError(f"{path} has no {SUMMARY_KEY} metadata: it was not written by this store")
                summary = json.loads(metadata[SUMMARY_KEY])
                yield PartitionInfo(
                    kind=name,
                    path=path,
                    values=_partition_values(path),
                    rows=int(summary["rows"]),
                    ts_min=datetime.fromisoformat(summary["ts_min"]),
                    ts_max=datetime.fromisoformat(summary["ts_max"]),
                    lineage=tuple(_lineage_from(metadata)),
                )


def _split_partitions(spec: KindSpec, rows: pl.DataFrame) -> Iterator[tuple[dict[str, str], pl.DataFrame]]:
    # Yield (partition values with ``year``, rows) in order of first appearance.
    time = spec.time_column
    names = [*spec.partition_by, "year"]
    stamps = rows[time]
    *fixed_values, series, first, last = rows.select(
        pl.col(spec.partition_by).first(),
        pl.max_horizontal(pl.col(spec.partition_by).n_unique()).alias("_series"),
        pl.col(time).min().dt.year().alias("_first"),
        pl.col(time).max().dt.year().alias("_last"),
    ).row(0)
    if series == 1 and stamps.is_sorted():
        # One series in time order (every file of bars or rates): each year is a run of rows, found by
        # a binary search for each new year's first instant and sliced without a copy.
        fixed = [str(value) for value in fixed_values]
        starts = pl.Series(
            [datetime(year, 1, 1, tzinfo=UTC) for year in range(first + 1, last + 1)], dtype=stamps.dtype
        )
        bounds = [0, *stamps.search_sorted(starts, side="left").to_list(), rows.height]
        for year, start, stop in zip(range(first, last + 1), bounds[:-1], bounds[1:], strict=True):
            if stop > start:
                yield dict(zip(names, [*fixed, str(year)], strict=True)), rows.slice(start, stop - start)
        return
    years = stamps.dt.year().alias("_year")
    groups = rows.with_columns(years).partition_by(
        [*spec.partition_by, "_year"], as_dict=True, include_key=True, maintain_order=True
    )
    for keys, group in groups.items():
        yield dict(zip(names, (str(k) for k in keys), strict=True)), group.drop("_year")


def _combine(spec: KindSpec, old: pl.DataFrame, new: pl.DataFrame, *, source: str, path: Path) -> pl.DataFrame:
    # Rows sharing a key merge when every column agrees or one side is empty (a source that adds
    # the premium or mark price to stored rates enriches them); two different values are a conflict.
    rows = pl.concat([old, new], how="vertical").unique(maintain_order=True)
    shared = pl.struct(spec.key).is_duplicated()
    clashes = rows.filter(shared)
    if clashes.height == 0:
        return rows
    values = [c for c in spec.columns if c not in spec.key]
    resolved = clashes.group_by(spec.key, maintain_order=True).agg(
        *(pl.col(c).drop_nulls().first() for c in values),
        _disagree=pl.max_horizontal(*(pl.col(c).drop_nulls().n_unique() for c in values)) > 1,
    )
    conflicts = resolved.filter("_disagree")
    if conflicts.height:
        first = conflicts.row(0, named=True)
        key = {k: first[k] for k in spec.key}
        stored = clashes.filter(*(pl.col(k) == v for k, v in key.items())).rows()
        raise ConflictError(
            f"{source}: {conflicts.height} keys ({', '.join(spec.key)}) are already stored in {path} "
            f"with different values, first stored vs new: {stored}; "
            "the inputs disagree: remove the wrong one, or delete the partition to replace it"
        )
    return pl.concat([rows.filter(~shared), resolved.drop("_disagree").select(spec.columns)], how="vertical")


def _write_atomic(path: Path, staged: _Staged) -> None:
    tmp = _write_temp(path, staged)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_temp(path: Path, staged: _Staged, *, sync: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{next(_TEMP_NUMBERS)}")
    try:
        # lz4 writes decimal128 columns about twice as fast as zstd here for ~20% more bytes.
        staged.frame.rechunk().write_parquet(
            tmp, compression="lz4", statistics=True, row_group_size=ROW_GROUP_ROWS, metadata=staged.metadata
        )
        if sync:
            _sync(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _discard(future: Future[Path]) -> None:
    # An encoding no commit will use (its partition was staged again, or its block failed): once
    # it has written its temp file, remove that.
    if not future.cancel():
        future.add_done_callback(_remove_temp)


def _remove_temp(future: Future[Path]) -> None:
    if future.exception() is None:
        future.result().unlink(missing_ok=True)


def _sync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _sync_all(paths: list[Path]) -> None:
    # fsync waits on the disk, not the CPU, and the filesystem journals syncs issued together in one
    # commit: one thread per file (capped) instead of one commit after another.
    if not paths:
        return
    with ThreadPoolExecutor(max_workers=min(len(paths), SYNC_THREADS)) as pool:
        for _ in pool.map(_sync, paths):
            pass


def _merge_lineage(old: list[LineageEntry], new: pl.Series, info: SourceInfo) -> list[LineageEntry]:
    entries = {e.sort_key(): e for e in old}
    entry = LineageEntry(
        source=info.source,
        sha256=info.sha256,
        importer=info.importer,
        importer_version=info.importer_version,
        rows=new.len(),
        ts_min=_iso(new.min()),
        ts_max=_iso(new.max()),
        extra=dict(info.extra),
    )
    entries.setdefault(entry.sort_key(), entry)
    return sorted(entries.values(), key=LineageEntry.sort_key)


def _file_metadata(path: Path) -> dict[str, str]:
    raw = pq.read_metadata(path).metadata or {}
    return {key.decode(): value.decode() for key, value in raw.items()}


def _lineage_from(metadata: dict[str, str]) -> Iterator[LineageEntry]:
    for raw in json.loads(metadata.get(LINEAGE_KEY, "[]")):
        yield LineageEntry(**raw)


def _iso(value: Any) -> str:
    if not isinstance(value, datetime):
        raise StoreError(f"expected a timestamp, was {value!r}")
    return value.astimezone(UTC).isoformat()


def _partition_values(path: Path) -> dict[str, str]:
    values = {}
    for part in path.parent.parts:
        if "=" in part:
            name, _, value = part.partition("=")
            values[name] = unquote(value)
    return values


def _matches(path: Path, sets: dict[str, set[str]]) -> bool:
    values = _partition_values(path)
    return all(values.get(name) in accepted for name, accepted in sets.items())


def _year_in_range(path: Path, start: datetime | None, end: datetime | None) -> bool:
    year = int(_partition_values(path)["year"])
    if start is not None and year < start.astimezone(UTC).year:
        return False
    return not (end is not None and year > end.astimezone(UTC).year)
