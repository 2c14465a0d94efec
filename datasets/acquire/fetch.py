"""Resumable downloads of candles, mark candles and funding history through ccxt.

A fetch is planned first, from the store alone (no network): for each series the missing ranges
are what lies before the first and after the last stored row inside ``[since, until)``, so a second
call continues where the first stopped and downloads nothing twice; with ``fill_gaps`` the holes
between stored rows are planned too, except the known gaps (``datasets.gaps``). Each range is cut into request
windows the venue answers in one page (``limit`` candles, or ``limit`` hours of funding, since no
venue settles more often than hourly), so the plan knows its request count before it starts.

The run walks the windows through ccxt with the venue's own rate limit, retries transient errors
with capped backoff (``datasets.acquire.retry``), and writes every ``flush_rows`` rows through the
store's validated atomic writer with lineage (venue, endpoint, request range, fetch time). An
interruption loses at most the rows not yet flushed; the pages already buffered are flushed before
an error propagates. Every page is checked for completeness against the rows before it (see
``Fetcher``): a hole is asked for again with backoff and, if the venue keeps answering short,
recorded as a known gap in the lineage and reported. Candles are stored only once closed (the bar
still forming is left for the next call). Numbers are exact: candle floats through their shortest
text (``datasets.numeric``), funding rates from the raw text the venue sent (ccxt's ``info``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import ccxt
import polars as pl
from tqdm import tqdm

from datasets.acquire.ccxt_venues import CcxtVenue, FetchKind, ccxt_symbol, ccxt_venue, make_exchange
from datasets.acquire.errors import MalformedPageError, PlanError
from datasets.acquire.retry import RetryPolicy, call_ccxt
from datasets.gaps import LATE_FRACTION, Hole, KnownGap, find_holes, known_gaps
from datasets.importers.common import funding_frame
from datasets.intervals import infer_funding_interval
from datasets.numeric import decimal_from_float, decimal_from_text
from datasets.schemas import FUNDING, OHLCV, PL_DECIMAL, interval_secs
from datasets.store import SourceInfo, Store
from datasets.symbols import Market, market_of
from datasets.validate import ROW
from datasets.venues import VENUES

log = logging.getLogger(__name__)

IMPORTER = "ccxt-fetch"
IMPORTER_VERSION = "1"
HOUR_MS = 3_600_000
SNAP_TOLERANCE_MS = 30_000
DEFAULT_FLUSH_ROWS = 5_000
# Settlements read back from the store so a short page still shows its funding spacing.
FUNDING_CONTEXT_ROWS = 3
# Rows kept before the cursor to judge the next page against (enough to infer a funding interval).
KNOWN_TAIL = 4
DEFAULT_SHORT_ANSWER_ATTEMPTS = 3
ExchangeFactory = Callable[[str, Market], ccxt.Exchange]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Return the current time, tz-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Series:
    """One downloadable series: a venue's candles, mark candles or funding of one symbol."""

    venue: str
    kind: FetchKind
    symbol: str
    interval: str | None = None

    def __post_init__(self) -> None:
        row = ccxt_venue(self.venue)
        ccxt_symbol(self.symbol)
        if not row.supports(self.kind, self.market):
            raise PlanError(
                f"{self.venue} has no {self.kind} history for {self.market} symbols such as {self.symbol}: "
                "funding and mark candles exist for perps only, and not on every venue "
                "(see datasets/acquire/ccxt_venues.py)"
            )
        if self.kind == "funding":
            if self.interval is not None:
                raise PlanError("funding has no bar interval: leave --interval out for --kind funding")
        elif self.interval is None:
            raise PlanError(f"{self.kind} needs a bar interval such as 1h")
        else:
            interval_secs(self.interval)

    @property
    def market(self) -> Market:
        return market_of(self.symbol)

    @property
    def store_kind(self) -> str:
        return "funding" if self.kind == "funding" else "ohlcv"

    @property
    def price_type(self) -> str | None:
        return None if self.kind == "funding" else ("mark" if self.kind == "mark" else "trade")

    @property
    def step_ms(self) -> int:
        """One bar; for funding, 1 ms."""
        return interval_secs(self.interval) * 1000 if self.interval is not None else 1

    @property
    def margin_ms(self) -> int:
        """How far from a stored row a resumed range starts or ends so that row is not downloaded again.

        A bar for candles. Settlements are stored snapped to the minute while venues publish them with
        jitter, so a stored settlement stands for anything within half a minute of it.
        """
        return self.step_ms if self.interval is not None else SNAP_TOLERANCE_MS

    @property
    def filters(self) -> dict[str, str]:
        values = {"venue": self.venue, "symbol": self.symbol}
        if self.interval is not None and self.price_type is not None:
            values |= {"price_type": self.price_type, "interval": self.interval}
        return values

    def window_ms(self) -> int | None:
        """Return the span one request covers; None when one request returns the whole history."""
        row = ccxt_venue(self.venue)
        if self.kind == "funding":
            return None if row.funding_limit is None else row.funding_limit * HOUR_MS
        return row.ohlcv_limit[self.market] * self.step_ms

    def describe(self) -> str:
        return f"{self.venue} {self.symbol} {self.kind}" + (f" {self.interval}" if self.interval else "")


