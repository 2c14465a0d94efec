"""Live mode against a loopback Hyperliquid venue on 127.0.0.1 (``tests/kit/hyperliquid_perp.py``).

Nautilus' Hyperliquid adapter, its ``/info``, ``/exchange`` and WebSocket URLs pointed at the loopback,
connects, loads BTC-USD-PERP, subscribes ``candle`` and ``activeAssetCtx`` (bars and funding reach the
unchanged ``strategies.demo:FundingShort``) and reconciles a short the venue reports in ``clearinghouseState``.

It does not trade: the adapter prices a MARKET order from a cached quote (Hyperliquid has only IOC limits),
and FundingShort subscribes bars and funding only, so every order is denied
``MARKET_PRICE_UNAVAILABLE`` before it reaches ``/exchange`` - the entry, and the flatten on stop too. The
xfail below records that; it turns into a pass once quotes are subscribed for the venue.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from datasets.exit_codes import ExitCode
from tests.kit.hyperliquid_perp import HyperliquidLoopback
from tests.kit.loopback_venue import funding_short_toml, run_live_cli

FAKE_ADDRESS = "0x" + "12" * 20
FAKE_PRIVATE_KEY = "0x" + "ab" * 32
ENVIRON = {"CARRYLAB_HYPERLIQUID_API_KEY": FAKE_ADDRESS, "CARRYLAB_HYPERLIQUID_API_SECRET": FAKE_PRIVATE_KEY}


@pytest.fixture
def venue() -> Iterator[HyperliquidLoopback]:
    server = HyperliquidLoopback()
    server.start()
    yield server
    server.stop()


def _config(venue: HyperliquidLoopback, tmp_path: Path) -> Path:
    config = tmp_path / "live.toml"
    config.write_bytes(
        funding_short_toml(
            venue="hyperliquid", instrument="BTC-USDC-PERP", quote="USDC", connection=venue.connection_toml()
        )
    )
    return config


@pytest.mark.slow
def test_live_node_connects_subscribes_and_reconciles_a_loopback_hyperliquid_position(
    venue: HyperliquidLoopback, tmp_path: Path
) -> None:
    venue.state.position = Decimal("-0.04761")
    venue.state.entry = Decimal("42000.0")
    code, output, stats = run_live_cli(
        _config(venue, tmp_path), tmp_path / "run", environ=ENVIRON, duration_secs=3, flatten=False
    )
    assert code == 0, output[-3000:]
    assert {"spotMeta", "allPerpMetas", "clearinghouseState", "userAbstraction"} <= set(venue.infos)
    assert {"candle", "activeAssetCtx", "orderUpdates", "userEvents"} <= set(venue.subscriptions)
    assert stats["bars"] > 0
    assert "Reconciliation complete for HYPERLIQUID" in output
    assert "net_position=-0.04761" in output
    assert venue.state.orders == []
    assert FAKE_PRIVATE_KEY not in output


@pytest.mark.slow
@pytest.mark.xfail(
    reason="adapter denies MARKET orders without a cached quote (MARKET_PRICE_UNAVAILABLE); FundingShort "
    "subscribes bars and funding only",
    strict=True,
)
def test_live_node_trades_the_unchanged_strategy_on_a_loopback_hyperliquid(
    venue: HyperliquidLoopback, tmp_path: Path
) -> None:
    code, output, _ = run_live_cli(
        _config(venue, tmp_path), tmp_path / "run", environ=ENVIRON, duration_secs=3, flatten=False
    )
    assert code == 0, output[-3000:]
    assert [bool(order["b"]) for order in venue.state.orders] == [False]


@pytest.mark.slow
def test_a_flattening_stop_the_venue_cannot_fill_exits_run_failed_naming_the_open_position(
    venue: HyperliquidLoopback, tmp_path: Path
) -> None:
    # The close is denied (MARKET_PRICE_UNAVAILABLE, above): before, the session gave up after the stop
    # timeout and exited 0 with the position still open at the venue.
    venue.state.position = Decimal("-0.04761")
    venue.state.entry = Decimal("42000.0")
    code, output, _ = run_live_cli(
        _config(venue, tmp_path), tmp_path / "run", environ=ENVIRON, duration_secs=3, flatten=True
    )
    assert code == ExitCode.RUN_FAILED, output[-3000:]
    assert "expected the stop to flatten every position, BTC-USD-PERP.HYPERLIQUID still open" in output
    assert list((tmp_path / "run").glob("*/session-1/fills.parquet"))  # the report was written first
