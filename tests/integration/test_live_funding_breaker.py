"""Paper funding in the account the breakers read: a daily loss limit that only funding breaks trips on
the same bar in a replay paper node as in the backtest of the same config.

A hand-made catalog: BTC-USDT-PERP on Binance at a flat 100.0 (trades and marks) for two days, funding of 0.5% every
8 hours, a long of 100 contracts (10,000 USDT) opened on the bar closing 02:00 by ``tests.kit.engine:
RiskHold``, a daily loss limit of 100 USDT. The entry fee is 5 USDT and prices never move, so the day's
loss is 5 USDT until the 08:00 settlement (-50 USDT), 55 until the 16:00 one (-50 USDT), then 105: the
breaker binds on the first bar after 16:00 only if the equity includes funding.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from engine.backtest import parse_config, run_backtest
from engine.live import run_session
from tests.kit.live import FLAT_START, FUNDING_COLUMNS, RISK_COLUMNS, flat_perp_catalog, replay_options, risk_hold_toml

T0 = FLAT_START
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def flat_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return flat_perp_catalog(tmp_path_factory.mktemp("funding-breaker"))


def _config_text(catalog: Path) -> str:
    return risk_hold_toml(
        catalog, name="paper-funding-breaker", end="2024-01-02T12:00:00Z", risk="daily_loss_limit_usd = 100"
    )


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
    paper = run_session(config, replay_options(tmp_path, fresh=True)).result

    breaker = backtest.risk_events.filter(pl.col("control") == "daily_loss")
    sixteen, midnight = T0 + 16 * HOUR, T0 + 24 * HOUR
    assert breaker.select("ts", "action").rows() == [(sixteen, "halt"), (sixteen, "flatten"), (midnight, "resume")]
    assert Decimal(breaker["value"][0]) == Decimal("105")  # 5 fee + 2 x 50 funding
    assert paper.risk_events.select(RISK_COLUMNS).equals(backtest.risk_events.select(RISK_COLUMNS))
    assert paper.funding.select(FUNDING_COLUMNS).equals(backtest.funding.select(FUNDING_COLUMNS))
    assert paper.funding["amount"].to_list() == [Decimal("-50"), Decimal("-50")]
    for key in ("pnl_total", "pnl_price", "pnl_funding", "pnl_fees", "orders", "fills"):
        assert paper.stats[key] == backtest.stats[key], key
    reconciliation = paper.stats["reconciliation"]["USDT"]
    assert Decimal(reconciliation["difference"]) == 0