@dataclass(frozen=True, slots=True)
class SeriesPlan:
    """What a fetch will download for one series: half-open ``[start_ms, end_ms)`` ranges and requests.

    ``neighbours`` holds, for each range, the stored rows right before and after it (epoch ms, None
    where there is none): the fetch judges what arrives against them, so a hole between a stored row
    and the first row of a page is seen. ``holes`` counts the ranges that fill holes between stored
    rows, ``known_gaps`` the holes left out because the venue was asked for them before and never
    answered (``--retry-known-gaps`` asks again).
    """

    series: Series
    ranges: tuple[tuple[int, int], ...]
    requests: int
    stored: tuple[datetime, datetime] | None
    neighbours: tuple[tuple[int | None, int | None], ...] = ()
    holes: int = 0
    known_gaps: int = 0

    def describe(self) -> str:
        stored = "nothing stored" if self.stored is None else f"stored {_iso(self.stored[0])} .. {_iso(self.stored[1])}"
        if self.holes or self.known_gaps:
            stored += f"; {self.holes} holes to fill"
            if self.known_gaps:
                stored += f", {self.known_gaps} known gaps left out"
        if not self.ranges:
            return f"{self.series.describe()}: up to date ({stored})"
        spans = ", ".join(f"[{_iso_ms(s)}, {_iso_ms(e)})" for s, e in self.ranges)
        return f"{self.series.describe()}: {spans}, {self.requests} requests ({stored})"


@dataclass(slots=True)
class FetchReport:
    """What a fetch did: requests, rows, writes, holes filled by asking again, and known gaps recorded."""

    series: int = 0
    requests: int = 0
    rows: int = 0
    writes: int = 0
    partitions_written: int = 0
    holes_filled: int = 0
    known_gaps: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = (
            f"{self.series} series, {self.requests} requests, {self.rows:,} rows in {self.writes} writes, "
            f"{self.partitions_written} partition files written"
        )
        if self.holes_filled:
            text += f", {self.holes_filled} short answers completed by asking again"
        if self.known_gaps:
            text += f", {len(self.known_gaps)} known gaps recorded"
        return text


def plan_series(
    store: Store,
    series: Series,
    *,
    since: datetime | None,
    until: datetime | None = None,
    now: datetime,
    fill_gaps: bool = False,
    retry_known_gaps: bool = False,
) -> SeriesPlan:
    """Return what is missing from the store for ``series`` in ``[since, until)``; no network.

    Without ``since`` the series continues from its last stored row. Candles end at the last closed bar.
    With ``fill_gaps`` the holes between stored rows (by the rule of ``datasets.gaps``) are planned
    too, within ``[since, until)`` (the whole series without ``since``), except the known gaps recorded
    in the lineage, unless ``retry_known_gaps``.

    Raises
    ------
    PlanError
        If there is no ``since`` and nothing stored, or ``since`` is not before ``until``.
    """
    stored = stored_extent(store, series)
    now_ms = _ms(now)
    end = now_ms if until is None else min(_ms(until), now_ms)
    if series.kind != "funding":
        end = min(end, now_ms - series.step_ms + 1)
    if since is None:
        if stored is None:
            raise PlanError(f"{series.describe()}: nothing stored yet, so --since is needed to say where to start")
        start = _ms(stored[1]) + series.margin_ms
    else:
        start = _ms(since)
        if until is not None and start >= _ms(until):
            raise PlanError(f"--since must be before --until, was {_iso(since)} and {_iso(until)}")
    ranges: list[_Range] = []
    holes = skipped = 0
    if stored is None:
        ranges.append((start, end, None, None))
    else:
        low, high = _ms(stored[0]), _ms(stored[1])
        # A stored row bounds a range only where the range reaches it (not when --since/--until stop short).
        head_end = low - (0 if series.interval else series.margin_ms)
        ranges.append((start, min(head_end, end), None, low if head_end <= end else None))
        if fill_gaps:
            inner, skipped = _hole_ranges(
                store, series, low=_ms(since) if since is not None else low, high=end, retry_known_gaps=retry_known_gaps
            )
            holes = len(inner)
            ranges.extend(inner)
        tail_start = high + series.margin_ms
        ranges.append((max(tail_start, start), end, high if start <= tail_start else None, None))
    kept = [r for r in ranges if r[0] < r[1]]
    window = series.window_ms()
    requests = sum(1 if window is None else math.ceil((e - s) / window) for s, e, _, _ in kept)
    return SeriesPlan(
        series=series,
        ranges=tuple((s, e) for s, e, _, _ in kept),
        requests=requests,
        stored=stored,
        neighbours=tuple((before, after) for _, _, before, after in kept),
        holes=holes,
        known_gaps=skipped,
    )


