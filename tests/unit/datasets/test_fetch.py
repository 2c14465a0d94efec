"""Fetch planning, symbol mapping, page conversion and retry: no network at all."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import ccxt
import polars as pl
import pytest

from datasets.acquire.ccxt_venues import CCXT_VENUES, ccxt_symbol, ccxt_venue, make_exchange, resolve_symbol
from datasets.acquire.errors import MalformedPageError, PlanError, RetryExhaustedError
from datasets.acquire.fetch import Series, funding_page, ohlcv_page, plan_series
from datasets.acquire.retry import RetryPolicy, call_with_retry
from datasets.store import SourceInfo, Store

NOW = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_START = datetime(2024, 1, 1, tzinfo=UTC)
HOURS_2024 = 366 * 24


@pytest.mark.parametrize(
    ("venue", "base", "canonical", "unified"),
    [
        ("binance", "BTC", "BTC-USDT-PERP", "BTC/USDT:USDT"),
        ("bybit", "ETH", "ETH-USDT-PERP", "ETH/USDT:USDT"),
        ("okx", "SOL", "SOL-USDT-PERP", "SOL/USDT:USDT"),
        ("hyperliquid", "BTC", "BTC-USDC-PERP", "BTC/USDC:USDC"),
        ("kraken", "BTC", "BTC-USD-PERP", "BTC/USD:USD"),
    ],
)
def test_bare_base_on_each_venue_maps_to_its_perp_and_ccxt_symbol(
    venue: str, base: str, canonical: str, unified: str
) -> None:
    symbol = resolve_symbol(venue, base, None)
    assert symbol == canonical
    assert ccxt_symbol(symbol) == unified


def test_spot_pair_maps_to_ccxt_spot_symbol() -> None:
    assert resolve_symbol("kraken", "btc", "spot") == "BTC-USD"
    assert ccxt_symbol("BTC-USDT") == "BTC/USDT"
    assert resolve_symbol("binance", "BTC-USDT", "perp") == "BTC-USDT-PERP"


def test_perp_symbol_with_spot_market_raises() -> None:
    with pytest.raises(PlanError, match="is a perp but --market spot"):
        resolve_symbol("binance", "BTC-USDT-PERP", "spot")


def test_unknown_venue_raises_with_known_list() -> None:
    with pytest.raises(PlanError, match="expected one of binance, bybit, okx, hyperliquid, kraken"):
        ccxt_venue("ftx")


@pytest.mark.parametrize("venue", list(CCXT_VENUES))
def test_each_venue_builds_a_ccxt_exchange_per_market_without_network(venue: str) -> None:
    for market in ("spot", "perp"):
        exchange = make_exchange(venue, market, api_url="http://127.0.0.1:9")
        assert exchange.enableRateLimit is True
        assert exchange.rateLimit > 0
        urls = exchange.urls["api"]
        flat = [urls] if isinstance(urls, str) else list(urls.values())
        assert all(u.startswith("http://127.0.0.1:9") for u in flat if isinstance(u, str))


# Request counts of one year (2024, 8,784 hours) on an empty store, from each venue's page limits.
@pytest.mark.parametrize(
    ("venue", "symbol", "ohlcv_requests", "funding_requests"),
    [
        ("binance", "BTC-USDT-PERP", 9, 9),  # 1000 bars; 1000 h of funding per request
        ("bybit", "BTC-USDT-PERP", 9, 44),  # 1000 bars; 200 h
        ("okx", "BTC-USDT-PERP", 88, 88),  # 100 bars; 100 h
        ("hyperliquid", "BTC-USDC-PERP", 2, 18),  # 5000 bars; 500 h
        ("kraken", "BTC-USD-PERP", 5, 1),  # 2000 bars; the whole funding history in one request
    ],
)
def test_plan_of_a_year_on_empty_store_counts_requests_from_page_limits(
    store_root: Path, venue: str, symbol: str, ohlcv_requests: int, funding_requests: int
) -> None:
    store = Store(store_root)
    bars = plan_series(store, Series(venue, "ohlcv", symbol, "1h"), since=YEAR_START, until=NOW, now=NOW)
    funding = plan_series(store, Series(venue, "funding", symbol), since=YEAR_START, until=NOW, now=NOW)
    start_ms = int(YEAR_START.timestamp() * 1000)
    end_ms = int(NOW.timestamp() * 1000)
    assert bars.ranges == ((start_ms, end_ms - 3_600_000 + 1),)
    assert funding.ranges == ((start_ms, end_ms),)
    assert (bars.requests, funding.requests) == (ohlcv_requests, funding_requests)
    assert "requests (nothing stored)" in bars.describe()


def test_plan_ends_at_last_closed_bar() -> None:
    now = datetime(2025, 1, 1, 10, 30, tzinfo=UTC)
    plan = plan_series(Store("/nonexistent"), Series("binance", "ohlcv", "BTC-USDT-PERP", "1h"), since=NOW, now=now)
    end_ms = plan.ranges[0][1]
    # The 09:00 bar closed at 10:00 and is fetched; the 10:00 bar is still forming at 10:30 and is not.
    assert int(datetime(2025, 1, 1, 9, tzinfo=UTC).timestamp() * 1000) < end_ms
    assert end_ms <= int(datetime(2025, 1, 1, 10, tzinfo=UTC).timestamp() * 1000)


def ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def test_plan_with_stored_rows_fetches_only_before_and_after_them(store_root: Path) -> None:
    store = Store(store_root)
    stored_from, stored_to = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC)
    ts = pl.datetime_range(stored_from, stored_to, "1h", eager=True, time_zone="UTC").cast(pl.Datetime("ns", "UTC"))
    price = pl.lit("100", dtype=pl.String).cast(pl.Decimal(38, 18))
    frame = pl.DataFrame({"ts": ts}).select(
        pl.lit("binance").alias("venue"),
        pl.lit("BTC-USDT-PERP").alias("symbol"),
        pl.lit("perp").alias("market"),
        pl.lit("trade").alias("price_type"),
        pl.lit("1h").alias("interval"),
        "ts",
        *(price.alias(c) for c in ("open", "high", "low", "close", "volume")),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"),
    )
    store.write("ohlcv", frame, SourceInfo("test", "0" * 64, "test", "1"))
    plan = plan_series(store, Series("binance", "ohlcv", "BTC-USDT-PERP", "1h"), since=YEAR_START, until=NOW, now=NOW)
    assert plan.ranges == (
        (ms(YEAR_START), ms(stored_from)),
        (ms(stored_to) + 3_600_000, ms(NOW) - 3_600_000 + 1),
    )
    resumed = plan_series(store, Series("binance", "ohlcv", "BTC-USDT-PERP", "1h"), since=None, now=NOW)
    assert resumed.ranges == ((ms(stored_to) + 3_600_000, ms(NOW) - 3_600_000 + 1),)


def test_plan_without_since_on_empty_store_raises(store_root: Path) -> None:
    with pytest.raises(PlanError, match="nothing stored yet, so --since is needed"):
        plan_series(Store(store_root), Series("bybit", "funding", "BTC-USDT-PERP"), since=None, now=NOW)


@pytest.mark.parametrize(
    ("venue", "kind", "symbol", "message"),
    [
        ("hyperliquid", "mark", "BTC-USDC-PERP", "hyperliquid has no mark history"),
        ("binance", "funding", "BTC-USDT", "binance has no funding history for spot"),
    ],
)
def test_series_the_venue_does_not_serve_raises(venue: str, kind: str, symbol: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        Series(venue, kind, symbol, None if kind == "funding" else "1h")  # type: ignore[arg-type]


def test_ohlcv_page_converts_floats_through_shortest_text_exactly() -> None:
    series = Series("binance", "ohlcv", "BTC-USDT-PERP", "1h")
    start = int(YEAR_START.timestamp() * 1000)
    rows = [[start, 42000.1, 42100.7, 41999.3, 42050.05, 0.000081], [start + 3_600_000, 1.0, 1.0, 1.0, 1.0, 2.0]]
    frame = ohlcv_page(rows, series=series, start_ms=start, end_ms=start + 3_600_000, where="test")
    assert frame.height == 1  # the second bar is outside the window
    assert frame.row(0, named=True)["close"] == Decimal("42050.05")
    assert frame.row(0, named=True)["volume"] == Decimal("0.000081")


def test_ohlcv_page_with_unparsed_price_raises_naming_the_candle() -> None:
    series = Series("binance", "ohlcv", "BTC-USDT-PERP", "1h")
    with pytest.raises(MalformedPageError, match=r"test: candle 1: expected \[ts, open, high, low, close, volume\]"):
        ohlcv_page(
            [[0, 1.0, 1.0, 1.0, 1.0, 1.0], [1, None, 1.0, 1.0, 1.0, 1.0]],
            series=series,
            start_ms=0,
            end_ms=10,
            where="test",
        )


def test_funding_page_reads_rate_text_not_ccxt_float() -> None:
    series = Series("okx", "funding", "BTC-USDT-PERP")
    # OKX funding-rate-history record (format of exchange_payloads/.../okx/http_get_funding_rate_history.json).
    info = {"instId": "BTC-USDT-SWAP", "fundingRate": "0.0001515032", "realizedRate": "0.00015", "fundingTime": "1"}
    entries = [{"timestamp": 1_704_067_200_000, "fundingRate": 0.00015, "info": info}]
    frame = funding_page(entries, row=ccxt_venue("okx"), series=series, start_ms=0, end_ms=2**62, where="test")
    assert frame["rate"].to_list() == [Decimal("0.00015")]


def test_funding_page_without_rate_key_raises() -> None:
    series = Series("binance", "funding", "BTC-USDT-PERP")
    entries = [{"timestamp": 1, "info": {"symbol": "BTCUSDT"}}]
    with pytest.raises(MalformedPageError, match="funding entry 0: expected a timestamp and a rate under fundingRate"):
        funding_page(entries, row=ccxt_venue("binance"), series=series, start_ms=0, end_ms=10, where="test")


def test_transient_errors_are_retried_with_doubling_capped_backoff() -> None:
    sleeps: list[float] = []
    failures = iter(
        [
            ccxt.RateLimitExceeded("429"),
            ccxt.ExchangeNotAvailable("503"),
            ccxt.RequestTimeout("t"),
            ccxt.DDoSProtection("d"),
        ]
    )

    def call() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "ok"

    policy = RetryPolicy(attempts=5, base_secs=1.0, cap_secs=3.0, sleep=sleeps.append)
    assert call_with_retry(call, policy, what="page") == "ok"
    assert sleeps == [1.0, 2.0, 3.0, 3.0]


def test_exchange_error_is_not_retried() -> None:
    sleeps: list[float] = []

    def call() -> None:
        raise ccxt.BadSymbol("binance {'code': -1121}")

    with pytest.raises(ccxt.BadSymbol):
        call_with_retry(call, RetryPolicy(sleep=sleeps.append), what="page")
    assert sleeps == []


def test_retry_budget_exhausted_raises_clear_error() -> None:
    def call() -> None:
        raise ccxt.NetworkError("connection reset")

    with pytest.raises(RetryExhaustedError, match=r"page: gave up after 3 attempts, last error NetworkError"):
        call_with_retry(call, RetryPolicy(attempts=3, sleep=lambda _: None), what="page")
