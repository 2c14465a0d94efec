"""Fetches through real ccxt classes against loopback venues (tests.kit.venues): nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import ccxt
import pytest

from datasets.acquire.ccxt_venues import FetchKind, make_exchange
from datasets.acquire.errors import FetchError, MalformedPageError, RetryExhaustedError
from datasets.acquire.fetch import Fetcher, Series, SeriesPlan, plan_series
from datasets.acquire.retry import RetryPolicy
from datasets.store import Store
from datasets.symbols import Market
from tests.kit.venues import (
    HOUR_MS,
    FakeVenueServer,
    Fault,
    SyntheticMarket,
    binance_routes,
    bybit_routes,
)

START = datetime(2024, 1, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
NOW = datetime(2025, 1, 1, tzinfo=UTC)
# 3,500 hourly bars: 4 pages of Binance's 1,000 (as capped by ccxt); 1,000 8-hourly settlements.
MARKET = SyntheticMarket(start_ms=START_MS, bars=3_500, settlements=1_000)
ROUTES = {"binance": binance_routes, "bybit": bybit_routes}


@pytest.fixture(params=["binance", "bybit"])
def venue(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(venue: str) -> Iterator[FakeVenueServer]:
    with FakeVenueServer(ROUTES[venue]({"BTCUSDT": MARKET})) as fake:
        yield fake


def _factory(server: FakeVenueServer) -> Callable[[str, Market], ccxt.Exchange]:
    def make(venue: str, market: Market) -> ccxt.Exchange:
        exchange = make_exchange(venue, market, api_url=server.base_url, enable_rate_limit=False, timeout_ms=5_000)
        exchange.session.trust_env = False  # never route loopback requests through a proxy from the environment
        return exchange

    return make


def _fetcher(
    store: Store, server: FakeVenueServer, sleeps: list[float] | None = None, *, flush_rows: int = 5_000
) -> Fetcher:
    policy = RetryPolicy(attempts=4, base_secs=0.5, cap_secs=2.0, sleep=(sleeps if sleeps is not None else []).append)
    return Fetcher(store, exchange_factory=_factory(server), retry=policy, flush_rows=flush_rows)


def _plans(store: Store, venue: str, kinds: tuple[FetchKind, ...] = ("ohlcv", "mark", "funding")) -> list[SeriesPlan]:
    return [
        plan_series(
            store, Series(venue, kind, "BTC-USDT-PERP", None if kind == "funding" else "1h"), since=START, now=NOW
        )
        for kind in kinds
    ]


def _data_requests(server: FakeVenueServer) -> list[tuple[str, dict[str, str]]]:
    return [
        (path, query) for path, query in server.requests if "exchangeInfo" not in path and "instruments" not in path
    ]


def test_many_pages_store_every_bar_and_settlement_once_with_exact_values(
    venue: str, server: FakeVenueServer, store_root: Path
) -> None:
    store = Store(store_root)
    plans = _plans(store, venue)
    report = _fetcher(store, server, flush_rows=1_500).run(plans)

    assert report.requests == sum(p.requests for p in plans) == len(_data_requests(server))
    bars = store.scan("ohlcv", price_type="trade").sort("ts").collect()
    assert bars.height == MARKET.bars
    assert bars["ts"].is_unique().all()
    ts_ms, open_, high, low, close, volume = MARKET.bar(1234)
    row = bars.row(1234, named=True)
    assert int(row["ts"].timestamp() * 1000) == ts_ms
    assert (row["open"], row["high"], row["low"], row["close"], row["volume"]) == tuple(
        Decimal(v) for v in (open_, high, low, close, volume)
    )
    marks = store.scan("ohlcv", price_type="mark").collect()
    assert marks.height == MARKET.bars
    assert marks["volume"].null_count() == MARKET.bars
    funding = store.scan("funding").sort("ts").collect()
    assert funding.height == MARKET.settlements
    assert funding["rate"].to_list() == [Decimal(MARKET.funding(i)[1]) for i in range(MARKET.settlements)]
    assert set(funding["interval"]) == {"8h"}


def test_lineage_names_venue_endpoint_request_range_and_fetch_time(
    venue: str, server: FakeVenueServer, store_root: Path
) -> None:
    store = Store(store_root)
    _fetcher(store, server).run(_plans(store, venue, ("funding",)))
    [partition] = list(store.partitions("funding"))
    [entry] = partition.lineage
    assert entry.importer == "ccxt-fetch"
    assert entry.extra["venue"] == venue
    assert entry.extra["endpoint"] in {"/fapi/v1/fundingRate", "/v5/market/funding/history"}
    assert entry.extra["request_start"] == "2024-01-01T00:00:00Z"
    assert entry.extra["request_end"] == "2025-01-01T00:00:00Z"
    assert datetime.fromisoformat(entry.extra["fetched_at"]).tzinfo is not None


def test_second_fetch_downloads_nothing_already_stored(venue: str, server: FakeVenueServer, store_root: Path) -> None:
    store = Store(store_root)
    _fetcher(store, server).run(_plans(store, venue))
    first = set(_request_windows(server))
    server.requests.clear()
    again = _plans(store, venue)
    _fetcher(store, server).run(again)
    # Only the range after the last stored row is asked for again (the market has no newer data).
    assert all(
        int(q.get("startTime", q.get("start", "0"))) > MARKET.start_ms + (MARKET.bars - 1) * HOUR_MS - 1
        for _, q in _data_requests(server)
    )
    assert first.isdisjoint(_request_windows(server))
    assert store.scan("ohlcv").collect().height == 2 * MARKET.bars


def _request_windows(server: FakeVenueServer) -> list[tuple[str, str]]:
    return [(path, q.get("startTime", q.get("start", ""))) for path, q in _data_requests(server)]


def test_http_429_and_5xx_are_retried_with_backoff_then_complete(
    venue: str, server: FakeVenueServer, store_root: Path
) -> None:
    path = "/fapi/v1/klines" if venue == "binance" else "/v5/market/kline"
    server.faults += [
        Fault(path, 429, "Too Many Requests"),
        Fault(path, 503, "Service Unavailable"),
        Fault(path, 502, "Bad Gateway"),
    ]
    sleeps: list[float] = []
    store = Store(store_root)
    _fetcher(store, server, sleeps).run(_plans(store, venue, ("ohlcv",)))
    assert sleeps == [0.5, 1.0, 2.0]
    assert store.scan("ohlcv").collect().height == MARKET.bars


def test_persistent_5xx_gives_up_with_clear_error_keeping_earlier_pages(
    venue: str, server: FakeVenueServer, store_root: Path
) -> None:
    path = "/fapi/v1/klines" if venue == "binance" else "/v5/market/kline"
    server.faults.append(Fault(path, 503, "Service Unavailable", times=100, after=2))
    store = Store(store_root)
    with pytest.raises(RetryExhaustedError, match=r"gave up after 4 attempts, last error ExchangeNotAvailable"):
        _fetcher(store, server, flush_rows=1).run(_plans(store, venue, ("ohlcv",)))
    assert store.scan("ohlcv").collect().height == 2_000


def test_exchange_error_fails_fast_without_retry(store_root: Path) -> None:
    with FakeVenueServer(binance_routes({"BTCUSDT": MARKET})) as server:
        # Binance's error body for an unknown symbol: ccxt maps code -1121 to BadSymbol (an ExchangeError).
        server.faults.append(Fault("/fapi/v1/fundingRate", 400, json.dumps({"code": -1121, "msg": "Invalid symbol."})))
        sleeps: list[float] = []
        store = Store(store_root)
        with pytest.raises(FetchError, match=r"binance refused the request \(BadSymbol"):
            _fetcher(store, server, sleeps).run(_plans(store, "binance", ("funding",)))
    assert sleeps == []
    assert not (store_root / "funding").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # Not JSON (a proxy's error page): asked again, refused once it keeps coming (3 attempts).
        ("<html>502 Bad Gateway</html>", "expected a JSON page from binance, .*; asked 3 times"),
        # JSON in the wrong format: refused at once (a format change does not fix itself).
        (json.dumps([[START_MS, "abc", "1", "1", "1", "1", 0, "0", 0, "0", "0", "0"]]), "candle 0: expected"),
    ],
)
def test_malformed_page_raises_and_writes_nothing(store_root: Path, body: str, message: str) -> None:
    with FakeVenueServer(binance_routes({"BTCUSDT": MARKET})) as server:
        server.faults.append(Fault("/fapi/v1/klines", 200, body, times=3))
        store = Store(store_root)
        with pytest.raises(MalformedPageError, match=message):
            _fetcher(store, server).run(_plans(store, "binance", ("ohlcv",)))
    assert not (store_root / "ohlcv").exists()


def test_interrupted_download_resumes_without_gap_or_duplicate(
    venue: str, server: FakeVenueServer, store_root: Path
) -> None:
    store = Store(store_root)
    make = _factory(server)

    def interrupted_on_third_page(name: str, market: Market) -> ccxt.Exchange:
        exchange = make(name, market)
        fetch_ohlcv = exchange.fetch_ohlcv
        calls = {"n": 0}

        def fetch(*args: object, **kwargs: object) -> object:
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt  # the user pressed Ctrl-C while the third page was on its way
            return fetch_ohlcv(*args, **kwargs)

        exchange.fetch_ohlcv = fetch
        return exchange

    with pytest.raises(KeyboardInterrupt):
        Fetcher(store, exchange_factory=interrupted_on_third_page, flush_rows=1_000_000).run(
            _plans(store, venue, ("ohlcv",))
        )
    # The two pages already downloaded were written before the interruption propagated.
    assert store.scan("ohlcv").collect().height == 2_000
    server.requests.clear()

    _fetcher(store, server).run(_plans(store, venue, ("ohlcv",)))
    bars = store.scan("ohlcv").sort("ts").collect()
    assert bars.height == MARKET.bars
    assert bars["ts"].is_unique().all()
    assert set(bars["ts"].diff().drop_nulls().dt.total_hours().to_list()) == {1}
    starts = [int(q.get("startTime", q.get("start", "0"))) for _, q in _data_requests(server)]
    assert min(starts) == START_MS + 2_000 * HOUR_MS
