"""Fetches through the real ccxt ``okx``, ``hyperliquid`` and ``krakenfutures`` classes against loopback venues.

Nothing leaves 127.0.0.1: ``tests.kit.venues`` answers in each venue's REST format (OKX v5,
Hyperliquid ``POST /info``, Kraken Futures v3/v4 and charts), markets endpoints included, so
``load_markets`` runs offline. Each market's last bar closes exactly at ``now``, the edge where an
off-by-one in a venue's end bound would drop the newest closed bar.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import polars as pl
import pytest

from datasets.acquire.ccxt_venues import FetchKind, make_exchange
from datasets.acquire.errors import FetchError
from datasets.acquire.fetch import Fetcher, FetchReport, Series, SeriesPlan, plan_series
from datasets.acquire.retry import RetryPolicy
from datasets.store import Store
from datasets.symbols import Market
from tests.kit.venues import (
    HOUR_MS,
    HYPERLIQUID_CANDLE_HISTORY,
    FakeVenueServer,
    Fault,
    Route,
    SyntheticMarket,
    hyperliquid_premium,
    hyperliquid_routes,
    hyperliquid_time,
    kraken_futures_routes,
    okx_routes,
)

START = datetime(2024, 1, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
Window = tuple[FetchKind, int, int]  # kind, first and last ms a request asked for (inclusive)


@dataclass(frozen=True)
class Venue:
    name: str
    routes: Callable[[dict[str, SyntheticMarket]], dict[str, Route]]
    ticker: str
    symbol: str
    market: SyntheticMarket
    kinds: tuple[FetchKind, ...]
    funding_interval: str

    @property
    def now(self) -> datetime:
        return _utc(self.market.start_ms + self.market.bars * self.market.step_ms)

    @property
    def stored_bars(self) -> int:
        return min(self.market.bars, HYPERLIQUID_CANDLE_HISTORY) if self.name == "hyperliquid" else self.market.bars


VENUES = {
    # 350 bars: 4 pages of 100 candles and 4 of mark candles; 44 settlements (8h) in 4 windows of 100 h.
    "okx": Venue(
        "okx",
        okx_routes,
        "BTC-USDT-SWAP",
        "BTC-USDT-PERP",
        SyntheticMarket(start_ms=START_MS, bars=350, settlements=44),
        ("ohlcv", "mark", "funding"),
        "8h",
    ),
    # 7,000 bars, of which the venue keeps the newest 5,000 (2 pages); 7,000 hourly settlements, 14 pages of 500.
    "hyperliquid": Venue(
        "hyperliquid",
        hyperliquid_routes,
        "BTC",
        "BTC-USDC-PERP",
        SyntheticMarket(start_ms=START_MS, bars=7_000, settlements=7_000, funding_step_ms=HOUR_MS),
        ("ohlcv", "funding"),
        "1h",
    ),
    # 4,500 bars: 3 pages of 2,000 candles and of mark candles; 4,500 hourly settlements in one answer.
    "kraken": Venue(
        "kraken",
        kraken_futures_routes,
        "PF_XBTUSD",
        "BTC-USD-PERP",
        SyntheticMarket(start_ms=START_MS, bars=4_500, settlements=4_500, funding_step_ms=HOUR_MS),
        ("ohlcv", "mark", "funding"),
        "1h",
    ),
}


@pytest.fixture(params=list(VENUES))
def venue(request: pytest.FixtureRequest) -> Venue:
    return VENUES[str(request.param)]


@pytest.fixture
def server(venue: Venue) -> Iterator[FakeVenueServer]:
    with FakeVenueServer(venue.routes({venue.ticker: venue.market})) as fake:
        yield fake


def _fetcher(store: Store, server: FakeVenueServer, *, sleeps: list[float] | None = None) -> Fetcher:
    def make(name: str, market: Market) -> ccxt.Exchange:
        exchange = make_exchange(name, market, api_url=server.base_url, enable_rate_limit=False, timeout_ms=5_000)
        exchange.session.trust_env = False  # never route loopback requests through a proxy from the environment
        return exchange

    policy = RetryPolicy(attempts=3, base_secs=0.5, cap_secs=1.0, sleep=(sleeps if sleeps is not None else []).append)
    return Fetcher(store, exchange_factory=make, retry=policy, flush_rows=1_500)


def _plans(store: Store, venue: Venue, *, now: datetime | None = None) -> list[SeriesPlan]:
    return [
        plan_series(
            store,
            Series(venue.name, kind, venue.symbol, None if kind == "funding" else "1h"),
            since=START,
            now=now or venue.now,
        )
        for kind in venue.kinds
    ]


def _run(store: Store, server: FakeVenueServer, venue: Venue, *, now: datetime | None = None) -> FetchReport:
    return _fetcher(store, server).run(_plans(store, venue, now=now))


def _windows(server: FakeVenueServer) -> list[Window]:
    """Return what each data request asked for, read from the venue's own parameters."""
    found: list[Window] = []
    for path, query in server.requests:
        window = _window(path, query)
        if window is not None:
            found.append(window)
    return found


