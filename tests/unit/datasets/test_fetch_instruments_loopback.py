"""``fetch --kind instruments`` through the real ccxt classes against loopback venues (tests.kit.venues).

Each venue's markets endpoints list 36 instruments per market (``LISTED_SYMBOLS``), generated in the
venue's documented format; Hyperliquid's universe starts from the recorded ``meta`` sample.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from datasets.acquire.ccxt_venues import make_exchange
from datasets.acquire.instruments import InstrumentReport, fetch_instruments
from datasets.instruments import instrument_specs_at, margin_tiers_at
from datasets.store import Store
from tests.kit.venues import (
    LISTED_SYMBOLS,
    FakeVenueServer,
    Route,
    SyntheticMarket,
    binance_routes,
    bybit_routes,
    hyperliquid_routes,
    kraken_futures_routes,
    okx_routes,
)

FETCHED = datetime(2026, 11, 1, 12, tzinfo=UTC)
LATER = datetime(2026, 11, 20, tzinfo=UTC)
MARKET = SyntheticMarket(start_ms=1_704_067_200_000, bars=10, settlements=3)
META_SAMPLE = "exchange_payloads/crates/adapters/hyperliquid/test_data/http_meta_perp_sample.json"


def _routes(venue: str, shared_data: Path) -> dict[str, Route]:
    sample = json.loads((shared_data / META_SAMPLE).read_text())
    builders: dict[str, Callable[[], dict[str, Route]]] = {
        "binance": lambda: binance_routes({"BTCUSDT": MARKET}),
        "bybit": lambda: bybit_routes({"BTCUSDT": MARKET}),
        "okx": lambda: okx_routes({"BTC-USDT-SWAP": MARKET, "BTC-USDT": MARKET}),
        "hyperliquid": lambda: hyperliquid_routes({"BTC": MARKET}, meta_sample=sample),
        "kraken": lambda: kraken_futures_routes({"PF_XBTUSD": MARKET}),
    }
    return builders[venue]()


def _fetch(store: Store, venue: str, server: FakeVenueServer, when: datetime) -> InstrumentReport:
    return fetch_instruments(
        store,
        venue,
        exchange_factory=lambda name, market: make_exchange(
            name, market, api_url=server.base_url, enable_rate_limit=False
        ),
        clock=lambda: when,
    )


MARKETS = {"binance": 2, "bybit": 2, "okx": 2, "hyperliquid": 1, "kraken": 1}


@pytest.mark.parametrize("venue", list(MARKETS))
def test_every_listed_instrument_is_stored_once_and_refetching_adds_nothing(
    venue: str, shared_data: Path, store_root: Path
) -> None:
    store = Store(store_root)
    with FakeVenueServer(_routes(venue, shared_data)) as server:
        report = _fetch(store, venue, server, FETCHED)
        assert all(count >= 30 for count in report.symbols.values())
        assert sum(report.symbols.values()) == report.instruments_written == LISTED_SYMBOLS * MARKETS[venue]
        files = {path: path.read_bytes() for path in store.files("instruments") + store.files("margin_tiers")}
        again = _fetch(store, venue, server, LATER)
    assert (again.instruments_written, again.tiers_written) == (0, 0)
    assert {path: path.read_bytes() for path in store.files("instruments") + store.files("margin_tiers")} == files
    stored = store.scan("instruments", venue=venue).collect()
    assert stored["symbol"].is_unique().all()
    assert stored["effective_from"].unique().to_list() == [FETCHED]
    assert stored.filter(pl.col("market") == "perp")["funding_interval"].null_count() == 0
    assert stored.filter(pl.col("market") == "perp")["settle"].null_count() == 0
    assert stored.filter(pl.col("market") == "spot")["settle"].null_count() == stored.filter(market="spot").height


def test_binance_specs_come_from_the_filters_text(shared_data: Path, store_root: Path) -> None:
    store = Store(store_root)
    with FakeVenueServer(_routes("binance", shared_data)) as server:
        report = _fetch(store, "binance", server, FETCHED)
    assert report.skipped == ["binance margin tiers: fetch_leverage_tiers needs an API key"]
    # Generated listing 3 (XRP, index 3): tick 0.0001, lot LOTS[15 % 6] = "1", min notional 100, 8h.
    perp = instrument_specs_at(store, "binance", "XRP-USDT-PERP", FETCHED)
    assert (perp.tick_size, perp.lot_size, perp.min_quantity, perp.min_notional) == (
        Decimal("0.0001"),
        Decimal(1),
        Decimal(1),
        Decimal(100),
    )
    assert (perp.instrument_id, perp.native_symbol, perp.funding_interval) == ("XRPUSDT-PERP.BINANCE", "XRPUSDT", "8h")
    assert (perp.maker_fee, perp.taker_fee) == (Decimal("0.0002"), Decimal("0.0005"))
    assert perp.max_leverage is None
    assert perp.initial_margin is None
    assert perp.listing_time == datetime.fromtimestamp((1_600_000_000_000 + 3 * 86_400_000) / 1000, UTC)
    # fundingInfo lists the adjusted ones (index 5: ADA, 4h).
    assert instrument_specs_at(store, "binance", "ADA-USDT-PERP", FETCHED).funding_interval == "4h"
    spot = instrument_specs_at(store, "binance", "XRP-USDT", FETCHED)
    assert (spot.market, spot.instrument_id, spot.tick_size, spot.settle) == (
        "spot",
        "XRPUSDT.BINANCE",
        Decimal("0.0001"),
        None,
    )
    assert "fetch_funding_intervals" in perp.source
    assert "datasets/venues.py" in perp.source


def test_bybit_tiers_page_through_risk_limits(shared_data: Path, store_root: Path) -> None:
    store = Store(store_root)
    with FakeVenueServer(_routes("bybit", shared_data)) as server:
        report = _fetch(store, "bybit", server, FETCHED)
        assert len(server.requests_to("/v5/market/risk-limit")) >= 3
    assert report.tiers_written == store.scan("margin_tiers").collect().height > 36
    tiers = margin_tiers_at(store, "bybit", "ETH-USDT-PERP", FETCHED)
    assert [(t.tier, t.notional_floor, t.notional_cap, t.max_leverage) for t in tiers[:2]] == [
        (1, Decimal(0), Decimal(2_000_000), Decimal(100)),
        (2, Decimal(2_000_000), Decimal(4_000_000), Decimal(50)),
    ]
    perp = instrument_specs_at(store, "bybit", "ETH-USDT-PERP", FETCHED)
    assert (perp.max_leverage, perp.initial_margin, perp.maintenance_margin) == (
        Decimal(100),
        Decimal("0.01"),
        Decimal("0.005"),
    )
    assert instrument_specs_at(store, "bybit", "ADA-USDT-PERP", FETCHED).funding_interval == "4h"
    assert instrument_specs_at(store, "bybit", "ETH-USDT", FETCHED).min_notional == Decimal(10)


def test_okx_swaps_are_sized_in_contracts_with_tiers_in_contracts(shared_data: Path, store_root: Path) -> None:
    store = Store(store_root)
    with FakeVenueServer(_routes("okx", shared_data)) as server:
        _fetch(store, "okx", server, FETCHED)
        assert server.requests_to("/api/v5/public/funding-rate") == [{"instId": "ANY"}]
    # Generated listing 4 (DOGE): contracts of ctVal 0.1 DOGE, one contract a lot.
    swap = instrument_specs_at(store, "okx", "DOGE-USDT-PERP", FETCHED)
    assert (swap.contract_multiplier, swap.lot_size, swap.native_symbol) == (
        Decimal("0.1"),
        Decimal(1),
        "DOGE-USDT-SWAP",
    )
    assert swap.instrument_id == "DOGE-USDT-SWAP.OKX"
    assert instrument_specs_at(store, "okx", "ADA-USDT-PERP", FETCHED).funding_interval == "4h"
    tiers = margin_tiers_at(store, "okx", "ETH-USDT-PERP", FETCHED)
    assert {t.bound_unit for t in tiers} == {"contracts"}


def test_hyperliquid_specs_start_from_the_recorded_meta(shared_data: Path, store_root: Path) -> None:
    store = Store(store_root)
    with FakeVenueServer(_routes("hyperliquid", shared_data)) as server:
        _fetch(store, "hyperliquid", server, FETCHED)
    # http_meta_perp_sample.json: BTC szDecimals 5 / 40x, ETH 4 / 25x, ATOM 2 / 5x.
    atom = instrument_specs_at(store, "hyperliquid", "ATOM-USDC-PERP", FETCHED)
    assert (atom.lot_size, atom.tick_size, atom.max_leverage) == (Decimal("0.01"), Decimal("0.0001"), Decimal(5))
    assert (atom.initial_margin, atom.maintenance_margin, atom.min_notional) == (
        Decimal("0.2"),
        Decimal("0.1"),
        Decimal(10),
    )
    btc = instrument_specs_at(store, "hyperliquid", "BTC-USDC-PERP", FETCHED)
    assert (btc.tick_size, btc.lot_size, btc.instrument_id) == (
        Decimal("0.1"),
        Decimal("0.00001"),
        "BTC-USD-PERP.HYPERLIQUID",
    )
    assert btc.funding_interval == "1h"


def test_kraken_fees_and_tiers_come_from_the_public_endpoints(shared_data: Path, store_root: Path) -> None:
    store = Store(store_root)
    with FakeVenueServer(_routes("kraken", shared_data)) as server:
        _fetch(store, "kraken", server, FETCHED)
        assert server.requests_to("/derivatives/api/v3/feeschedules") == [{}]
    btc = instrument_specs_at(store, "kraken", "BTC-USD-PERP", FETCHED)
    assert (btc.native_symbol, btc.instrument_id, btc.tick_size) == ("PF_XBTUSD", "PF_XBTUSD.KRAKEN", Decimal("0.5"))
    assert (btc.maker_fee, btc.taker_fee) == (Decimal("0.0002"), Decimal("0.0005"))
    assert (btc.initial_margin, btc.maintenance_margin, btc.max_leverage) == (
        Decimal("0.02"),
        Decimal("0.01"),
        Decimal(50),
    )
    tiers = margin_tiers_at(store, "kraken", "BTC-USD-PERP", FETCHED)
    assert [(t.notional_floor, t.notional_cap) for t in tiers] == [
        (Decimal(0), Decimal(500_000)),
        (Decimal(500_000), None),
    ]


def test_a_changed_listing_adds_a_version_from_the_fetch_time(shared_data: Path, store_root: Path) -> None:
    store = Store(store_root)
    with FakeVenueServer(_routes("kraken", shared_data)) as server:
        _fetch(store, "kraken", server, FETCHED)
    changed = _routes("kraken", shared_data)
    listing: Callable[[dict[str, Any]], Any] = changed["/derivatives/api/v3/instruments"]

    def instruments(query: dict[str, Any]) -> Any:
        answer = listing(query)
        for item in answer["instruments"]:
            if item["symbol"] == "PF_XBTUSD":
                item["tickSize"] = 1.0
        return answer

    changed["/derivatives/api/v3/instruments"] = instruments
    with FakeVenueServer(changed) as server:
        report = _fetch(store, "kraken", server, LATER)
    assert report.instruments_written == 1
    assert instrument_specs_at(store, "kraken", "BTC-USD-PERP", FETCHED).tick_size == Decimal("0.5")
    assert instrument_specs_at(store, "kraken", "BTC-USD-PERP", LATER).tick_size == Decimal(1)