_Range = tuple[int, int, int | None, int | None]


def stored_holes(store: Store, series: Series) -> list[Hole]:
    """Return the holes between the stored rows of a series (``datasets.gaps`` rule), oldest first."""
    columns = ["ts", "interval"] if series.kind == "funding" else ["ts"]
    paths = store.files(series.store_kind, **series.filters) if (store.root / series.store_kind).is_dir() else []
    if not paths:
        return []
    frame = pl.scan_parquet(paths, hive_partitioning=False).select(columns).sort("ts").collect()
    if frame.height < 2:
        return []
    ts = frame["ts"].dt.epoch("ms").to_list()
    if series.kind != "funding":
        return find_holes(ts, [series.step_ms] * len(ts))
    intervals = [None if label is None else interval_secs(label) * 1000 for label in frame["interval"].to_list()]
    return find_holes(ts, intervals, late_fraction=LATE_FRACTION)


def _hole_ranges(
    store: Store, series: Series, *, low: int, high: int, retry_known_gaps: bool
) -> tuple[list[_Range], int]:
    known = [] if retry_known_gaps else known_gaps(store, series.store_kind, series.filters)
    ranges: list[_Range] = []
    skipped = 0
    for hole in stored_holes(store, series):
        first, last = _utc(hole.first_ms), _utc(hole.last_ms)
        if any(gap.overlaps(first, last) for gap in known):
            skipped += 1
            continue
        start, end = _fill_range(series, hole.previous_ms, hole.next_ms)
        start, end = max(start, low), min(end, high)
        if start < end:
            ranges.append((start, end, hole.previous_ms, hole.next_ms))
    return ranges, skipped


def _fill_range(series: Series, previous_ms: int, next_ms: int) -> tuple[int, int]:
    # Between two rows, both left out: a bar after the previous one; a settlement half a minute off either.
    if series.interval is not None:
        return previous_ms + series.step_ms, next_ms
    return previous_ms + series.margin_ms, next_ms - series.margin_ms


def stored_extent(store: Store, series: Series) -> tuple[datetime, datetime] | None:
    """Return the first and last stored ``ts`` of a series, from the partition footers; None when nothing is stored."""
    filters = series.filters
    found = (
        [
            (info.ts_min, info.ts_max)
            for info in store.partitions(series.store_kind)
            if all(info.values.get(name) == value for name, value in filters.items())
        ]
        if (store.root / series.store_kind).is_dir()
        else []
    )
    if not found:
        return None
    return min(low for low, _ in found), max(high for _, high in found)


@dataclass(slots=True)
class _Buffer:
    frames: list[pl.DataFrame] = field(default_factory=list)
    pages: list[Any] = field(default_factory=list)
    rows: int = 0
    requests: int = 0
    start_ms: int | None = None
    end_ms: int = 0
    endpoint: str = ""
    gaps: list[tuple[KnownGap, Hole]] = field(default_factory=list)


@dataclass(slots=True)
class _Run:
    series: Series
    row: CcxtVenue
    exchange: ccxt.Exchange
    report: FetchReport
    progress: Any
    buffer: _Buffer = field(default_factory=_Buffer)
    context: pl.DataFrame | None = None


class _BadPage(Exception):
    """A page worth asking for again (not JSON, or contradicting itself); MalformedPageError if it stays so."""


