"""Live mode end to end against a loopback OKX v5 swap venue on 127.0.0.1 (``tests/kit/okx_swap.py``).

The unchanged ``strategies.demo:FundingShort`` runs on a live node built by ``engine.live`` with Nautilus'
OKX adapter, its REST, public, business and private WebSocket URLs pointed at the loopback:
connect -> instruments -> subscribe (``funding-rate`` on public, ``candle1m`` on business) -> submit (private
WebSocket ``op: order``) -> fill (``orders``/``positions``/``account``) -> graceful stop keeping the position; a
second session recovers it from ``GET /api/v5/account/positions`` and the stop flattens it.

The strategy's config is ``FundingShortOkxConfig`` (no hyphens in client order ids: the OKX adapter denies
them, ``INVALID_CLIENT_ORDER_ID``). The adapter's quantity is contracts of 0.01 BTC (``ctVal``): FundingShort
sizes 2000 USDT at 42000 as 2000 / (42000 x 0.01) = 4.7619, rounded down to the 0.01 lot: 4.76 contracts.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from tests.kit.loopback_venue import funding_short_toml, run_live_cli
from tests.kit.okx_swap import OkxLoopback

FAKE_KEY = "loopbackFAKEapiKEY0123456789abcdef"
FAKE_SECRET = "loopbackFAKEsecretXYZ9876543210fedcba"  # noqa: S105 - a fake key the test hunts for
FAKE_PASSPHRASE = "loopbackFAKEpassphrase42"  # noqa: S105 - a fake key the test hunts for
ENVIRON = {
    "CARRYLAB_OKX_API_KEY": FAKE_KEY,
    "CARRYLAB_OKX_API_SECRET": FAKE_SECRET,
    "CARRYLAB_OKX_PASSPHRASE": FAKE_PASSPHRASE,
}


@pytest.fixture
def venue() -> Iterator[OkxLoopback]:
    server = OkxLoopback()
    server.start()
    yield server
    server.stop()


def _orders(venue: OkxLoopback) -> list[tuple[str, str, bool]]:
    return [(o["side"], o["ordType"], str(o.get("reduceOnly", False)).lower() == "true") for o in venue.state.orders]


@pytest.mark.slow
def test_live_node_trades_and_recovers_the_unchanged_strategy_on_a_loopback_okx(
    venue: OkxLoopback, tmp_path: Path
) -> None:
    config = tmp_path / "live.toml"
    config.write_bytes(
        funding_short_toml(
            venue="okx",
            instrument="BTC-USDT-PERP",
            quote="USDT",
            connection=venue.connection_toml(),
            config_path="tests.kit.okx_swap:FundingShortOkxConfig",
        )
    )
    # Session 1: connect -> instruments -> subscribe -> submit -> fill; the stop keeps the position.
    code, first_output, first = run_live_cli(
        config, tmp_path / "first", environ=ENVIRON, duration_secs=4, flatten=False
    )
    assert code == 0, first_output[-3000:]
    assert "/api/v5/public/instruments" in venue.paths()
    assert {"candle1m:BTC-USDT-SWAP", "funding-rate:BTC-USDT-SWAP"} <= set(venue.subscriptions)
    assert _orders(venue) == [("sell", "market", False)]
    assert "stopped: duration elapsed" in first_output
    assert first["mode"] == "live"
    fills = pl.read_parquet(next((tmp_path / "first").glob("*/fills.parquet")))
    assert fills["side"].to_list() == ["SELL"]
    assert fills["quantity"].to_list() == [Decimal("4.76")]
    assert venue.state.position == Decimal("-4.76")

    # Session 2: the restarted node recovers the short from the venue's position report, holds it, and the
    # graceful stop flattens it with a reduce-only buy.
    mark = len(venue.requests)
    code, second_output, second = run_live_cli(
        config, tmp_path / "second", environ=ENVIRON, duration_secs=4, flatten=True
    )
    assert code == 0, second_output[-3000:]
    assert "/api/v5/account/positions" in venue.paths(mark)
    assert _orders(venue)[1:] == [("buy", "market", True)]
    assert venue.state.position == 0
    orders = pl.read_parquet(next((tmp_path / "second").glob("*/orders.parquet"))).sort("ts_init")
    recovered, exit_order = orders["client_order_id"].to_list()[:2]
    assert not recovered.startswith("O")
    assert exit_order.startswith("O")
    assert pl.read_parquet(next((tmp_path / "second").glob("*/fills.parquet")))["side"].to_list() == ["SELL", "BUY"]
    assert Decimal(second["pnl_fees"]) < 0

    for secret in (FAKE_KEY, FAKE_SECRET, FAKE_PASSPHRASE):
        assert secret not in first_output
        assert secret not in second_output
