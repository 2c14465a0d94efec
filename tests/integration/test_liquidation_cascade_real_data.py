"""LiquidationCascade on real data: the Binance ``forceOrder`` capture of 2025-10-22 with Binance ETH 15-minute bars.

Inputs (../shared/data, read at run time): ``binance_liquidations/binance_liquidations_head.csv`` (71 rows of
an all-market capture, 09:36-09:4x UTC; seven ETHUSDT longs liquidated 09:38:11-09:39:28) and
``binance_freqtrade/futures/ETH_USDT_USDT-15m-futures.feather``. The run is configs/liquidation_cascade_binance_eth.toml
with its catalog and threshold replaced.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from engine.backtest import RunResult, parse_config, run_backtest
from tests.kit.store import catalog_from_files

BARS = "binance_freqtrade/futures/ETH_USDT_USDT-15m-futures.feather"
CAPTURE = "binance_liquidations/binance_liquidations_head.csv"
# The capture's seven ETHUSDT rows, filled_qty x avg_price each (the recorder's usd_value is a float product):
# 0.063 x 3846.52 + 0.423 x 3845.4 + 9.996 x 3844.54 + 3.681 x 3844.19 + 1.289 x 3843.84 + 16.289 x 3841.71
# + 0.432 x 3841.0, all inside the bar opening 09:30 (closing 09:45).
ETH_LIQUIDATED_USD = Decimal("123641.05614")


@pytest.fixture(scope="module")
def eth_catalog(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return catalog_from_files(
        tmp_path_factory.mktemp("cascade-real"),
        [shared_data / BARS, shared_data / CAPTURE],
        start=datetime(2025, 10, 21, tzinfo=UTC),
        end=datetime(2025, 10, 24, tzinfo=UTC),
        venues=["binance"],
        symbols=["ETH-USDT-PERP"],
    )


def _run(catalog: Path, threshold: Decimal) -> RunResult:
    text = (Path(__file__).parents[2] / "configs" / "liquidation_cascade_binance_eth.toml").read_text()
    text = text.replace('catalog = "data/catalog"', f'catalog = "{catalog}"', 1)
    text = text.replace('threshold_notional_usd = "100000"', f'threshold_notional_usd = "{threshold}"')
    return run_backtest(parse_config(text.encode()), out_dir=None)


def test_real_eth_cascade_is_faded_at_the_close_of_its_bar(eth_catalog: Path, shared_data: Path) -> None:
    result = _run(eth_catalog, ETH_LIQUIDATED_USD)  # the threshold exactly at the burst: it triggers
    fills = result.fills.sort("ts")
    assert fills.height == 2
    entry, exit_ = fills.rows(named=True)
    bars = pl.read_ipc(shared_data / BARS)
    close = bars.filter(pl.col("date") == datetime(2025, 10, 22, 9, 30, tzinfo=UTC))["close"].item()
    # Longs liquidated -> fade buys 10000 USDT at the 09:45 close, rounded down to the 0.001 ETH lot.
    assert (entry["ts"].hour, entry["ts"].minute, entry["side"]) == (9, 45, "BUY")
    assert entry["price"] == Decimal(str(close)) == Decimal("3833.79")
    assert entry["quantity"] == (Decimal(10000) / entry["price"]).quantize(Decimal("0.001"), rounding="ROUND_DOWN")
    assert (exit_["side"], exit_["quantity"]) == ("SELL", entry["quantity"])
    exits = dict(result.orders.select("type", "status").iter_rows())
    assert sorted(exits.values()).count("FILLED") == 2  # the entry and exactly one exit; the others cancelled
    assert result.stats["positions"] == 1


def test_real_eth_cascade_one_cent_short_of_the_threshold_trades_nothing(eth_catalog: Path) -> None:
    result = _run(eth_catalog, ETH_LIQUIDATED_USD + Decimal("0.01"))
    assert result.stats["orders"] == 0