class Fetcher:
    """Run fetch plans against venues through ccxt and write what they return into a store.

    After every page the fetcher compares what arrived with what the interval implies (every bar;
    every settlement on the funding clock in force) against the rows before it, stored or just
    downloaded. A hole (a short page, a page repeating an earlier one, rows missing inside a page)
    is asked for again with backoff; if the venue keeps answering short, the hole is recorded as a
    known gap in the lineage (``datasets.gaps``) and reported, instead of being taken as done. What
    lies before the first row a venue returns for a series with nothing stored before it is the
    start of the venue's history (a listing, or a history limit), and what lies after the last row
    it returns, up to the end of the plan, is what it has not published yet (or a delisting): neither
    is a hole, and the next fetch asks for the part after the last stored row again anyway.

    Parameters
    ----------
    store : Store
        Where rows go, through its validated atomic writer.
    exchange_factory : callable, optional
        ``(venue, market) -> ccxt.Exchange``; default ``make_exchange`` (real venues, rate-limited).
    retry : RetryPolicy, optional
        Backoff for transient errors, and for asking again after a short or malformed answer.
    flush_rows : int
        Rows buffered before a write; an interruption loses at most this many downloaded rows.
    progress : bool
        Show a tqdm bar per series.
    clock : callable
        Returns the current UTC time (lineage ``fetched_at``).
    short_answer_attempts : int
        Requests in total for a range the venue answers short (or with a page that is not JSON, or
        that holds one timestamp twice with different values) before it is recorded as a known gap
        (or the page refused).
    """

    def __init__(
        self,
        store: Store,
        *,
        exchange_factory: ExchangeFactory | None = None,
        retry: RetryPolicy | None = None,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        progress: bool = False,
        clock: Clock = utc_now,
        short_answer_attempts: int = DEFAULT_SHORT_ANSWER_ATTEMPTS,
    ) -> None:
        if flush_rows < 1:
            raise ValueError(f"flush_rows must be >= 1, was {flush_rows}")
        if short_answer_attempts < 1:
            raise ValueError(f"short_answer_attempts must be >= 1, was {short_answer_attempts}")
        self.store = store
        self.exchange_factory: ExchangeFactory = exchange_factory or make_exchange
        self.retry = retry or RetryPolicy()
        self.flush_rows = flush_rows
        self.progress = progress
        self.clock = clock
        self.short_answer_attempts = short_answer_attempts
        self._exchanges: dict[tuple[str, Market], ccxt.Exchange] = {}

    def run(self, plans: Sequence[SeriesPlan]) -> FetchReport:
        """Download every planned range and write it; return what was done.

        Raises
        ------
        RetryExhaustedError
            If a request kept failing transiently (rows already downloaded are written first).
        FetchError
            If a venue refused a request with a non-transient error.
        MalformedPageError
            If a page is not in the venue's format, or stays not JSON or self-contradicting when asked
            again; nothing of it is written.
        ValidationError, ConflictError
            If downloaded rows break the schema or disagree with stored rows.
        """
        report = FetchReport()
        for plan in plans:
            report.series += 1
            if not plan.ranges:
                log.info("%s", plan.describe())
                continue
            self._run_series(plan, report)
        return report

    def exchange(self, venue: str, market: Market) -> ccxt.Exchange:
        """Return the (cached) exchange of a venue's market with its markets loaded."""
        key = (venue, market)
        if key not in self._exchanges:
            exchange = self.exchange_factory(venue, market)
            self._call(exchange, lambda: exchange.load_markets(), what=f"{venue} {market}: load markets")
            self._exchanges[key] = exchange
        return self._exchanges[key]

    def _run_series(self, plan: SeriesPlan, report: FetchReport) -> None:
        series = plan.series
        exchange = self.exchange(series.venue, series.market)
        with tqdm(total=plan.requests, desc=series.describe(), unit="req", disable=not self.progress) as bar:
            run = _Run(series=series, row=ccxt_venue(series.venue), exchange=exchange, report=report, progress=bar)
            try:
                for index, (start, end) in enumerate(plan.ranges):
                    before, after = plan.neighbours[index] if index < len(plan.neighbours) else (None, None)
                    if series.kind == "funding":
                        run.context = self._funding_context(series, start)
                        known = _arrived_ms(series, run.context)
                    else:
                        known = [] if before is None else [before]
                    self._walk(run, start, end, known, after)
                    if series.kind == "funding":
                        self._flush(run)  # the next range reads its own context
            finally:
                if run.buffer.requests or run.buffer.gaps:
                    self._flush(run)

    def _walk(self, run: _Run, start: int, end: int, known: list[int], after: int | None) -> None:
        # `known` ends with the last row known before the cursor (stored or downloaded), if any.
        window = run.series.window_ms()
        cursor = start
        while cursor < end:
            window_end = end if window is None else min(cursor + window, end)
            frame, full = self._window(run, cursor, window_end)
            cursor = self._advance(run.series, frame, full, window_end)
            fresh = [ts for ts in _arrived_ms(run.series, frame) if not known or ts > known[-1]]
            if known and fresh:
                self._settle(run, known, fresh, None)
            known.extend(fresh)
            del known[:-KNOWN_TAIL]
        if after is not None and known:
            self._settle(run, known, [], after)

    def _settle(self, run: _Run, known: list[int], fresh: list[int], after: int | None) -> None:
        sequence = [*known, *fresh, *([] if after is None else [after])]
        for hole in _holes(run.series, sequence):
            if hole.previous_ms >= known[-1]:
                self._fill(run, hole, [ts for ts in sequence if ts < hole.previous_ms])

    def _fill(self, run: _Run, hole: Hole, history: list[int]) -> None:
        series = run.series
        window = series.window_ms()
        remaining, asked = [hole], 1
        while remaining and asked < self.short_answer_attempts:
            wait = self.retry.backoff_secs(asked)
            for part in remaining:
                log.warning(
                    "%s: the venue answered short: expected a %s every %s, %s; asking again (%d/%d) in %.1f s",
                    series.describe(),
                    "bar" if series.interval else "settlement",
                    _duration(part.interval_ms),
                    _hole_words(part),
                    asked + 1,
                    self.short_answer_attempts,
                    wait,
                )
            self.retry.sleep(wait)
            asked += 1
            still: list[Hole] = []
            for part in remaining:
                low, high = _fill_range(series, part.previous_ms, part.next_ms)
                arrived: list[int] = []
                cursor = low
                while cursor < high:
                    window_end = high if window is None else min(cursor + window, high)
                    frame, full = self._window(run, cursor, window_end)
                    cursor = self._advance(series, frame, full, window_end)
                    arrived.extend(_arrived_ms(series, frame))
                inner = sorted({ts for ts in arrived if part.previous_ms < ts < part.next_ms})
                history = sorted({*history, *inner})
                sequence = [*[ts for ts in history if ts < part.previous_ms][-KNOWN_TAIL:], part.previous_ms]
                sequence += [*inner, part.next_ms]
                still.extend(h for h in _holes(series, sequence) if h.previous_ms >= part.previous_ms)
            remaining = still
        if not remaining:
            run.report.holes_filled += 1
            log.info("%s: %s: complete after asking %d times", series.describe(), _hole_words(hole), asked)
            return
        for part in remaining:
            gap = KnownGap(
                first=_utc(part.first_ms),
                last=_utc(part.last_ms),
                missing=part.missing,
                attempts=asked,
                venue=series.venue,
                endpoint=run.buffer.endpoint or urlsplit(str(run.exchange.last_request_url or "")).path,
                recorded_at=_iso(self.clock()),
            )
            run.buffer.gaps.append((gap, part))
            run.report.known_gaps.append(f"{series.describe()}: {gap.describe()}")
            log.warning("%s: %s: recorded as a known gap", series.describe(), gap.describe())

    def _window(self, run: _Run, start: int, end: int) -> tuple[pl.DataFrame, bool]:
        frame, page, full = self._checked_page(run, start, end)
        buffer = run.buffer
        buffer.frames.append(frame)
        buffer.pages.append(page)
        buffer.rows += frame.height
        buffer.requests += 1
        buffer.start_ms = start if buffer.start_ms is None else min(buffer.start_ms, start)
        buffer.end_ms = max(buffer.end_ms, end)
        buffer.endpoint = urlsplit(str(run.exchange.last_request_url or "")).path
        if buffer.rows >= self.flush_rows:
            self._flush(run)
        return frame, full

    def _checked_page(self, run: _Run, start: int, end: int) -> tuple[pl.DataFrame, Any, bool]:
        for attempt in range(1, self.short_answer_attempts + 1):
            try:
                return self._page(run.exchange, run.row, run.series, start, end, run.buffer.rows)
            except _BadPage as exc:
                if attempt == self.short_answer_attempts:
                    raise MalformedPageError(
                        f"{exc}; asked {attempt} times, nothing of it was written: the venue or a proxy in "
                        "between is failing, run the same command again later (it resumes where it stopped)"
                    ) from None
                wait = self.retry.backoff_secs(attempt)
                log.warning("%s; asking again (%d/%d) in %.1f s", exc, attempt + 1, self.short_answer_attempts, wait)
                self.retry.sleep(wait)
            finally:
                run.report.requests += 1
                run.progress.update(1)
        raise AssertionError("unreachable: the loop returns or raises")

    def _advance(self, series: Series, frame: pl.DataFrame, full: bool, window_end: int) -> int:
        # A full page may have been cut at the limit (ccxt caps some limits below the venue's):
        # continue right after its last row instead of skipping the rest of the window.
        if full and frame.height:
            last = frame["ts"].max()
            assert isinstance(last, datetime)
            following = _ms(last) + series.step_ms
            if following < window_end:
                return following
        return window_end

    def _page(
        self, exchange: ccxt.Exchange, row: CcxtVenue, series: Series, start: int, end: int, offset: int
    ) -> tuple[pl.DataFrame, Any, bool]:
        symbol = ccxt_symbol(series.symbol)
        what = f"{series.describe()} [{_iso_ms(start)}, {_iso_ms(end)})"
        if series.kind == "funding":
            params: dict[str, Any] = {}
            if row.funding_until is not None:
                key, offset_ms = row.funding_until
                params[key] = end + offset_ms
            limit = row.funding_limit
            entries = self._call(
                exchange,
                lambda: exchange.fetch_funding_rate_history(symbol, since=start, limit=limit, params=params),
                what=what,
            )
            self._require_json(exchange, what)
            frame = funding_page(entries, row=row, series=series, start_ms=start, end_ms=end, where=what, offset=offset)
            full = limit is not None and isinstance(entries, list) and len(entries) >= limit
            return _without_repeats(frame, what), [e.get("info") if isinstance(e, dict) else e for e in entries], full
        params = {"price": "mark"} if series.kind == "mark" else {}
        if row.ohlcv_until is not None:
            params["until"] = end + row.ohlcv_until
        limit = row.ohlcv_limit[series.market]
        rows = self._call(
            exchange,
            lambda: exchange.fetch_ohlcv(symbol, series.interval, since=start, limit=limit, params=params),
            what=what,
        )
        self._require_json(exchange, what)
        frame = ohlcv_page(rows, series=series, start_ms=start, end_ms=end, where=what, offset=offset)
        return _without_repeats(frame, what), rows, isinstance(rows, list) and len(rows) >= limit

    def _call(self, exchange: ccxt.Exchange, call: Callable[[], Any], *, what: str) -> Any:
        return call_ccxt(
            call,
            self.retry,
            what=what,
            venue=exchange.id,
            refused_hint="check the symbol, interval and range",
            page=lambda: f"nothing of it was written: {_body(exchange)}",
        )

    def _require_json(self, exchange: ccxt.Exchange, what: str) -> None:
        if exchange.last_json_response is None and exchange.last_http_response:
            raise _BadPage(f"{what}: expected a JSON page from {exchange.id}, was {_body(exchange)}")

    def _funding_context(self, series: Series, before_ms: int) -> pl.DataFrame:
        before = datetime.fromtimestamp(before_ms / 1000, UTC)
        return (
            self.store.scan("funding", end=before, venue=series.venue, symbol=series.symbol)
            .sort("ts")
            .tail(FUNDING_CONTEXT_ROWS)
            .select("symbol", "ts", "rate", "mark_price", "index_price", "premium")
            .collect()
        )

    def _flush(self, run: _Run) -> None:
        series, exchange, buffer, report = run.series, run.exchange, run.buffer, run.report
        run.buffer = _Buffer()
        frame = pl.concat(buffer.frames, how="vertical") if buffer.frames else pl.DataFrame()
        if frame.height:
            if series.kind == "funding" and run.context is not None:
                frame = _with_funding_intervals(frame, run.context, venue=series.venue)
                run.context = frame.drop(ROW, "venue", "interval").tail(FUNDING_CONTEXT_ROWS)
            payload = json.dumps(buffer.pages, sort_keys=True, default=str).encode()
            start_ms = buffer.start_ms if buffer.start_ms is not None else buffer.end_ms
            info = SourceInfo(
                source=self._source(run, buffer.endpoint),
                sha256=hashlib.sha256(payload).hexdigest(),
                importer=IMPORTER,
                importer_version=IMPORTER_VERSION,
                extra=(
                    ("venue", series.venue),
                    ("exchange", str(exchange.id)),
                    ("endpoint", buffer.endpoint),
                    ("kind", series.kind),
                    ("request_start", _iso_ms(start_ms)),
                    ("request_end", _iso_ms(buffer.end_ms)),
                    ("requests", str(buffer.requests)),
                    ("fetched_at", _iso(self.clock())),
                    ("ccxt_version", str(ccxt.__version__)),
                ),
            )
            summary = self.store.write(series.store_kind, frame, info)
            report.rows += frame.height
            report.writes += 1
            report.partitions_written += len(summary.partitions_written)
            log.info("%s: wrote %d rows up to %s", series.describe(), frame.height, _iso_ms(buffer.end_ms))
        for gap, hole in buffer.gaps:
            self._record_gap(run, gap, hole)

    def _source(self, run: _Run, endpoint: str) -> str:
        series = run.series
        return f"{run.exchange.id} {endpoint} {ccxt_symbol(series.symbol)} {series.interval or ''}".rstrip()

    def _record_gap(self, run: _Run, gap: KnownGap, hole: Hole) -> None:
        series = run.series
        entry = gap.lineage_entry(
            series=series.describe(),
            source=self._source(run, gap.endpoint),
            importer=IMPORTER,
            importer_version=IMPORTER_VERSION,
        )
        years = {
            int(path.parent.name.removeprefix("year="))
            for path in self.store.files(series.store_kind, **series.filters)
        }
        # The partition of the row before the gap holds it; a gap between years falls back on the one after.
        for ms in (hole.previous_ms, hole.next_ms):
            year = _utc(ms).year
            if year in years:
                self.store.annotate(series.store_kind, {**series.filters, "year": str(year)}, [entry])
                return
        log.warning(
            "%s: %s: no partition to record it in (nothing stored around it)", series.describe(), gap.describe()
        )


