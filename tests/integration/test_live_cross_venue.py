"""The unchanged cross-venue carry live against two loopback venues at once: Binance USD-M and Hyperliquid.

One live node runs ``strategies.cross_venue_carry:CrossVenueCarry`` (the config shape of
``configs/demo_carry_cross_venue.toml``) with Nautilus' Binance and Hyperliquid adapters, each pointed at its
loopback (``tests/kit/binance_futures.py``, ``tests/kit/hyperliquid_perp.py``): connect -> instruments of both
-> bars and funding of both reach the strategy -> reconciliation recovers a hedged pair (short Binance, long
Hyperliquid) -> the graceful stop flattens both legs, one reduce-only market order filled on each venue.

The strategy does not open a pair live on Nautilus 2.0.0rc6's adapters (the strict xfail below), measured by
logging every ``FundingRateUpdate`` and ``Bar`` a subclass received from the loopbacks of Binance, Bybit,
OKX and Hyperliquid:

- Binance and Bybit send ``interval=None`` (their streams carry no interval; the 480 min of Bybit's
  instruments-info is not copied onto the update): ``FundingBook.expected_apr`` annualises on the interval
  and answers None, so the signal stays None. OKX sends ``interval=480``.
- Hyperliquid sends ``next_funding_ns=None`` (``activeAssetCtx`` has no settlement time): ``FundingBook.add``
  drops every update, so the Hyperliquid book never fills.
- Binance stamps a 1m bar at the kline's close time ``T`` (start + 59.999 s), Bybit, OKX and Hyperliquid at
  start + 60 s: ``TwoLegCarry`` decides at a close both legs share, which a Binance leg never does with the
  others.

Fixing this is a strategy/node change (complete the update from the venue's funding clock; align bar
closes), left to the lead. Every leg's settlement also has to pass before the first decision (the
``lookback_settlements`` warm-up): hours on a real venue.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.kit.binance_futures import RECORDED, BinanceFuturesLoopback
from tests.kit.hyperliquid_perp import HyperliquidLoopback
from tests.kit.loopback_venue import run_live_cli

ENVIRON = {
    "CARRYLAB_BINANCE_API_KEY": "loopbackFAKEapiKEY0123456789abcdef",
    "CARRYLAB_BINANCE_API_SECRET": "loopbackFAKEsecretXYZ9876543210fedcba",
    "CARRYLAB_HYPERLIQUID_API_KEY": "0x" + "12" * 20,
    "CARRYLAB_HYPERLIQUID_API_SECRET": "0x" + "ab" * 32,
}
# A hedged pair both venues can hold: 0.047 BTC is a whole number of Binance's 0.001 and Hyperliquid's 0.00001 lots.
PAIR = Decimal("0.047")


@pytest.fixture
def venues() -> Iterator[tuple[BinanceFuturesLoopback, HyperliquidLoopback]]:
    if not RECORDED.exists():
        pytest.skip(f"recorded exchangeInfo {RECORDED} not found: clone the repo next to shared/")
    binance = BinanceFuturesLoopback().start()
    hyperliquid = HyperliquidLoopback()
    hyperliquid.start()
    yield binance, hyperliquid
    hyperliquid.stop()
    binance.stop()


def _config(binance: BinanceFuturesLoopback, hyperliquid: HyperliquidLoopback, tmp_path: Path) -> Path:
    config = tmp_path / "live.toml"
    config.write_text(f"""
name = "loopback-cross-venue-live"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[data]
bar_spec = "1-MINUTE-LAST-EXTERNAL"
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
[[venues]]
name = "hyperliquid"
instruments = ["BTC-USDC-PERP"]
starting_balances = ["100000 USDC"]
[risk.max_notional_per_order]
"binance:BTC-USDT-PERP" = 5000
"hyperliquid:BTC-USDC-PERP" = 5000
[strategy]
path = "strategies.cross_venue_carry:CrossVenueCarry"
[strategy.params]
first_id = "binance:BTC-USDT-PERP"
second_id = "hyperliquid:BTC-USDC-PERP"
notional = "2000"
entry_apr = "0.10"
exit_apr = "0"
lookback_settlements = 1
predicted_weight = "0"
round_trip_cost_bps = "19"
cost_horizon_days = "90"
[live]
flatten_on_stop = true
status_interval_secs = 0.5
position_check_interval_secs = 1
[live.connections.binance]
environment = "production"
base_url_http = "{binance.url}"
base_url_ws = "{binance.ws_url}"
[live.connections.hyperliquid]
environment = "production"
{hyperliquid.connection_toml()}""")
    return config


@pytest.mark.slow
def test_live_node_reconciles_and_flattens_a_cross_venue_pair_on_two_loopback_venues(
    venues: tuple[BinanceFuturesLoopback, HyperliquidLoopback], tmp_path: Path
) -> None:
    binance, hyperliquid = venues
    binance.venue.position, binance.venue.entry = -PAIR, Decimal("42000.00")
    hyperliquid.state.position, hyperliquid.state.entry = PAIR, Decimal("42000.0")
    code, output, stats = run_live_cli(
        _config(binance, hyperliquid, tmp_path), tmp_path / "run", environ=ENVIRON, duration_secs=3, flatten=True
    )
    assert code == 0, output[-3000:]
    assert "/fapi/v1/exchangeInfo" in [path for _, path, _ in binance.venue.requests]
    assert any("@kline_1m" in s for s in binance.venue.subscriptions)
    assert {"candle", "activeAssetCtx", "bbo"} <= set(hyperliquid.subscriptions)
    assert stats["bars"] > 0
    for venue in ("BINANCE", "HYPERLIQUID"):
        assert f"Reconciliation complete for {venue}" in output
    assert f"BTCUSDT-PERP.BINANCE net_position=-{PAIR}" in output
    assert f"BTC-USD-PERP.HYPERLIQUID net_position={PAIR}" in output
    # The stop closes each leg with one reduce-only market order on its own venue, filled there.
    assert [(o["side"], o["type"], o.get("reduceOnly")) for o in binance.venue.orders] == [("BUY", "MARKET", "true")]
    assert [(bool(o["b"]), o["s"], bool(o["r"])) for o in hyperliquid.state.orders] == [(False, str(PAIR), True)]
    assert binance.venue.position == 0
    assert hyperliquid.state.position == 0


@pytest.mark.slow
@pytest.mark.xfail(
    reason="rc6 adapters: Binance funding updates carry no interval, Hyperliquid's no next_funding_ns, and "
    "Binance stamps bars 1 ms before the others: the carry signal stays None (module docstring); no "
    "settlement passes within the run either",
    strict=True,
)
def test_the_unchanged_cross_venue_carry_opens_both_legs_live(
    venues: tuple[BinanceFuturesLoopback, HyperliquidLoopback], tmp_path: Path
) -> None:
    binance, hyperliquid = venues
    code, output, _ = run_live_cli(
        _config(binance, hyperliquid, tmp_path), tmp_path / "run", environ=ENVIRON, duration_secs=3, flatten=False
    )
    assert code == 0, output[-3000:]
    assert binance.venue.orders
    assert hyperliquid.state.orders
