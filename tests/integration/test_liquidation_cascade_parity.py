"""LiquidationCascade through the replay paper node vs the backtest, on SYNTHETIC cascades.

The data is ``datasets.synthetic_liquidations`` (seeded, labelled synthetic): 15-minute Binance BTC perp
bars and the liquidations that drive them. The replay streams bars and ``Liquidation`` custom data in
``ts_init`` order, the order the backtest engine gets them (``engine.run_data``), so at zero slippage
both must give the same orders, fills, PnL and risk events exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from datasets.catalog import export_catalog
from datasets.store import Store
from datasets.synthetic_liquidations import CascadeSpec, write_synthetic_cascades
from engine.backtest import parse_config, run_backtest
from engine.live import run_session
from tests.kit.live import FILL_COLUMNS, ORDER_COLUMNS, RISK_COLUMNS, replay_options, sorted_rows

SPEC = CascadeSpec(start=datetime(2024, 1, 1, tzinfo=UTC), bars=96 * 4, seed=11)
STATS = ("pnl_total", "pnl_price", "pnl_fees", "orders", "orders_denied", "fills", "positions", "risk_events")


@pytest.fixture(scope="module")
def cascade_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cascade-parity")
    store = Store(root / "store")
    write_synthetic_cascades(store, SPEC)
    export_catalog(store, root / "catalog")
    return root / "catalog"


def cascade_toml(catalog: Path, *, start: datetime, end: datetime) -> str:
    """Return a LiquidationCascade run config (configs/liquidation_cascade_synthetic.toml, slippage 0)."""
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return f"""
name = "parity-liquidation-cascade-synthetic"
start = {start.strftime(stamp)}
end = {end.strftime(stamp)}
[data]
catalog = "{catalog}"
bar_spec = "15-MINUTE-LAST-EXTERNAL"
mark_prices = false
funding = false
liquidations = true
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
leverage = 5
[fill]
slippage_bps = 0
[strategy]
path = "strategies.liquidation_cascade:LiquidationCascade"
[strategy.params]
instrument_id = "binance:BTC-USDT-PERP"
notional = "10000"
trigger = "notional"
threshold_notional_usd = "200000"
window_bars = 1
reaction = "fade"
stop_loss_pct = "1.5"
take_profit_pct = "1"
trailing_stop_pct = "1"
max_holding_bars = 8
[strategy.params.risk]
max_instrument_exposure_usd = 20000
max_price_age_secs = 1800
"""


@pytest.mark.slow
def test_replay_paper_cascade_matches_the_backtest_exactly(cascade_catalog: Path, tmp_path: Path) -> None:
    """Four synthetic days: every order, fill, risk event and PnL component equal, no tolerance.

    Orders and fills are compared sorted by (time, instrument); client order ids embed the wall clock and
    are not compared (as in tests/integration/test_live_carry_parity.py).
    """
    start = SPEC.start + timedelta(minutes=15)
    end = SPEC.start + timedelta(minutes=15 * SPEC.bars)
    config = parse_config(cascade_toml(cascade_catalog, start=start, end=end).encode())
    backtest = run_backtest(config, out_dir=None)
    assert backtest.stats["fills"] >= 4, "the synthetic cascades must trade a few round trips"
    assert {"STOP_MARKET", "LIMIT", "TRAILING_STOP_MARKET"} <= set(backtest.orders["type"])
    paper = run_session(config, replay_options(tmp_path, fresh=True)).result
    order_keys, fill_keys = ["ts_init", "instrument_id"], ["ts", "instrument_id"]
    assert sorted_rows(paper.orders, ORDER_COLUMNS, order_keys).equals(
        sorted_rows(backtest.orders, ORDER_COLUMNS, order_keys)
    )
    assert sorted_rows(paper.fills, FILL_COLUMNS, fill_keys).equals(
        sorted_rows(backtest.fills, FILL_COLUMNS, fill_keys)
    )
    assert paper.risk_events.select(RISK_COLUMNS).equals(backtest.risk_events.select(RISK_COLUMNS))
    for key in STATS:
        assert paper.stats[key] == backtest.stats[key], key
    assert Decimal(paper.stats["reconciliation"]["USDT"]["difference"]) == 0
