"""A strategy hears the bars the run config names, and a stream that delivers nothing fails the run.

Before the fix, ``[data].bar_spec = "5-MINUTE-LAST-EXTERNAL"`` with ``FundingShort``'s default 1-hour
bar spec ran, exited 0 and traded nothing: the strategy subscribed to bars the catalog did not hold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from datasets.catalog import export_catalog
from datasets.store import Store
from datasets.testing import write_fixture_instruments
from engine.backtest import parse_config, run_backtest
from engine.errors import MissingDataError
from tests.kit.engine import TEST_SOURCE
from tests.kit.store import funding_batch, ohlcv_batch

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("streams")
    closes = [f"{42000 + 5 * (i % 7)}.0" for i in range(2 * 24 * 12)]
    rows = [(T0 + i * FIVE_MINUTES, c, c, c, c, "10") for i, c in enumerate(closes)]
    store = Store(root / "store")
    store.write(
        "ohlcv",
        pl.concat(
            [
                ohlcv_batch(rows, interval="5m"),
                ohlcv_batch(rows, interval="5m", price_type="mark"),
            ]
        ),
        TEST_SOURCE,
    )
    settlements = [(T0 + timedelta(hours=h), "0.0002") for h in (8, 16, 24, 32, 40)]
    store.write("funding", funding_batch(settlements, interval="8h"), TEST_SOURCE)
    write_fixture_instruments(store)
    export_catalog(store, root / "catalog")
    return root / "catalog"


def _config(catalog: Path, *, bar_spec_param: str = "") -> str:
    return f"""
name = "streams"
start = 2024-01-01T01:00:00Z
end = 2024-01-03T00:00:00Z
[data]
catalog = "{catalog}"
bar_spec = "5-MINUTE-LAST-EXTERNAL"
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["10000 USDT"]
leverage = 2
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["binance:BTC-USDT-PERP"]
notional = "10000"
enter_rate = "0.0001"
{bar_spec_param}
"""


def test_strategy_without_its_own_bar_spec_trades_on_the_run_configs_bars(catalog: Path) -> None:
    result = run_backtest(parse_config(_config(catalog).encode()), out_dir=None)
    assert result.stats["bars"] == 2 * 24 * 12 - 12
    # Funding 0.0002 >= enter_rate from the first settled rate on: the strategy shorts once and holds.
    assert result.stats["orders"] == 1
    assert result.fills["side"].to_list() == ["SELL"]


def test_strategy_subscribed_to_bars_the_catalog_lacks_fails_naming_the_stream(catalog: Path) -> None:
    config = parse_config(_config(catalog, bar_spec_param='bar_spec = "1-HOUR-LAST-EXTERNAL"').encode())
    with pytest.raises(
        MissingDataError, match=r"bars BTCUSDT-PERP\.BINANCE-1-HOUR-LAST-EXTERNAL.*delivered none"
    ) as info:
        run_backtest(config, out_dir=None)
    assert "bars BTCUSDT-PERP.BINANCE-5-MINUTE-LAST-EXTERNAL" in str(info.value)