def ohlcv_page(rows: Any, *, series: Series, start_ms: int, end_ms: int, where: str, offset: int = 0) -> pl.DataFrame:
    """Return a ccxt ``fetch_ohlcv`` page as canonical ``ohlcv`` rows in ``[start_ms, end_ms)``, with ``_row``.

    Floats convert through their shortest text, which recovers the decimals the venue sent. Mark
    candles carry no volume (venues send 0 or nothing), stored as null.

    Raises
    ------
    MalformedPageError
        If the page is not a list of ``[ts, open, high, low, close, volume]`` with numbers in place.
    """
    if not isinstance(rows, list):
        raise MalformedPageError(f"{where}: expected a list of candles, was {type(rows).__name__}")
    kept: list[list[Any]] = []
    for index, candle in enumerate(rows):
        if (
            not isinstance(candle, list)
            or len(candle) < 5
            or not isinstance(candle[0], int)
            or any(not isinstance(v, (int, float)) for v in candle[1:5])
        ):
            raise MalformedPageError(
                f"{where}: candle {index}: expected [ts, open, high, low, close, volume] numbers, was {candle!r}; "
                "nothing of this page was written"
            )
        if start_ms <= candle[0] < end_ms:
            traded = candle[5] if len(candle) > 5 and isinstance(candle[5], (int, float)) else None
            kept.append([candle[0], *(float(v) for v in candle[1:5]), None if traded is None else float(traded)])
    frame = pl.DataFrame(
        kept,
        schema={
            "ts": pl.Int64,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        },
        orient="row",
    )
    volume = decimal_from_float(pl.col("volume")) if series.kind == "ohlcv" else pl.lit(None, dtype=PL_DECIMAL)
    return frame.select(
        pl.lit(series.venue).alias("venue"),
        pl.lit(series.symbol).alias("symbol"),
        pl.lit(series.market).alias("market"),
        pl.lit(series.price_type).alias("price_type"),
        pl.lit(series.interval).alias("interval"),
        _utc_ns(pl.col("ts")).alias("ts"),
        *(decimal_from_float(pl.col(c)).alias(c) for c in ("open", "high", "low", "close")),
        volume.alias("volume"),
        (pl.int_range(pl.len(), dtype=pl.Int64) + offset).alias(ROW),
    ).select(*OHLCV.columns, ROW)


