"""Download funding history of the research-only venues: dYdX v4, Drift and Lighter.

- dYdX: through ccxt's ``dydx`` class (``load_markets`` from the indexer's ``/v4/perpetualMarkets``,
  ``fetch_funding_rate_history`` from ``/v4/historicalFunding/{ticker}``), 1,000 settlements a page,
  paged backwards with ``until`` (``effectiveBeforeOrAt``) from the end of the range.
- Lighter: HTTP ``GET /api/v1/orderBooks`` (market ids by symbol) and ``GET /api/v1/fundings``
  (``market_id, resolution=1h, start_timestamp, end_timestamp, count_back``), paged forwards in
  windows of ``LIGHTER_PAGE_HOURS`` settlements.
- Drift: HTTP ``GET /fundingRates?marketName=SOL-PERP`` on Drift's data API: one request answers the
  market's recent records (the API keeps about the last month), filtered to the range.

Every page is parsed by the venue's importer (``datasets.importers.{dydx,lighter,drift}``), so a
downloaded record and an imported file of the same payload store the same rows. Transient failures
(connection errors, timeouts, HTTP 429 and 5xx; ccxt's ``NetworkError`` family) are retried with the
capped backoff of ``datasets.acquire.retry``; any other HTTP status fails at once. A run resumes after
the last stored settlement. ``plan_dex_funding`` says, from the store alone, what a run from there to now
will download (``python -m datasets update`` prints it beside the ccxt venues' plans).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import ccxt
import httpx
import polars as pl
from tqdm import tqdm

from datasets.acquire.errors import FetchError, MalformedPageError, PlanError
from datasets.acquire.retry import RetryPolicy, call_ccxt, call_with_retry
from datasets.importers.dex_funding import dex_symbol
from datasets.importers.drift import drift_funding_rows
from datasets.importers.dydx import dydx_funding_rows
from datasets.importers.lighter import lighter_funding_rows
from datasets.store import SourceInfo, Store
from datasets.symbols import PERP_SUFFIX
from datasets.venues import data_venue

log = logging.getLogger(__name__)

DEX_VENUES = ("dydx", "drift", "lighter")
BASE_URLS = {
    "dydx": "https://indexer.dydx.trade",
    "drift": "https://data.api.drift.trade",
    "lighter": "https://mainnet.zklighter.elliot.ai",
}
TIMEOUT_SECS = 10.0
DYDX_PAGE = 1_000
LIGHTER_PAGE_HOURS = 500
# Settlements one history request answers (hourly funding: hours); None: one request answers them all.
PAGE_SETTLEMENTS: dict[str, int | None] = {"dydx": DYDX_PAGE, "lighter": LIGHTER_PAGE_HOURS, "drift": None}
# Venues whose fetch first asks for the market list (once per run): dYdX load_markets, Lighter orderBooks.
LISTS_MARKETS = frozenset({"dydx", "lighter"})
IMPORTER = "datasets.acquire.dex_funding"
IMPORTER_VERSION = "1"
_HOUR = timedelta(hours=1)


class _TransientStatus(Exception):
    """An HTTP 429 or 5xx answer: worth asking again."""


@dataclass(slots=True)
class DexFetchReport:
    """What one fetch stored."""

    venue: str
    symbols: int = 0
    requests: int = 0
    rows: int = 0
    partitions_written: int = 0

    def __str__(self) -> str:
        return (
            f"fetched {self.venue} funding of {self.symbols} symbols in {self.requests} requests: "
            f"{self.rows:,} rows, {self.partitions_written} partitions written"
        )


@dataclass(frozen=True, slots=True)
class DexPlan:
    """What a run will download for one symbol: ``[start, end)``, from the hour after its last stored settlement."""

    venue: str
    symbol: str
    stored: tuple[datetime, datetime]
    start: datetime
    end: datetime

    @property
    def requests(self) -> int:
        """History requests of the range (the venue's market list, asked once per run, aside)."""
        return history_requests(self.venue, self.start, self.end)

    def describe(self) -> str:
        stored = f"stored {_iso(self.stored[0])} .. {_iso(self.stored[1])}"
        if self.start >= self.end:
            return f"{self.venue} {self.symbol} funding: up to date ({stored})"
        span = f"[{_iso(self.start)}, {_iso(self.end)})"
        return f"{self.venue} {self.symbol} funding: {span}, {self.requests} requests ({stored})"


def history_requests(venue: str, start: datetime, end: datetime) -> int:
    """Return the requests a fetch of one symbol's hourly history over ``[start, end)`` makes, market list aside."""
    settlements = max(0, math.ceil((end - start) / _HOUR))
    per_page = PAGE_SETTLEMENTS[venue]
    if settlements == 0:
        return 0
    return 1 if per_page is None else math.ceil(settlements / per_page)


def plan_dex_funding(store: Store, venue: str, symbol: str, *, now: datetime) -> DexPlan:
    """Return what a run brings ``symbol``'s stored funding on ``venue`` up to ``now`` with; no network.

    Raises
    ------
    PlanError
        If the venue is not one of these, or the store holds no funding of the symbol there.
    """
    if venue not in DEX_VENUES:
        raise PlanError(f"expected a research funding venue ({', '.join(DEX_VENUES)}), was {venue!r}")
    first, last = (
        store.scan("funding", venue=venue, symbol=symbol)
        .select(pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"))
        .collect()
        .row(0)
    )
    if last is None:
        raise PlanError(f"{venue} {symbol}: the store holds no funding to continue; fetch it first (--since)")
    return DexPlan(venue, symbol, (first, last), last + _HOUR, now)


def planned_requests(plans: Sequence[DexPlan]) -> int:
    """Return the requests of running ``plans``: their history pages and one market list per venue that lists."""
    pending = [plan for plan in plans if plan.requests]
    return sum(plan.requests for plan in pending) + len({p.venue for p in pending if p.venue in LISTS_MARKETS})


def dex_base(text: str) -> str:
    """Return the base of a command-line symbol for these venues (``BTC``, ``BTC-USDC-PERP`` -> ``BTC``).

    Raises
    ------
    PlanError
        If the symbol is a spot pair or not settled in USDC.
    """
    upper = text.strip().upper()
    if "-" not in upper:
        return upper
    if upper.endswith(PERP_SUFFIX) and upper == dex_symbol(upper.split("-")[0]):
        return upper.split("-")[0]
    raise PlanError(f"expected a bare base (BTC) or a USDC perp (BTC-USDC-PERP) on these venues, was {text!r}")


def fetch_dex_funding(
    store: Store,
    venue: str,
    bases: list[str],
    *,
    since: datetime | None,
    until: datetime,
    api_url: str | None = None,
    retry: RetryPolicy | None = None,
    progress: bool = False,
) -> DexFetchReport:
    """Download and store the hourly funding of ``bases`` on a research-only venue over ``[since, until)``.

    Parameters
    ----------
    store : Store
        Where the rows go.
    venue : str
        ``dydx``, ``drift`` or ``lighter``.
    bases : list of str
        Market bases (``BTC``).
    since : datetime, optional
        First instant; default after the last stored settlement, else the venue's launch.
    until : datetime
        End instant (exclusive).
    api_url : str, optional
        Scheme and host to send requests to instead of the venue's (a mirror, a loopback server in tests).
    retry : RetryPolicy, optional
        Attempts and backoff on transient errors.
    progress : bool
        Show a tqdm bar of requests per symbol.

    Raises
    ------
    PlanError
        If the venue is not one of these or a base is not listed.
    FetchError
        If the venue refused a request (not retried) or kept failing transiently.
    MalformedPageError
        If a page is not the venue's format; nothing of it is written.
    """
    if venue not in DEX_VENUES:
        raise PlanError(f"expected a research funding venue ({', '.join(DEX_VENUES)}), was {venue!r}")
    policy = retry or RetryPolicy()
    base_url = (api_url or BASE_URLS[venue]).rstrip("/")
    report = DexFetchReport(venue)
    with httpx.Client(base_url=base_url, timeout=TIMEOUT_SECS) as client:
        source = _Source(venue, base_url, client, policy, report)
        for base in bases:
            symbol = dex_symbol(base)
            start = since or _resume_from(store, venue, symbol)
            if start >= until:
                continue
            # The market list is asked with the venue's first symbol.
            total = history_requests(venue, start, until) + int(venue in LISTS_MARKETS and report.symbols == 0)
            with tqdm(total=total, desc=f"{venue} {symbol} funding", unit="req", disable=not progress) as bar:
                source.bar = bar
                frame, endpoint, pages = source.history(base, symbol, start, until)
            report.symbols += 1
            if frame.height:
                frame = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < until))
            if frame.height == 0:
                log.info("%s %s: no settlements in [%s, %s)", venue, symbol, start, until)
                continue
            payload = json.dumps(pages, sort_keys=True, default=str).encode()
            info = SourceInfo(
                source=f"{venue} {endpoint}",
                sha256=hashlib.sha256(payload).hexdigest(),
                importer=IMPORTER,
                importer_version=IMPORTER_VERSION,
                extra=(
                    ("venue", venue),
                    ("endpoint", endpoint),
                    ("request_start", start.isoformat()),
                    ("request_end", until.isoformat()),
                    ("fetched_at", datetime.now(UTC).isoformat()),
                ),
            )
            summary = store.write("funding", frame, info)
            report.rows += frame.height
            report.partitions_written += len(summary.partitions_written)
    return report


