"""The importer registry: every real sample is recognised by exactly one importer, the right one."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasets.importers import IMPORTERS, find_importer
from datasets.importers.freqtrade import FreqtradeImporter

SAMPLES = [
    ("binance_freqtrade/futures/BTC_USDT_USDT-8h-funding_rate.feather", "freqtrade-feather"),
    ("binance_vision/LINKUSDT-1m-2026-02.csv", "binance-vision-klines"),
    ("binance_vision/AVAXUSDT-1m-2024-02.csv", "binance-vision-klines"),
    ("hyperliquid_api/funding_history_BTC_ETH.csv", "hyperliquid-funding-csv"),
    ("messy_formats/raw_binance/Funding Rate History_BTCUSDT Perpetual_2024-08-09.csv", "binance-funding-export"),
    ("messy_formats/raw_binance/Funding Rate History_BTCUSD CM Perpetual_2024-08-09.csv", "binance-funding-export"),
    (
        "exchange_payloads/tests/integration_tests/adapters/binance/resources/http_responses/"
        "http_futures_market_funding_rate.json",
        "binance-funding-json",
    ),
    ("exchange_payloads/crates/adapters/bybit/test_data/http_get_funding_history.json", "bybit-funding-json"),
    ("exchange_payloads/crates/adapters/okx/test_data/http_get_funding_rate_history.json", "okx-funding-json"),
    ("exchange_payloads/crates/adapters/hyperliquid/test_data/http_funding_history.json", "hyperliquid-funding-json"),
    ("binance_liquidations/binance_liquidations_head.csv", "binance-force-order"),
    (
        "exchange_payloads/crates/adapters/binance/test_data/futures/market_data_json/liquidation_stream.json",
        "binance-force-order",
    ),
    ("hyperliquid_official/liquidations.csv", "hyperliquid-liquidations-csv"),
    ("exchange_payloads/crates/adapters/dydx/test_data/http_get_historical_funding.json", "dydx-funding-json"),
    ("exchange_payloads/crates/adapters/lighter/test_data/http_fundings.json", "lighter-funding-json"),
]


def test_freqtrade_importer_stays_first() -> None:
    assert isinstance(IMPORTERS[0], FreqtradeImporter)


def test_importer_names_are_unique() -> None:
    names = [importer.name for importer in IMPORTERS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("relative", "expected"), SAMPLES, ids=[name for _, name in SAMPLES])
def test_real_sample_is_sniffed_by_exactly_its_importer(shared_data: Path, relative: str, expected: str) -> None:
    path = shared_data / relative
    assert [importer.name for importer in IMPORTERS if importer.sniff(path)] == [expected]
    found = find_importer(path)
    assert found is not None
    assert found.name == expected


@pytest.mark.parametrize(
    "relative",
    [
        "hyperliquid_api/funding_rates_snapshots.csv",
        "hyperliquid_official/non_mm_trades.csv",
        "binance_margin/binance_leverage_tiers.json",
    ],
)
def test_unrelated_real_file_is_sniffed_by_none_of_these(shared_data: Path, relative: str) -> None:
    these = {name for _, name in SAMPLES}
    assert [i.name for i in IMPORTERS if i.name in these and i.sniff(shared_data / relative)] == []
