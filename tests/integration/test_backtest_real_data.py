"""Real Binance data (../shared/data/binance_freqtrade): import, export, backtest three months, check attribution."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine.backtest import parse_config, run_backtest
from tests.kit.store import catalog_from_files

WINDOW = (datetime(2023, 12, 30, tzinfo=UTC), datetime(2024, 4, 3, tzinfo=UTC))
FILES = (
    "spot/BTC_USDT-1h.feather",
    "futures/BTC_USDT_USDT-1h-futures.feather",
    "futures/BTC_USDT_USDT-1h-mark.feather",
    "futures/BTC_USDT_USDT-1h-funding_rate.feather",  # 8-hourly settlements despite the name
)


@pytest.fixture(scope="module")
def real_catalog(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    paths = [shared_data / "binance_freqtrade" / name for name in FILES]
    return catalog_from_files(tmp_path_factory.mktemp("real"), paths, start=WINDOW[0], end=WINDOW[1])


@pytest.mark.slow
def test_three_months_of_binance_btc_spot_perp_and_funding(real_catalog: Path, tmp_path: Path) -> None:
    config = parse_config(
        f"""
name = "real-binance-btc"
start = 2024-01-01T00:00:00Z
end = 2024-04-01T00:00:00Z
[data]
catalog = "{real_catalog}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT", "BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
leverage = 2
funding_interval = "8h"
[fill]
slippage_bps = 1
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["binance:BTC-USDT-PERP"]
notional = "20000"
enter_rate = "0.0002"
exit_rate = "0.0001"
""".encode()
    )
    result = run_backtest(config, out_dir=tmp_path / "runs")
    stats = result.stats
    total = Decimal(stats["pnl_total"])
    assert total == Decimal(stats["pnl_price"]) + Decimal(stats["pnl_funding"]) + Decimal(stats["pnl_fees"])
    # 91 days of hourly bars on two instruments; Binance settles 3 times a day.
    assert stats["bars"] == 2 * 91 * 24
    assert stats["fills"] > 0
    assert stats["funding_settlements"] > 0
    assert Decimal(stats["pnl_fees"]) < 0
    # Funding ledger: each amount is -size * mark * rate to the cent-of-a-cent the engine books.
    for row in result.funding.iter_rows(named=True):
        assert abs(-row["position_size"] * row["mark_price"] * row["rate"] - row["amount"]) <= Decimal("1e-8")
    assert sum(result.funding["amount"].to_list(), Decimal(0)) == Decimal(stats["pnl_funding"])
    # The exact ledger and the engine's balances agree (Nautilus' float average prices: within 1e-6 USDT).
    assert abs(Decimal(stats["reconciliation"]["USDT"]["difference"])) <= Decimal("0.000001")