def _resume_from(store: Store, venue: str, symbol: str) -> datetime:
    last = store.scan("funding", venue=venue, symbol=symbol).select(pl.col("ts").max()).collect().item()
    if last is not None:
        return last + _HOUR  # type: ignore[no-any-return]
    launch = data_venue(venue).launch("perp")
    return datetime(launch.year, launch.month, launch.day, tzinfo=UTC)


@dataclass(slots=True)
class _Source:
    venue: str
    base_url: str
    client: httpx.Client
    policy: RetryPolicy
    report: DexFetchReport
    exchange: ccxt.Exchange | None = None
    lighter_markets: dict[str, Any] | None = None
    bar: Any = None

    def history(self, base: str, symbol: str, start: datetime, end: datetime) -> tuple[pl.DataFrame, str, list[Any]]:
        readers = {"dydx": self._dydx, "lighter": self._lighter, "drift": self._drift}
        return readers[self.venue](base, symbol, start, end)

    def _get(self, path: str, params: dict[str, str]) -> Any:
        what = f"{self.venue} GET {path}"

        def once() -> Any:
            response = self.client.get(path, params=params)
            if response.status_code == 429 or response.status_code >= 500:
                raise _TransientStatus(f"HTTP {response.status_code}")
            if response.status_code != 200:
                raise FetchError(
                    f"{what}: the venue refused the request (HTTP {response.status_code}: {response.text[:200]}); "
                    "it is not retried: check the symbol and the range"
                )
            try:
                return response.json()
            except ValueError as exc:
                raise MalformedPageError(
                    f"{what}: expected JSON, was {response.text[:80]!r}; nothing of this page was written"
                ) from exc

        self.report.requests += 1
        answer = call_with_retry(once, self.policy, what=what, transient=(_TransientStatus, httpx.TransportError))
        self._advance()
        return answer

    def _ccxt(self, request: Callable[[], Any], what: str) -> Any:
        self.report.requests += 1
        answer = call_ccxt(request, self.policy, what=what, venue="dydx", refused_hint="check the symbol and range")
        self._advance()
        return answer

    def _advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def _dydx_exchange(self) -> ccxt.Exchange:
        if self.exchange is None:
            exchange = ccxt.dydx({"enableRateLimit": True, "timeout": int(TIMEOUT_SECS * 1000)})
            exchange.urls["api"]["indexer"] = f"{self.base_url}/v4"
            self._ccxt(exchange.load_markets, "dydx load_markets")
            self.exchange = exchange
        return self.exchange

    def _dydx(self, base: str, symbol: str, start: datetime, end: datetime) -> tuple[pl.DataFrame, str, list[Any]]:
        exchange = self._dydx_exchange()
        market = f"{base}/USDC:USDC"
        endpoint = f"GET /v4/historicalFunding/{base}-USD"
        call = self._ccxt
        if market not in exchange.markets:
            raise PlanError(f"dydx lists no perp {base}-USD: expected one of its markets, e.g. BTC, ETH")
        records: list[Any] = []
        until_ms = _ms(end) - 1
        start_ms = _ms(start)
        while True:
            request = partial(exchange.fetch_funding_rate_history, market, limit=DYDX_PAGE, params={"until": until_ms})
            page = call(request, f"dydx {endpoint}")
            records = [entry["info"] for entry in page] + records
            if len(page) < DYDX_PAGE or page[0]["timestamp"] <= start_ms:
                break
            until_ms = int(page[0]["timestamp"]) - 1
        path = Path(f"<dydx {endpoint}>")
        if not records:
            return pl.DataFrame(), endpoint, []
        return dydx_funding_rows([records], path=path), endpoint, records

    def _lighter_listed(self) -> dict[str, Any]:
        if self.lighter_markets is None:
            books = self._get("/api/v1/orderBooks", {})
            entries = books.get("order_books") if isinstance(books, dict) else None
            if not isinstance(entries, list) or not all(isinstance(b, dict) for b in entries):
                raise MalformedPageError(
                    f"lighter GET /api/v1/orderBooks: expected an 'order_books' list, was {books!r:.120}"
                )
            self.lighter_markets = {str(b.get("symbol")).upper(): b.get("market_id") for b in entries}
        return self.lighter_markets

    def _lighter(self, base: str, symbol: str, start: datetime, end: datetime) -> tuple[pl.DataFrame, str, list[Any]]:
        listed = self._lighter_listed()
        if base not in listed:
            raise PlanError(f"lighter lists no market {base}: expected one of {', '.join(sorted(listed)) or 'none'}")
        endpoint = f"GET /api/v1/fundings market_id={listed[base]}"
        pages: list[Any] = []
        cursor = start
        while cursor < end:
            stop = min(end, cursor + LIGHTER_PAGE_HOURS * _HOUR)
            params = {
                "market_id": str(listed[base]),
                "resolution": "1h",
                "start_timestamp": str(int(cursor.timestamp())),
                # One second before the next window: the window holds at most LIGHTER_PAGE_HOURS settlements
                # whether the venue's end is inclusive or not.
                "end_timestamp": str(int(stop.timestamp()) - 1),
                "count_back": str(LIGHTER_PAGE_HOURS),
            }
            page = self._get("/api/v1/fundings", params)
            pages.append(page)
            cursor = stop
        items = [page.get("fundings") if isinstance(page, dict) else None for page in pages]
        if any(not isinstance(i, list) for i in items):
            raise MalformedPageError(f"lighter {endpoint}: a page has no 'fundings' list; nothing was written")
        if not any(items):
            return pl.DataFrame(), endpoint, pages
        frame = lighter_funding_rows([i for i in items if i], symbol=symbol, path=Path(f"<lighter {endpoint}>"))
        return frame, endpoint, pages

    def _drift(self, base: str, symbol: str, start: datetime, end: datetime) -> tuple[pl.DataFrame, str, list[Any]]:
        # One request: the data API answers the market's recent records; the caller keeps [start, end).
        endpoint = f"GET /fundingRates?marketName={base}-PERP"
        page = self._get("/fundingRates", {"marketName": f"{base}-PERP"})
        items = page.get("fundingRates") if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise MalformedPageError(f"drift {endpoint}: expected a 'fundingRates' list; nothing was written")
        if not items:
            return pl.DataFrame(), endpoint, [page]
        return drift_funding_rows([items], symbol=symbol, path=Path(f"<drift {endpoint}>")), endpoint, [page]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ms(value: datetime) -> int:
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