def funding_page(
    entries: Any, *, row: CcxtVenue, series: Series, start_ms: int, end_ms: int, where: str, offset: int = 0
) -> pl.DataFrame:
    """Return a ccxt ``fetch_funding_rate_history`` page as parsed ``symbol, ts, rate, mark_price, premium`` rows.

    Rates come from the raw record's text (``row.funding_rate_keys``), never from ccxt's float.

    Raises
    ------
    MalformedPageError
        If an entry has no timestamp, no raw record, or no decimal rate under the venue's keys.
    """
    if not isinstance(entries, list):
        raise MalformedPageError(f"{where}: expected a list of funding entries, was {type(entries).__name__}")
    records: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        info = entry.get("info") if isinstance(entry, dict) else None
        ts = entry.get("timestamp") if isinstance(entry, dict) else None
        rate = _first_text(info, row.funding_rate_keys) if isinstance(info, dict) else None
        if not isinstance(ts, int) or rate is None:
            raise MalformedPageError(
                f"{where}: funding entry {index}: expected a timestamp and a rate under "
                f"{' or '.join(row.funding_rate_keys)}, was {entry!r}; nothing of this page was written"
            )
        if not start_ms <= ts < end_ms:
            continue
        assert isinstance(info, dict)
        records.append(
            {
                "ts": ts,
                "rate": rate,
                "mark_price": _first_text(info, (row.funding_mark_key,) if row.funding_mark_key else ()),
                "premium": _first_text(info, (row.funding_premium_key,) if row.funding_premium_key else ()),
            }
        )
    frame = pl.DataFrame(
        records, schema={"ts": pl.Int64, "rate": pl.String, "mark_price": pl.String, "premium": pl.String}
    )
    parsed = frame.select(
        pl.lit(series.symbol).alias("symbol"),
        _utc_ns(pl.col("ts")).alias("ts"),
        *(decimal_from_text(pl.col(c)).alias(c) for c in ("rate", "mark_price", "premium")),
        pl.lit(None, dtype=PL_DECIMAL).alias("index_price"),
        (pl.int_range(pl.len(), dtype=pl.Int64) + offset).alias(ROW),
    )
    bad = parsed.select(pl.col("rate").is_null().arg_true().first()).item()
    if bad is not None:
        raise MalformedPageError(
            f"{where}: funding entry {bad}: rate {records[bad]['rate']!r} is not a decimal number; "
            "nothing of this page was written"
        )
    return parsed


