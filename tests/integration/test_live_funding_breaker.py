"""Paper funding in the account the breakers read: a daily loss limit that only funding breaks trips on
the same bar in a replay paper node as in the backtest of the same config.

A hand-made catalog: BTC-USDT-PERP on Binance at a flat 100.0 (trades and marks) for two days, funding of 0.5% every
8 hours, a long of 100 contracts (10,000 USDT) opened on the bar closing 02:00 by ``tests.kit.engine:
RiskHold``, a daily loss limit of 100 USDT. The entry fee is 5 USDT and prices never move, so the day's
loss is 5 USDT until the 08:00 settlement (-50 USDT), 55 until the 16:00 one (-50 USDT), then 105: the
breaker binds on the first bar after 16:00 only if the equity includes funding.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from engine.backtest import parse_config, run_backtest
from engine.live import SessionOptions, run_session
from tests.kit.engine import build_catalog, hourly_bars

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
RISK_COLUMNS = ["ts", "control", "action", "instrument_id", "value", "limit", "reason"]


@pytest.fixture(scope="module")
def flat_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = ("binance", "BTC-USDT-PERP")
    settlements = [(T0 + 8 * HOUR * i, "0.005") for i in range(1, 6)]
    return build_catalog(
        tmp_path_factory.mktemp("funding-breaker"),
        # Volume well above the order: the sandbox fills market orders against the bar's volume.
        bars={key: hourly_bars(T0, ["100.0"] * 48, volume="1000000")},
        marks={key: hourly_bars(T0, ["100.0"] * 48)},
        funding={key: ("8h", settlements)},
    )


def _config_text(catalog: Path) -> str:
    return f"""
name = "paper-funding-breaker"
start = 2024-01-01T01:00:00Z
end = 2024-01-02T12:00:00Z
[data]
catalog = "{catalog}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
leverage = 2
funding_interval = "8h"
[fill]
slippage_bps = 0
[risk]
max_order_submit_rate = "100/00:00:01"
[strategy]
path = "tests.kit.engine:RiskHold"
[strategy.params]
instrument_id = "binance:BTC-USDT-PERP"
quantity = "100"
open_at = "2024-01-01T02:00:00+00:00"
[strategy.params.risk]
daily_loss_limit_usd = 100
"""


@pytest.mark.slow
def test_paper_daily_loss_breaker_that_only_funding_breaks_trips_on_the_backtests_bar(
    flat_catalog: Path, tmp_path: Path
) -> None:
    """Tolerance: none. Every risk event (time, control, action, value, limit, reason), the funding
    ledger and the PnL attribution are equal in the backtest and the replay paper node; the paper
    account includes funding (reconciliation difference 0). Before paper funding was booked into the
    sandbox account, the paper equity lacked the 100 USDT of funding and the breaker never fired.
    """
    config = parse_config(_config_text(flat_catalog).encode())
    backtest = run_backtest(config, out_dir=None)
    options = SessionOptions(
        mode="paper",
        replay=True,
        speed=0,
        out_dir=tmp_path / "runs",
        state_dir=tmp_path / "state",
        fresh=True,
        install_signal_handlers=False,
    )
    paper = run_session(config, options).result

    breaker = backtest.risk_events.filter(pl.col("control") == "daily_loss")
    sixteen, midnight = T0 + 16 * HOUR, T0 + 24 * HOUR
    assert breaker.select("ts", "action").rows() == [(sixteen, "halt"), (sixteen, "flatten"), (midnight, "resume")]
    assert Decimal(breaker["value"][0]) == Decimal("105")  # 5 fee + 2 x 50 funding
    assert paper.risk_events.select(RISK_COLUMNS).equals(backtest.risk_events.select(RISK_COLUMNS))
    funding_columns = ["ts", "instrument_id", "position_size", "mark_price", "rate", "amount", "currency"]
    assert paper.funding.select(funding_columns).equals(backtest.funding.select(funding_columns))
    assert paper.funding["amount"].to_list() == [Decimal("-50"), Decimal("-50")]
    for key in ("pnl_total", "pnl_price", "pnl_funding", "pnl_fees", "orders", "fills"):
        assert paper.stats[key] == backtest.stats[key], key
    reconciliation = paper.stats["reconciliation"]["USDT"]
    assert Decimal(reconciliation["difference"]) == 0
    assert "funding_outside_account" not in reconciliation
