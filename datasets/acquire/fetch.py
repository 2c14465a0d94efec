"""Resumable downloads of candles, mark candles and funding history through ccxt.

A fetch is planned first, from the store alone (no network): for each series the missing ranges
are what lies before the first and after the last stored row inside ``[since, until)``, so a second
call continues where the first stopped and downloads nothing twice. Each range is cut into request
windows the venue answers in one page (``limit`` candles, or ``limit`` hours of funding, since no
venue settles more often than hourly), so the plan knows its request count before it starts.

The run walks the windows through ccxt with the venue's own rate limit, retries transient errors
with capped backoff (``datasets.acquire.retry``), and writes every ``flush_rows`` rows through the
store's validated atomic writer with lineage (venue, endpoint, request range, fetch time). An
interruption loses at most the rows not yet flushed; the pages already buffered are flushed before
an error propagates. Candles are stored only once closed (the bar still forming is left for the next
call). Numbers are exact: candle floats through their shortest text (``datasets.numeric``), funding
rates from the raw text the venue sent (ccxt's ``info``).
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
from datasets.acquire.errors import FetchError, MalformedPageError, PlanError
from datasets.acquire.retry import RetryPolicy, call_with_retry
from datasets.importers.common import funding_frame
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
    """What a fetch will download for one series: half-open ``[start_ms, end_ms)`` ranges and requests."""

    series: Series
    ranges: tuple[tuple[int, int], ...]
    requests: int
    stored: tuple[datetime, datetime] | None

    def describe(self) -> str:
        stored = "nothing stored" if self.stored is None else f"stored {_iso(self.stored[0])} .. {_iso(self.stored[1])}"
        if not self.ranges:
            return f"{self.series.describe()}: up to date ({stored})"
        spans = ", ".join(f"[{_iso_ms(s)}, {_iso_ms(e)})" for s, e in self.ranges)
        return f"{self.series.describe()}: {spans}, {self.requests} requests ({stored})"


@dataclass(slots=True)
class FetchReport:
    """What a fetch did."""

    series: int = 0
    requests: int = 0
    rows: int = 0
    writes: int = 0
    partitions_written: int = 0

    def __str__(self) -> str:
        return (
            f"{self.series} series, {self.requests} requests, {self.rows:,} rows in {self.writes} writes, "
            f"{self.partitions_written} partition files written"
        )


def plan_series(
    store: Store,
    series: Series,
    *,
    since: datetime | None,
    until: datetime | None = None,
    now: datetime,
) -> SeriesPlan:
    """Return what is missing from the store for ``series`` in ``[since, until)``; no network.

    Without ``since`` the series continues from its last stored row. Candles end at the last closed bar.

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
    ranges: list[tuple[int, int]] = []
    if stored is None:
        ranges.append((start, end))
    else:
        low, high = _ms(stored[0]), _ms(stored[1])
        ranges.append((start, min(low - (0 if series.interval else series.margin_ms), end)))
        ranges.append((max(high + series.margin_ms, start), end))
    kept = tuple((s, e) for s, e in ranges if s < e)
    window = series.window_ms()
    requests = sum(1 if window is None else math.ceil((e - s) / window) for s, e in kept)
    return SeriesPlan(series=series, ranges=kept, requests=requests, stored=stored)


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


