"""The engine's data of one run, read from the catalog one time-ordered chunk at a time.

A ``DataFeed`` holds, per instrument, where its bars and mark prices are (catalog files and the
``ts_init`` range of the window) and its funding updates and liquidations (few: one per funding
interval); ``chunks`` reads each chunk's bars and marks from the catalog as it goes. What is held for
the window is therefore O(files + funding updates), not O(bars): the Nautilus objects and Arrow
columns alive at once are those of one chunk.

- Bars are read forward, file by file and batch by batch (``pyarrow.parquet``, only the rows in the
  window), shifted 1 ns (``ts_init = ts_event + 1``, see ``engine.run_data``) and turned into ``Bar``
  objects by Nautilus' ``BarDataWrangler`` from Arrow IPC.
- Mark prices are read forward the same way and built per row (``Price.from_raw``); a window fed in one
  chunk has them built by the catalog's own query (Rust) instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from nautilus_trader.model import FIXED_PRECISION, InstrumentId, MarkPriceUpdate, NautilusDataType, Price
from nautilus_trader.persistence import BarDataWrangler, ParquetDataCatalog

# Rows decoded at a time per stream (about 6 MiB of bar columns), read through a buffer of this size.
BATCH_ROWS = 65_536
READ_BUFFER_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class BarStream:
    """Where one bar type's rows of the window are: catalog files and the ``ts_init`` range read from them.

    ``first_ns``/``last_ns`` bound the catalog's (unshifted) ``ts_init``, inclusive; ``count`` rows fall
    in it; ``first_fed_ns``/``last_fed_ns`` are the shifted ``ts_init`` of the first and last bar fed.
    """

    files: tuple[Path, ...]
    first_ns: int
    last_ns: int
    count: int
    first_fed_ns: int
    last_fed_ns: int
    wrangler: BarDataWrangler


@dataclass(frozen=True, slots=True)
class MarkStream:
    """One instrument's mark prices of the window: ``count`` updates with ``ts_init`` in ``[first_ns, last_ns]``."""

    catalog: ParquetDataCatalog
    instrument_id: InstrumentId
    price_precision: int
    files: tuple[Path, ...]
    first_ns: int
    last_ns: int
    count: int


@dataclass(slots=True)
class InstrumentFeed:
    """One instrument's streams: its bars, funding updates and liquidations (sorted by ``ts_init``), marks."""

    bars: BarStream
    funding: list[Any] = field(default_factory=list)
    marks: MarkStream | None = None
    liquidations: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class DataFeed:
    """The objects a run feeds the engine, read from the catalog chunk by chunk.

    Each chunk holds, per instrument in config order, its bars, funding updates, mark prices and
    liquidations whose ``ts_init`` falls in the chunk, in that order: the order ``add_data`` gets
    when the whole window is added at once, so a stable sort by ``ts_init`` of each chunk gives the
    same sequence as the sort of the whole window.
    """

    instruments: list[InstrumentFeed] = field(default_factory=list)

    @property
    def bar_count(self) -> int:
        return sum(i.bars.count for i in self.instruments)

    @property
    def event_count(self) -> int:
        """Bars, funding updates, mark prices and liquidations fed."""
        return self.bar_count + sum(
            len(i.funding) + (i.marks.count if i.marks else 0) + len(i.liquidations) for i in self.instruments
        )

    def boundaries(self, chunk_ns: int | None) -> list[int]:
        """Return the ``ts_init`` where chunks of ``chunk_ns`` start (the first chunk also holds everything earlier)."""
        streams = [i.bars for i in self.instruments if i.bars.count]
        if not chunk_ns or not streams:
            return []
        first, last = min(s.first_fed_ns for s in streams), max(s.last_fed_ns for s in streams)
        # Chunks start on a bar close T: the mark and funding update stamped T open the chunk, the bar
        # closing at T (stamped T + 1 ns) follows; the settlement timer at T fires between them either way.
        return list(range(first - 1 + chunk_ns, last + 1, chunk_ns))

    def chunks(self, chunk_ns: int | None = None) -> Iterator[list[Any]]:
        """Yield the engine's data in chunks of ``chunk_ns`` of ``ts_init`` (one chunk when None), in time order."""
        for parts in self.parts(chunk_ns):
            yield [item for part in parts for item in part]

    def parts(self, chunk_ns: int | None = None) -> Iterator[list[list[Any]]]:
        """Yield each chunk of ``chunks`` as its streams' lists, in the chunk's order, leaving out empty ones.

        Adding them one by one unsorted and sorting once (``add_data(part, sort=False)``, then
        ``sort_data()``) gives the engine the chunk's order, several times faster in rc6 than one
        ``add_data`` of the mixed chunk.
        """
        edges = [None, *self.boundaries(chunk_ns), None]
        readers = [_BarReader(feed.bars) for feed in self.instruments]
        marks = [_MarkReader(feed.marks) if feed.marks is not None else None for feed in self.instruments]
        funding = [_Timed(feed.funding) for feed in self.instruments]
        liquidations = [_Timed(feed.liquidations) for feed in self.instruments]
        for low, high in itertools.pairwise(edges):
            parts: list[list[Any]] = []
            for index in range(len(self.instruments)):
                parts.append(readers[index].until(high))
                parts.append(funding[index].between(low, high))
                if (reader := marks[index]) is not None:
                    parts.append(reader.between(low, high))
                parts.append(liquidations[index].between(low, high))
            kept = [part for part in parts if part]
            if kept:
                yield kept

    def objects(self) -> list[Any]:
        """Return every object of the window (one chunk)."""
        return [item for chunk in self.chunks() for item in chunk]