def _with_funding_intervals(parsed: pl.DataFrame, context: pl.DataFrame, *, venue: str) -> pl.DataFrame:
    default = VENUES[venue].funding_interval if venue in VENUES else "8h"
    earlier = context.with_columns(pl.lit(-1, dtype=pl.Int64).alias(ROW)).select(parsed.columns)
    combined = pl.concat([earlier, parsed], how="vertical")
    return (
        funding_frame(combined, venue=venue, default_interval=default)
        .filter(pl.col(ROW) >= 0)
        .select(*FUNDING.columns, ROW)
    )


def _utc_ns(epoch_ms: pl.Expr) -> pl.Expr:
    return (epoch_ms * 1_000_000).cast(pl.Datetime("ns", "UTC"))


def _first_text(info: dict[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        value = info.get(key)
        if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
            continue
        text = str(value).strip()
        if text:
            return text
    return None


def _body(exchange: ccxt.Exchange) -> str:
    body = str(exchange.last_http_response or "")
    return repr(body[:120] + ("..." if len(body) > 120 else ""))


def _ms(value: datetime) -> int:
    return int(value.astimezone(UTC).timestamp() * 1000)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _iso_ms(value: int) -> str:
    return _iso(datetime.fromtimestamp(value / 1000, UTC))


def _utc(value_ms: int) -> datetime:
    return datetime.fromtimestamp(value_ms / 1000, UTC)


def _arrived_ms(series: Series, frame: pl.DataFrame) -> list[int]:
    if frame.height == 0:
        return []
    ts = frame["ts"].dt.epoch("ms")
    if series.kind == "funding":
        ts = (ts + 30_000) // 60_000 * 60_000  # settlements are judged on the minute, as they are stored
    return sorted(set(ts.to_list()))


def _holes(series: Series, sequence: list[int]) -> list[Hole]:
    if series.interval is not None:
        return find_holes(sequence, [series.step_ms] * len(sequence))
    default = interval_secs(VENUES[series.venue].funding_interval if series.venue in VENUES else "8h") * 1000
    labels = (
        pl.DataFrame({"ts": pl.Series(sequence, dtype=pl.Int64).cast(pl.Datetime("ms", "UTC"))})
        .select(infer_funding_interval(pl.col("ts")))
        .to_series()
        .to_list()
    )
    intervals = [default if label is None else interval_secs(label) * 1000 for label in labels]
    return find_holes(sequence, intervals, late_fraction=LATE_FRACTION)


def _without_repeats(frame: pl.DataFrame, where: str) -> pl.DataFrame:
    # A row sent twice alike is dropped; one timestamp with two different rows makes the page worth asking again.
    if frame.height < 2 or frame["ts"].is_unique().all():
        return frame
    values = [c for c in frame.columns if c != ROW]
    rows = frame.unique(subset=values, keep="first", maintain_order=True)
    clashing = rows.filter(pl.col("ts").is_duplicated()).sort("ts", ROW)
    if clashing.height == 0:
        return rows
    first, second = clashing.row(0, named=True), clashing.row(1, named=True)
    shown = [c for c in values if first[c] != second[c]]
    return_values = ", ".join(f"{c} {first[c]} and {second[c]}" for c in shown)
    raise _BadPage(
        f"{where}: the page holds {clashing['ts'].n_unique()} timestamps twice with different values, "
        f"first {_iso(first['ts'])}: {return_values}"
    )


def _duration(value_ms: int) -> str:
    secs = value_ms // 1000
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if secs % size == 0:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def _hole_words(hole: Hole) -> str:
    when = (
        f"at {_iso_ms(hole.first_ms)}"
        if hole.missing == 1
        else f"from {_iso_ms(hole.first_ms)} to {_iso_ms(hole.last_ms)}"
    )
    return f"{hole.missing} missing {when} (between rows at {_iso_ms(hole.previous_ms)} and {_iso_ms(hole.next_ms)})"
