"""Live mode end to end against a loopback Hyperliquid venue on 127.0.0.1 (``tests/kit/hyperliquid_perp.py``).

The unchanged ``strategies.demo:FundingShort`` runs on a live node built by ``engine.live`` with Nautilus'
Hyperliquid adapter, its ``/info``, ``/exchange`` and WebSocket URLs pointed at the loopback: connect ->
instruments (``spotMeta``, ``allPerpMetas``) -> subscribe (``candle``; ``activeAssetCtx`` carries mark price and
funding) -> submit -> fill (``orderUpdates``, ``user`` fills) -> graceful stop keeping the position; a second
session reconciles the short from ``clearinghouseState`` and the stop flattens it with a reduce-only buy.

The adapter sends a MARKET order as an IOC limit priced from the cached best bid/ask and denies it
``MARKET_PRICE_UNAVAILABLE`` without one. FundingShort subscribes bars and funding only, so the live node adds
``engine.live.quotes.QuoteSubscriber`` for the venues ``engine.live.venues.needs_quotes`` names: it subscribes
``bbo`` and the order goes out at the bid less 50 bps (the adapter's default ``market_order_slippage_bps``).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from datasets.exit_codes import ExitCode
from tests.kit.hyperliquid_perp import HyperliquidLoopback
from tests.kit.loopback_venue import funding_short_toml, run_live_cli

FAKE_ADDRESS = "0x" + "12" * 20
FAKE_PRIVATE_KEY = "0x" + "ab" * 32
ENVIRON = {"CARRYLAB_HYPERLIQUID_API_KEY": FAKE_ADDRESS, "CARRYLAB_HYPERLIQUID_API_SECRET": FAKE_PRIVATE_KEY}
# 2000 USDC at the first close 42000.0: 0.047619..., rounded down to the 5 size decimals (szDecimals).
ENTRY_QUANTITY = Decimal("0.04761")


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


def _orders(venue: HyperliquidLoopback) -> list[tuple[bool, str, bool, str]]:
    return [(bool(o["b"]), o["s"], bool(o["r"]), o["t"]["limit"]["tif"]) for o in venue.state.orders]


@pytest.mark.slow
def test_live_node_trades_and_reconciles_the_unchanged_strategy_on_a_loopback_hyperliquid(
    venue: HyperliquidLoopback, tmp_path: Path
) -> None:
    config = _config(venue, tmp_path)
    # Session 1: connect -> instruments -> subscribe -> submit -> fill; the stop keeps the position.
    code, first_output, first = run_live_cli(
        config, tmp_path / "first", environ=ENVIRON, duration_secs=3, flatten=False
    )
    assert code == 0, first_output[-3000:]
    assert {"spotMeta", "allPerpMetas", "clearinghouseState", "userAbstraction"} <= set(venue.infos)
    assert {"candle", "activeAssetCtx", "bbo", "orderUpdates", "userEvents"} <= set(venue.subscriptions)
    assert first["bars"] > 0
    assert _orders(venue) == [(False, str(ENTRY_QUANTITY), False, "Ioc")]
    # The IOC limit is the bid less 50 bps, to the 5 significant figures Hyperliquid prices in. The bid is
    # one tick under the latest close (42000.0 + one per candle, a few candles in): 42000 x 0.995 = 41790,
    # give or take the candles the quote has moved on by (each +1 x 0.995) and the rounding to whole dollars.
    assert Decimal("41789") <= Decimal(venue.state.orders[0]["p"]) <= Decimal("41796")
    fills = pl.read_parquet(next((tmp_path / "first").glob("*/fills.parquet")))
    assert fills["side"].to_list() == ["SELL"]
    assert fills["quantity"].to_list() == [ENTRY_QUANTITY]
    assert venue.state.position == -ENTRY_QUANTITY

    # Session 2: reconciliation recovers the short from clearinghouseState; the graceful stop flattens it.
    code, second_output, _ = run_live_cli(config, tmp_path / "second", environ=ENVIRON, duration_secs=3, flatten=True)
    assert code == 0, second_output[-3000:]
    assert "Reconciliation complete for HYPERLIQUID" in second_output
    assert f"net_position=-{ENTRY_QUANTITY}" in second_output
    assert _orders(venue)[1:] == [(True, str(ENTRY_QUANTITY), True, "Ioc")]
    assert venue.state.position == 0
    for output in (first_output, second_output):
        assert FAKE_PRIVATE_KEY not in output


@pytest.mark.slow
def test_a_flattening_stop_the_venue_cannot_fill_exits_run_failed_naming_the_open_position(
    venue: HyperliquidLoopback, tmp_path: Path
) -> None:
    # The venue answers every IOC with "could not immediately match": before, the session gave up after the
    # stop timeout and exited 0 with the position still open at the venue.
    venue.state.position = -ENTRY_QUANTITY
    venue.state.entry = Decimal("42000.0")
    venue.state.reject_orders = True
    code, output, _ = run_live_cli(
        _config(venue, tmp_path), tmp_path / "run", environ=ENVIRON, duration_secs=3, flatten=True
    )
    assert code == ExitCode.RUN_FAILED, output[-3000:]
    assert venue.state.orders, "the close never reached the venue"
    assert all(o["b"] and o["r"] for o in venue.state.orders)
    assert "expected the stop to flatten every position, BTC-USD-PERP.HYPERLIQUID still open" in output
    assert list((tmp_path / "run").glob("*/session-1/fills.parquet"))  # the report was written first