def _span(stamps: Any, low: int | None, high: int | None) -> tuple[int, int]:
    begin = 0 if low is None else int(np.searchsorted(stamps, low, side="left"))
    end = len(stamps) if high is None else int(np.searchsorted(stamps, high, side="left"))
    return begin, end


class _Timed:
    def __init__(self, objects: list[Any]) -> None:
        self.objects = objects
        self.stamps = np.fromiter((o.ts_init for o in objects), dtype=np.int64, count=len(objects))

    def between(self, low: int | None, high: int | None) -> list[Any]:
        begin, end = _span(self.stamps, low, high)
        return self.objects[begin:end]


class _Rows:
    """Read one stream's catalog rows forward, file by file, batch by batch, keeping those of the window."""

    def __init__(self, files: tuple[Path, ...], first_ns: int, last_ns: int) -> None:
        self.batches = _window_batches(files, first_ns, last_ns)
        self.pending: pa.RecordBatch | None = None

    def until(self, limit: int | None) -> list[pa.RecordBatch]:
        """Return the rows stamped (``ts_init``) before ``limit`` not returned yet (all when None)."""
        taken: list[pa.RecordBatch] = []
        while True:
            batch = self.pending if self.pending is not None else next(self.batches, None)
            self.pending = None
            if batch is None:
                break
            stamps = _stamps(batch)
            cut = len(stamps) if limit is None else int(np.searchsorted(stamps, limit, side="left"))
            if cut:
                taken.append(batch.slice(0, cut))
            if cut < len(stamps):
                self.pending = batch.slice(cut)
                break
        return taken


class _BarReader:
    def __init__(self, stream: BarStream) -> None:
        self.rows = _Rows(stream.files, stream.first_ns, stream.last_ns)
        self.wrangler = stream.wrangler

    def until(self, high: int | None) -> list[Any]:
        # Bars are fed at ts_init + 1: those fed before ``high`` are stamped before ``high - 1`` in the catalog.
        taken = self.rows.until(None if high is None else high - 1)
        return _bars_of(taken, self.wrangler) if taken else []


class _MarkReader:
    def __init__(self, stream: MarkStream) -> None:
        self.stream = stream
        self.rows = _Rows(stream.files, stream.first_ns, stream.last_ns)

    def between(self, low: int | None, high: int | None) -> list[Any]:
        stream = self.stream
        if low is None and high is None:
            # The whole window at once: the catalog's query builds the objects in Rust, in one pass. A
            # query per chunk would decode whole row groups each time, so chunks read forward instead.
            marks: list[Any] = stream.catalog.query(
                NautilusDataType.MarkPriceUpdate, [str(stream.instrument_id)], start=stream.first_ns, end=stream.last_ns
            )
            return marks
        return [item for batch in self.rows.until(high) for item in _marks_of(batch, stream)]


def _stamps(batch: pa.RecordBatch) -> Any:
    return batch.column("ts_init").cast(pa.int64()).to_numpy()


def _window_batches(files: tuple[Path, ...], first_ns: int, last_ns: int) -> Iterator[pa.RecordBatch]:
    for path in files:
        # Unbuffered: pre-buffering reads a whole row group's column chunks first (~60 MiB per stream at 1M rows).
        reader = pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
        for batch in reader.iter_batches(batch_size=BATCH_ROWS):
            begin, end = _span(_stamps(batch), first_ns, last_ns + 1)
            if begin < end:
                yield batch.slice(begin, end - begin)


def _bars_of(batches: list[pa.RecordBatch], wrangler: BarDataWrangler) -> list[Any]:
    table = pa.Table.from_batches(batches)
    index = table.schema.get_field_index("ts_init")
    shifted = pc.add(table["ts_init"].cast(pa.int64()), 1).cast(table.schema.field("ts_init").type)
    table = table.set_column(index, "ts_init", shifted)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    bars: list[Any] = wrangler.process_record_batch_bytes(sink.getvalue().to_pybytes())
    return bars


def _marks_of(batch: pa.RecordBatch, stream: MarkStream) -> list[Any]:
    instrument_id, precision = stream.instrument_id, stream.price_precision
    return [
        MarkPriceUpdate(instrument_id, Price.from_raw(raw, precision), ts_event, ts_init)
        for raw, ts_event, ts_init in zip(
            _fixed_raw(batch.column("value")),
            batch.column("ts_event").cast(pa.int64()).to_pylist(),
            batch.column("ts_init").cast(pa.int64()).to_pylist(),
            strict=True,
        )
    ]


def _fixed_raw(values: pa.Array) -> list[int]:
    # decimal128 values as Nautilus' fixed-point raw integers (FIXED_PRECISION decimals): the
    # unscaled 128-bit integers, rescaled, without a Decimal per value.
    scale = values.type.scale
    words = np.frombuffer(values.buffers()[1], dtype="<u8", count=2 * len(values), offset=values.offset * 16)
    low, high = words[0::2].tolist(), words[1::2].view(np.int64).tolist()
    if scale == FIXED_PRECISION:
        return [(h << 64) | lo for h, lo in zip(high, low, strict=True)]
    if scale < FIXED_PRECISION:
        factor = 10 ** (FIXED_PRECISION - scale)
        return [((h << 64) | lo) * factor for h, lo in zip(high, low, strict=True)]
    divisor = 10 ** (scale - FIXED_PRECISION)
    return [((h << 64) | lo) // divisor for h, lo in zip(high, low, strict=True)]
