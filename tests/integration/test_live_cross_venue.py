"""The unchanged cross-venue carry live against two loopback venues at once: Binance USD-M and Hyperliquid.

One live node runs ``strategies.cross_venue_carry:CrossVenueCarry`` (the config shape of
``configs/demo_carry_cross_venue.toml``) with Nautilus' Binance and Hyperliquid adapters, each pointed at its
loopback (``tests/kit/binance_futures.py``, ``tests/kit/hyperliquid_perp.py``): connect -> instruments of both
-> bars and funding of both reach the strategy -> reconciliation recovers a hedged pair (short Binance, long
Hyperliquid) -> the graceful stop flattens both legs, one reduce-only market order filled on each venue.

A second session opens the pair itself. What Nautilus 2.0.0rc6's adapters deliver, measured by logging every
``FundingRateUpdate`` and ``Bar`` a subclass received from the loopbacks of Binance, Bybit, OKX and
Hyperliquid, and what the unchanged strategy does about it:

- Binance and Bybit send ``interval=None`` (their streams carry no interval; OKX sends ``interval=480``),
  Hyperliquid ``next_funding_ns=None`` (``activeAssetCtx`` has no settlement time): ``engine.loading`` passes
  each instrument's venue funding clock (``datasets.venues``) in ``funding_clock_secs`` and the
  ``FundingBook`` completes the update from it (interval from the clock; settlement at the clock's next
  boundary after ``ts_event``).
- Binance stamps a 1m bar at the kline's close time ``T`` (start + 59.999 s), Bybit, OKX and Hyperliquid at
  start + 60 s: ``TwoLegCarry`` pairs the legs' bars by their slot (``ts_event`` rounded to the bar interval).
- The ``lookback_settlements`` warm-up would take hours on real clocks: the live node seeds the books with
  the rates the catalog ``[data].catalog`` holds settled before it started (``funding_seed``; here a
  tiny synthetic catalog written by the test).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from datasets.catalog.files import write_parquet
from datasets.catalog.funding import funding_table
from tests.kit.binance_futures import RECORDED, BinanceFuturesLoopback
from tests.kit.hyperliquid_perp import HyperliquidLoopback
from tests.kit.loopback_venue import run_live_cli
from tests.kit.store import canonical_frame

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


def _config(
    binance: BinanceFuturesLoopback, hyperliquid: HyperliquidLoopback, tmp_path: Path, *, catalog: Path | None = None
) -> Path:
    config = tmp_path / "live.toml"
    catalog_line = f'catalog = "{catalog}"' if catalog is not None else ""
    config.write_text(f"""
name = "loopback-cross-venue-live"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[data]
bar_spec = "1-MINUTE-LAST-EXTERNAL"
{catalog_line}
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


def _seed_catalog(root: Path) -> Path:
    # Synthetic settlements (made up for this test, not market data), in the catalog format
    # datasets.catalog.funding writes: the last one per perp is what the books start from. They end at the
    # last 8-hour boundary, well within [live] max_funding_seed_age_secs (24 h) of the node's start.
    perps = (
        ("binance", "BTC-USDT-PERP", "BTCUSDT-PERP.BINANCE", "8h", ["0.0001", "0.0003"]),
        ("hyperliquid", "BTC-USDC-PERP", "BTC-USD-PERP.HYPERLIQUID", "1h", ["0.00002", "0.00001"]),
    )
    now = datetime.now(UTC)
    boundary = now.replace(hour=now.hour // 8 * 8, minute=0, second=0, microsecond=0)
    for venue, symbol, instrument_id, interval, rates in perps:
        rows = [
            {"ts": boundary - (len(rates) - 1 - index) * timedelta(hours=8), "rate": rate, "interval": interval}
            for index, rate in enumerate(rates)
        ]
        frame = canonical_frame("funding", rows, venue=venue, symbol=symbol)
        write_parquet(
            funding_table(frame, instrument_id=instrument_id), root / "data" / "funding_rates" / instrument_id
        )
    return root


@pytest.mark.slow
def test_the_unchanged_cross_venue_carry_opens_both_legs_live(
    venues: tuple[BinanceFuturesLoopback, HyperliquidLoopback], tmp_path: Path
) -> None:
    # Seeded expected funding (lookback 1, predicted weight 0: the last settled rate), annualised on each
    # perp's clock: Binance 0.0003 x 3 x 365 = 0.3285, Hyperliquid 0.00001 x 24 x 365 = 0.0876; spread
    # 0.2409, less the cost 19 bps x 365 / 90 days = 0.0077, is 0.2332 >= entry_apr 0.10: direction +1,
    # short Binance, long Hyperliquid. Pair: 2000 / ~42000 = 0.0476 -> 0.047 on the common 0.001 lot.
    binance, hyperliquid = venues
    # Candles from 5 minutes ago: the Hyperliquid leg's bar slots reach the Binance leg's within seconds.
    hyperliquid.candles_from_minutes_ago = 5
    config = _config(binance, hyperliquid, tmp_path, catalog=_seed_catalog(tmp_path / "catalog"))
    # The stop is the run's duration (generous: the pair opens about 3 s into the session).
    code, output, stats = run_live_cli(config, tmp_path / "run", environ=ENVIRON, duration_secs=15, flatten=True)
    assert code == 0, output[-3000:]
    # The node held the pair (its status line) before the stop closed it.
    assert f'"BTC-USD-PERP.HYPERLIQUID": "{PAIR}00", "BTCUSDT-PERP.BINANCE": "-{PAIR}"' in output
    assert stats["fills"] == 4
    # Opened by one market order per venue (sell Binance, buy Hyperliquid), closed by one reduce-only order each.
    assert [(o["side"], o["type"], o.get("reduceOnly")) for o in binance.venue.orders] == [
        ("SELL", "MARKET", None),
        ("BUY", "MARKET", "true"),
    ]
    assert [(bool(o["b"]), o["s"], bool(o["r"])) for o in hyperliquid.state.orders] == [
        (True, str(PAIR), False),
        (False, str(PAIR), True),
    ]
    assert binance.venue.position == 0
    assert hyperliquid.state.position == 0
