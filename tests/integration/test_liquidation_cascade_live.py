"""A venue's liquidation message reaches the unchanged LiquidationCascade in a live-data node (loopback).

A paper node (sandbox execution, live market data) is built by ``engine.live`` with Nautilus' Binance
adapter and our liquidation data client (``engine.live.liquidations``), both pointed at the loopback venue
of ``tests/kit/binance_futures.py`` on 127.0.0.1. The venue streams 1-minute klines and, to the
``!forceOrder@arr`` subscriber, one liquidation of a 10 BTC long at 42,000 (the shape of Binance's
``liquidation_stream.json`` sample in ../shared/data/exchange_payloads). 420,000 USDT >= the 100,000
threshold: the strategy fades it (buys) at the next kline close, and its three exits follow the fill.
The same with Bybit's adapter and ``allLiquidation.BTCUSDT`` (``tests/kit/bybit_linear.py``), and with
OKX's and ``liquidation-orders`` in contracts (``tests/kit/okx_swap.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.backtest import RunResult, parse_config
from engine.live import SessionOptions, run_session
from tests.kit.binance_futures import RECORDED, BinanceFuturesLoopback
from tests.kit.bybit_linear import BybitLoopback
from tests.kit.engine import build_catalog, hourly_bars
from tests.kit.okx_swap import OkxLoopback

T0 = datetime(2024, 1, 1, tzinfo=UTC)

LIQUIDATION = {
    "e": "forceOrder",
    "E": 0,
    "o": {
        "s": "BTCUSDT",
        "S": "SELL",
        "o": "LIMIT",
        "f": "IOC",
        "q": "10.000",
        "p": "41990.00",
        "ap": "42000.00",
        "X": "FILLED",
        "l": "10.000",
        "z": "10.000",
        "T": 0,
    },
}


@pytest.fixture
def venue() -> Iterator[BinanceFuturesLoopback]:
    if not RECORDED.exists():
        pytest.skip(f"recorded exchangeInfo {RECORDED} not found: clone the repo next to shared/")
    server = BinanceFuturesLoopback()
    server.venue.liquidations.append(LIQUIDATION)
    server.start()
    yield server
    server.stop()


def _config(venue: str, connection: str, catalog: Path) -> bytes:
    return f"""
name = "loopback-{venue}-liquidation-cascade"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[data]
catalog = "{catalog}"
bar_spec = "1-MINUTE-LAST-EXTERNAL"
mark_prices = false
funding = false
liquidations = true
[[venues]]
name = "{venue}"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
leverage = 5
[strategy]
path = "strategies.liquidation_cascade:LiquidationCascade"
[strategy.params]
instrument_id = "{venue}:BTC-USDT-PERP"
bar_spec = "1-MINUTE-LAST-EXTERNAL"
notional = "2000"
threshold_notional_usd = "100000"
reaction = "fade"
[live]
status_interval_secs = 0.5
[live.connections.{venue}]
{connection}
""".encode()


def _session(tmp_path: Path, venue: str, connection: str) -> RunResult:
    options = SessionOptions(
        mode="paper",
        replay=False,
        duration_secs=6,
        out_dir=tmp_path / "runs",
        state_dir=tmp_path / "state",
        install_signal_handlers=False,
        fresh=True,
    )
    # A paper node takes its fee schedule from a catalog's venues.json: a tiny one of two hand-made bars.
    catalog = build_catalog(tmp_path, bars={(venue, "BTC-USDT-PERP"): hourly_bars(T0, ["42000.0", "42000.0"])})
    return run_session(parse_config(_config(venue, connection, catalog)), options).result


def _assert_faded(result: RunResult) -> None:
    entries = result.orders.filter(result.orders["type"] == "MARKET")
    assert entries["side"].to_list()[:1] == ["BUY"]  # fade: a long was liquidated
    assert {"STOP_MARKET", "LIMIT", "TRAILING_STOP_MARKET"} <= set(result.orders["type"])
    assert result.fills["side"].to_list()[:1] == ["BUY"]


@pytest.mark.slow
def test_a_loopback_force_order_reaches_the_strategy_which_fades_it(
    venue: BinanceFuturesLoopback, tmp_path: Path
) -> None:
    connection = f'base_url_http = "{venue.url}"\nbase_url_ws = "{venue.ws_url}"'
    result = _session(tmp_path, "binance", connection)
    assert "!forceOrder@arr" in venue.venue.subscriptions
    _assert_faded(result)


@pytest.mark.slow
def test_a_loopback_bybit_all_liquidation_reaches_the_strategy_which_fades_it(tmp_path: Path) -> None:
    # Bybit's S is the position side: Buy = a long was liquidated (10 BTC at 42,000: 420,000 USDT).
    server = BybitLoopback()
    server.state.liquidations.append({"T": 0, "s": "BTCUSDT", "S": "Buy", "v": "10.000", "p": "42000.00"})
    server.start()
    try:
        result = _session(tmp_path, "bybit", server.connection_toml())
    finally:
        server.stop()
    assert "allLiquidation.BTCUSDT" in server.subscriptions
    _assert_faded(result)


@pytest.mark.slow
def test_a_loopback_okx_liquidation_order_in_contracts_reaches_the_strategy_which_fades_it(tmp_path: Path) -> None:
    # 1000 contracts of 0.01 BTC (the instrument's multiplier) = 10 BTC of a long at 42,000: 420,000 USDT.
    server = OkxLoopback()
    server.state.liquidations.append(
        {"posSide": "long", "side": "sell", "bkPx": "42000.0", "sz": "1000", "bkLoss": "0"}
    )
    server.start()
    try:
        result = _session(tmp_path, "okx", server.connection_toml())
    finally:
        server.stop()
    assert "liquidation-orders:SWAP" in server.subscriptions
    _assert_faded(result)