def _window(path: str, query: dict[str, Any]) -> Window | None:
    if path.startswith("/api/v5/market/") or path == "/api/v5/public/funding-rate-history":
        kind: FetchKind = "funding" if "funding" in path else "mark" if "mark-price" in path else "ohlcv"
        return kind, int(query["before"]) + 1, int(query["after"]) - 1  # OKX bounds are exclusive
    if path == "/info" and query["type"] == "candleSnapshot":
        return "ohlcv", int(query["req"]["startTime"]), int(query["req"]["endTime"])
    if path == "/info" and query["type"] == "fundingHistory":
        return "funding", int(query["startTime"]), int(query["endTime"])
    if path.startswith("/api/charts/v1/"):
        kind = "mark" if "/mark/" in path else "ohlcv"
        return kind, int(query["from"]) * 1000, int(query["to"]) * 1000 + 999
    return None


def _kinds_requested(server: FakeVenueServer) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path, query in server.requests:
        window = _window(path, query)
        key = window[0] if window is not None else "funding" if "historicalfundingrates" in path else None
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    return counts


def _stored(store: Store, venue: Venue) -> dict[FetchKind, pl.Series]:
    tables: dict[FetchKind, tuple[str, dict[str, str]]] = {
        "ohlcv": ("ohlcv", {"price_type": "trade"}),
        "mark": ("ohlcv", {"price_type": "mark"}),
        "funding": ("funding", {}),
    }
    found = {
        kind: store.scan(table, **filters).select("ts").collect()["ts"]
        for kind, (table, filters) in tables.items()
        if kind in venue.kinds
    }
    if venue.name == "hyperliquid":
        # Settlements are stored snapped to the minute; compare request ranges with the times the venue sent.
        market = venue.market
        indices = [(_ms(ts) - market.start_ms) // market.funding_step_ms for ts in found["funding"]]
        found["funding"] = pl.Series("ts", [_utc(hyperliquid_time(market, i)) for i in indices])
    return found


def _overlaps(stored: dict[FetchKind, pl.Series], window: Window) -> bool:
    kind, start_ms, end_ms = window
    return bool(stored[kind].is_between(_utc(start_ms), _utc(end_ms)).any())


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def test_many_pages_store_every_bar_and_settlement_once_with_exact_values(
    venue: Venue, server: FakeVenueServer, store_root: Path
) -> None:
    store = Store(store_root)
    plans = _plans(store, venue)
    report = _run(store, server, venue)

    planned = {plan.series.kind: plan.requests for plan in plans}
    requested = _kinds_requested(server)
    if venue.name == "hyperliquid":
        # Every funding page is full (500 hourly settlements in 500 h): fetch continues right after a
        # full page's last settlement, whose jitter shifts the later windows by < 1 s: one request more.
        assert requested == {"ohlcv": planned["ohlcv"], "funding": planned["funding"] + 1}
    else:
        assert requested == planned
    assert all(count > 1 for kind, count in planned.items() if kind != "funding" or venue.name != "kraken")
    assert report.requests == sum(requested.values())
    # No stored row lies in two requests' ranges (a continuation may re-ask only the empty rest of a full page).
    windows = sorted(_windows(server))
    stored = _stored(store, venue)
    for earlier, later in itertools.pairwise(windows):
        if earlier[0] == later[0] and later[1] <= earlier[2]:
            assert not _overlaps(stored, (earlier[0], later[1], earlier[2]))

    market = venue.market
    first = market.bars - venue.stored_bars
    bars = store.scan("ohlcv", price_type="trade").sort("ts").collect()
    assert bars.height == venue.stored_bars
    assert bars["ts"].is_unique().all()
    assert set(bars["ts"].diff().drop_nulls().dt.total_hours().to_list()) == {1}
    assert bars["ts"][-1] == _utc(market.bar(market.bars - 1)[0])  # the bar that closed at `now`
    for index in (first, first + 1, (first + market.bars) // 2, market.bars - 1):
        ts_ms, open_, high, low, close, volume = market.bar(index)
        row = bars.row(index - first, named=True)
        assert row["ts"] == _utc(ts_ms)
        # OKX swap candles: base volume (index 6), not contracts (index 5, 100x for ctVal 0.01).
        assert (row["open"], row["high"], row["low"], row["close"], row["volume"]) == tuple(
            Decimal(v) for v in (open_, high, low, close, volume)
        )
    if "mark" in venue.kinds:
        marks = store.scan("ohlcv", price_type="mark").collect()
        assert marks.height == market.bars
        assert marks["volume"].null_count() == market.bars

    funding = store.scan("funding").sort("ts").collect()
    assert funding.height == market.settlements
    # OKX: realizedRate (what settled), not the longer computed fundingRate; Kraken: relativeFundingRate.
    assert funding["rate"].to_list() == [Decimal(market.funding(i)[1]) for i in range(market.settlements)]
    # Hyperliquid's settlement times carry ms jitter; they are stored snapped to the settlement minute.
    assert funding["ts"].to_list() == [_utc(market.funding(i)[0]) for i in range(market.settlements)]
    assert set(funding["interval"]) == {venue.funding_interval}
    if venue.name == "hyperliquid":
        expected = [hyperliquid_premium(i) for i in range(market.settlements)]
        assert funding["premium"].to_list() == [None if p is None else Decimal(p) for p in expected]


def test_second_fetch_downloads_nothing_already_stored(venue: Venue, server: FakeVenueServer, store_root: Path) -> None:
    store = Store(store_root)
    _run(store, server, venue)
    stored = _stored(store, venue)
    server.requests.clear()

    again = _run(store, server, venue)

    assert (again.rows, again.writes) == (0, 0)
    assert not any(_overlaps(stored, window) for window in _windows(server))
    # Bars are complete up to `now`; funding is asked once more for (last settlement + 30 s, now), where a
    # new settlement could have appeared (Kraken's funding history takes no range: its one page is read
    # again, nothing of it written). Hyperliquid keeps only the newest 5,000 candles, so the older part of
    # [since, first stored bar) is asked for again (one request per 5,000 bars) and answers nothing.
    expected = {"funding": 1} | ({"ohlcv": 1} if venue.name == "hyperliquid" else {})
    assert _kinds_requested(server) == expected
    if venue.name == "hyperliquid":
        [head] = [w for w in _windows(server) if w[0] == "ohlcv"]
        assert head == ("ohlcv", START_MS, START_MS + 2_000 * HOUR_MS - 1)
    assert store.scan("ohlcv").collect().height == venue.stored_bars + (
        venue.market.bars if "mark" in venue.kinds else 0
    )
    assert store.scan("funding").collect().height == venue.market.settlements


def test_fetch_resumed_later_continues_after_last_stored_row(
    venue: Venue, server: FakeVenueServer, store_root: Path
) -> None:
    store = Store(store_root)
    earlier = venue.now - (venue.now - START) / 3
    _run(store, server, venue, now=earlier)
    first_run = store.scan("funding").collect()
    stored = _stored(store, venue)
    last_bar = stored["ohlcv"].max()
    assert isinstance(last_bar, datetime)
    server.requests.clear()

    _run(store, server, venue)

    windows = _windows(server)
    assert not any(_overlaps(stored, window) for window in windows)
    # The newer part starts at the bar after the last stored one (Hyperliquid also asks again for the
    # head it no longer keeps, before its newest 5,000 candles).
    newer = [start for kind, start, _ in windows if kind != "funding" and start > START_MS]
    assert min(newer) == _ms(last_bar) + HOUR_MS
    bars = store.scan("ohlcv", price_type="trade").sort("ts").collect()
    assert bars.height == venue.stored_bars
    assert bars["ts"].is_unique().all()
    funding = store.scan("funding").sort("ts").collect()
    assert funding.height == venue.market.settlements > first_run.height
    assert funding["ts"].is_unique().all()


def test_hyperliquid_keeps_only_the_newest_5000_candles(store_root: Path) -> None:
    market = SyntheticMarket(start_ms=START_MS, bars=6_000)
    with FakeVenueServer(hyperliquid_routes({"BTC": market})) as server:
        store = Store(store_root)
        venue = Venue("hyperliquid", hyperliquid_routes, "BTC", "BTC-USDC-PERP", market, ("ohlcv",), "1h")
        [plan] = _plans(store, venue)
        report = _fetcher(store, server).run([plan])
    assert plan.requests == 2
    bars = store.scan("ohlcv").sort("ts").collect()
    assert (report.requests, bars.height) == (2, HYPERLIQUID_CANDLE_HISTORY)
    assert bars["ts"][0] == _utc(market.bar(1_000)[0])  # nothing older exists on the venue


def test_okx_error_code_fails_fast_with_the_venue_message(store_root: Path) -> None:
    venue = VENUES["okx"]
    with FakeVenueServer(okx_routes({venue.ticker: venue.market})) as server:
        body = json.dumps({"code": "51001", "msg": "Instrument ID doesn't exist.", "data": []})
        server.faults.append(Fault("/api/v5/public/funding-rate-history", 200, body))
        sleeps: list[float] = []
        store = Store(store_root)
        with pytest.raises(FetchError, match=r"okx refused the request \(BadSymbol: okx .*51001"):
            _fetcher(store, server, sleeps=sleeps).run(_plans(store, venue)[2:])
    assert sleeps == []
    assert not (store_root / "funding").exists()


@pytest.mark.parametrize(("name", "path"), [("hyperliquid", "/info"), ("kraken", "/api/charts/v1/trade/")])
def test_rate_limit_answers_are_retried_with_backoff(name: str, path: str, store_root: Path) -> None:
    venue = VENUES[name]
    with FakeVenueServer(venue.routes({venue.ticker: venue.market})) as server:
        # After Hyperliquid's two markets requests (also /info) and Kraken's first page.
        server.faults.append(Fault(path, 429, "Too Many Requests", times=2, after=2 if name == "hyperliquid" else 1))
        sleeps: list[float] = []
        store = Store(store_root)
        _fetcher(store, server, sleeps=sleeps).run(_plans(store, venue)[:1])
    assert sleeps == [0.5, 1.0]
    assert store.scan("ohlcv").collect().height == venue.stored_bars