class Fetcher:
    """Run fetch plans against venues through ccxt and write what they return into a store.

    Parameters
    ----------
    store : Store
        Where rows go, through its validated atomic writer.
    exchange_factory : callable, optional
        ``(venue, market) -> ccxt.Exchange``; default ``make_exchange`` (real venues, rate-limited).
    retry : RetryPolicy, optional
        Backoff for transient errors.
    flush_rows : int
        Rows buffered before a write; an interruption loses at most this many downloaded rows.
    progress : bool
        Show a tqdm bar per series.
    clock : callable
        Returns the current UTC time (lineage ``fetched_at``).
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
    ) -> None:
        if flush_rows < 1:
            raise ValueError(f"flush_rows must be >= 1, was {flush_rows}")
        self.store = store
        self.exchange_factory: ExchangeFactory = exchange_factory or make_exchange
        self.retry = retry or RetryPolicy()
        self.flush_rows = flush_rows
        self.progress = progress
        self.clock = clock
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
            If a page is not in the venue's format; nothing of it is written.
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
        row = ccxt_venue(series.venue)
        exchange = self.exchange(series.venue, series.market)
        context = self._funding_context(series, plan.ranges[0][0]) if series.kind == "funding" else None
        buffer = _Buffer()
        window = series.window_ms()
        with tqdm(total=plan.requests, desc=series.describe(), unit="req", disable=not self.progress) as bar:
            try:
                for start, end in plan.ranges:
                    cursor = start
                    while cursor < end:
                        window_end = end if window is None else min(cursor + window, end)
                        frame, page, full = self._page(exchange, row, series, cursor, window_end, buffer.rows)
                        report.requests += 1
                        bar.update(1)
                        buffer.frames.append(frame)
                        buffer.pages.append(page)
                        buffer.rows += frame.height
                        buffer.requests += 1
                        buffer.start_ms = cursor if buffer.start_ms is None else buffer.start_ms
                        buffer.end_ms = window_end
                        buffer.endpoint = urlsplit(str(exchange.last_request_url or "")).path
                        cursor = self._advance(series, frame, full, window_end)
                        if buffer.rows >= self.flush_rows:
                            context = self._flush(exchange, series, buffer, context, report)
                            buffer = _Buffer()
            finally:
                if buffer.requests:
                    self._flush(exchange, series, buffer, context, report)

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
            return frame, [e.get("info") if isinstance(e, dict) else e for e in entries], full
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
        return frame, rows, isinstance(rows, list) and len(rows) >= limit

    def _call(self, exchange: ccxt.Exchange, call: Callable[[], Any], *, what: str) -> Any:
        def guarded() -> Any:
            try:
                return call()
            except ccxt.NetworkError:
                raise
            except ccxt.BaseError as exc:
                raise FetchError(
                    f"{what}: {exchange.id} refused the request ({type(exc).__name__}: {exc}); "
                    "check the symbol, interval and range (it is not retried: the error is not transient)"
                ) from exc
            except (TypeError, KeyError, ValueError, IndexError, AttributeError) as exc:
                raise MalformedPageError(
                    f"{what}: {exchange.id} answered a page ccxt cannot parse ({type(exc).__name__}: {exc}); "
                    f"nothing of it was written: {_body(exchange)}"
                ) from exc

        return call_with_retry(guarded, self.retry, what=what)

    def _require_json(self, exchange: ccxt.Exchange, what: str) -> None:
        if exchange.last_json_response is None and exchange.last_http_response:
            raise MalformedPageError(
                f"{what}: expected a JSON page from {exchange.id}, was {_body(exchange)}; nothing of it was written"
            )

    def _funding_context(self, series: Series, before_ms: int) -> pl.DataFrame:
        before = datetime.fromtimestamp(before_ms / 1000, UTC)
        return (
            self.store.scan("funding", end=before, venue=series.venue, symbol=series.symbol)
            .sort("ts")
            .tail(FUNDING_CONTEXT_ROWS)
            .select("symbol", "ts", "rate", "mark_price", "index_price", "premium")
            .collect()
        )

    def _flush(
        self,
        exchange: ccxt.Exchange,
        series: Series,
        buffer: _Buffer,
        context: pl.DataFrame | None,
        report: FetchReport,
    ) -> pl.DataFrame | None:
        frame = pl.concat(buffer.frames, how="vertical")
        if frame.height == 0:
            return context
        if series.kind == "funding" and context is not None:
            frame = _with_funding_intervals(frame, context, venue=series.venue)
            context = frame.drop(ROW, "venue", "interval").tail(FUNDING_CONTEXT_ROWS)
        payload = json.dumps(buffer.pages, sort_keys=True, default=str).encode()
        start_ms = buffer.start_ms if buffer.start_ms is not None else buffer.end_ms
        info = SourceInfo(
            source=f"{exchange.id} {buffer.endpoint} {ccxt_symbol(series.symbol)} {series.interval or ''}".rstrip(),
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
        return context


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
