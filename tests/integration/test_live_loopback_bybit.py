"""Live mode end to end against a loopback Bybit v5 linear venue on 127.0.0.1 (``tests/kit/bybit_linear.py``).

The unchanged ``strategies.demo:FundingShort`` runs on a live node built by ``engine.live`` with Nautilus'
Bybit adapter, its REST, public, private and trade WebSocket URLs pointed at the loopback:
connect -> instruments -> subscribe (tickers carry mark price and funding, klines) -> submit (trade WebSocket)
-> fill (private ``order``/``execution``/``position``/``wallet``) -> graceful stop keeping the position; a
second session recovers it from ``GET /v5/position/list`` and the stop flattens it.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from tests.kit.bybit_linear import BybitLoopback
from tests.kit.loopback_venue import funding_short_toml, run_live_cli

FAKE_KEY = "loopbackFAKEapiKEY0123456789abcdef"
FAKE_SECRET = "loopbackFAKEsecretXYZ9876543210fedcba"  # noqa: S105 - a fake key the test hunts for
ENVIRON = {"CARRYLAB_BYBIT_API_KEY": FAKE_KEY, "CARRYLAB_BYBIT_API_SECRET": FAKE_SECRET}


@pytest.fixture
def venue() -> Iterator[BybitLoopback]:
    server = BybitLoopback()
    server.start()
    yield server
    server.stop()


def _orders(venue: BybitLoopback) -> list[tuple[str, str, bool]]:
    return [(o["side"], o["orderType"], bool(o.get("reduceOnly", False))) for o in venue.state.orders]


@pytest.mark.slow
def test_live_node_trades_and_recovers_the_unchanged_strategy_on_a_loopback_bybit(
    venue: BybitLoopback, tmp_path: Path
) -> None:
    config = tmp_path / "live.toml"
    config.write_bytes(
        funding_short_toml(venue="bybit", instrument="BTC-USDT-PERP", quote="USDT", connection=venue.connection_toml())
    )
    # Session 1: connect -> instruments -> subscribe -> submit -> fill; the stop keeps the position.
    code, first_output, first = run_live_cli(
        config, tmp_path / "first", environ=ENVIRON, duration_secs=4, flatten=False
    )
    assert code == 0, first_output[-3000:]
    assert "/v5/market/instruments-info" in venue.paths()
    assert {"kline.1.BTCUSDT", "tickers.BTCUSDT"} <= set(venue.subscriptions)
    assert _orders(venue) == [("Sell", "Market", False)]
    assert "stopped: duration elapsed" in first_output
    assert first["mode"] == "live"
    fills = pl.read_parquet(next((tmp_path / "first").glob("*/fills.parquet")))
    assert fills["side"].to_list() == ["SELL"]
    assert fills["quantity"].to_list() == [Decimal("0.047")]
    assert venue.state.position == Decimal("-0.047")

    # Session 2: the restarted node recovers the short from the venue's position report, holds it, and the
    # graceful stop flattens it with a reduce-only buy.
    mark = len(venue.requests)
    code, second_output, second = run_live_cli(
        config, tmp_path / "second", environ=ENVIRON, duration_secs=4, flatten=True
    )
    assert code == 0, second_output[-3000:]
    assert "/v5/position/list" in venue.paths(mark)
    assert _orders(venue)[1:] == [("Buy", "Market", True)]
    assert venue.state.position == 0
    orders = pl.read_parquet(next((tmp_path / "second").glob("*/orders.parquet"))).sort("ts_init")
    recovered, exit_order = orders["client_order_id"].to_list()[:2]
    assert not recovered.startswith("O-")
    assert exit_order.startswith("O-")
    assert pl.read_parquet(next((tmp_path / "second").glob("*/fills.parquet")))["side"].to_list() == ["SELL", "BUY"]
    assert Decimal(second["pnl_fees"]) < 0

    for secret in (FAKE_KEY, FAKE_SECRET):
        assert secret not in first_output
        assert secret not in second_output
