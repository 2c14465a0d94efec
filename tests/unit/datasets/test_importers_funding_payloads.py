"""Funding REST payloads (Binance, Bybit, OKX, Hyperliquid): samples, pages, defaults, error responses."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from datasets.errors import SourceFormatError
from datasets.importers import ImportOptions
from datasets.importers.base import sha256_of
from datasets.importers.funding_payloads import (
    BinanceFundingPayloadImporter,
    BybitFundingPayloadImporter,
    HyperliquidFundingPayloadImporter,
    OkxFundingPayloadImporter,
)
from datasets.store import SourceInfo, Store

BINANCE = BinanceFundingPayloadImporter()
BYBIT = BybitFundingPayloadImporter()
OKX = OkxFundingPayloadImporter()
HYPERLIQUID = HyperliquidFundingPayloadImporter()
SAMPLES = {
    "binance": (
        "tests/integration_tests/adapters/binance/resources/http_responses/http_futures_market_funding_rate.json"
    ),
    "bybit": "crates/adapters/bybit/test_data/http_get_funding_history.json",
    "okx": "crates/adapters/okx/test_data/http_get_funding_rate_history.json",
    "hyperliquid": "crates/adapters/hyperliquid/test_data/http_funding_history.json",
}
IMPORTERS = {"binance": BINANCE, "bybit": BYBIT, "okx": OKX, "hyperliquid": HYPERLIQUID}


def _sample(shared_data: Path, venue: str) -> Path:
    return shared_data / "exchange_payloads" / SAMPLES[venue]


def _read(importer: Any, path: Path) -> pl.DataFrame:
    [batch] = importer.read(path, ImportOptions())
    assert batch.kind == "funding"
    frame: pl.DataFrame = batch.frame
    return frame


def _write_json(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document, indent=2))
    return path


def _utc(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_binance_sample_reads_exact_rates_at_settlements(shared_data: Path) -> None:
    frame = _read(BINANCE, _sample(shared_data, "binance"))
    assert frame.select("venue", "symbol", "ts", "rate", "interval").rows() == [
        ("binance", "BTC-USDT-PERP", _utc(2019, 10, 9, 8), Decimal("-0.0375"), "8h"),
        ("binance", "BTC-USDT-PERP", _utc(2019, 10, 9, 16), Decimal("0.0001"), "8h"),
    ]


def test_bybit_sample_newest_first_is_sorted_oldest_first(shared_data: Path) -> None:
    frame = _read(BYBIT, _sample(shared_data, "bybit"))
    assert frame.select("symbol", "ts", "rate").rows() == [
        ("BTC-USDT-PERP", _utc(2024, 3, 8, 0), Decimal("0.00015")),
        ("BTC-USDT-PERP", _utc(2024, 3, 8, 8), Decimal("0.0001")),
    ]
    assert frame["_row"].to_list() == [1, 0]  # rows still point at their records in the payload


def test_okx_sample_stores_realized_rate(shared_data: Path) -> None:
    frame = _read(OKX, _sample(shared_data, "okx"))
    # fundingRate was -0.0000236017 and 0.0001515032; realizedRate is what settled.
    assert frame.select("symbol", "ts", "rate").rows() == [
        ("BTC-USDT-PERP", _utc(2023, 12, 31, 16), Decimal("-0.00002")),
        ("BTC-USDT-PERP", _utc(2024, 1, 1, 0), Decimal("0.00015")),
    ]


def test_okx_record_without_realized_rate_uses_funding_rate(tmp_path: Path) -> None:
    # Shape of OKX /api/v5/public/funding-rate-history with realizedRate empty (hand-made).
    page = {
        "code": "0",
        "msg": "",
        "data": [
            {"instId": "ETH-USDT-SWAP", "fundingRate": "0.0001", "realizedRate": "", "fundingTime": "1704067200000"}
        ],
    }
    frame = _read(OKX, _write_json(tmp_path, "okx_funding.json", page))
    assert frame.select("symbol", "rate", "interval").row(0) == ("ETH-USDT-PERP", Decimal("0.0001"), "8h")


def test_bybit_usdc_perp_name_maps_to_usdc_perp(tmp_path: Path) -> None:
    # Bybit names USDC-settled perps BASE + "PERP" (hand-made page in the v5 shape).
    record = {"symbol": "ETHPERP", "fundingRate": "0.0001", "fundingRateTimestamp": "1709884800000"}
    page = {"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": [record]}}
    assert _read(BYBIT, _write_json(tmp_path, "bybit.json", page))["symbol"].to_list() == ["ETH-USDC-PERP"]


def test_hyperliquid_sample_keeps_premium_and_hourly_clock(shared_data: Path) -> None:
    frame = _read(HYPERLIQUID, _sample(shared_data, "hyperliquid"))
    assert frame.select("symbol", "rate", "premium", "interval").rows() == [
        ("BTC-USDC-PERP", Decimal("0.0000125"), Decimal("0.00029005"), "1h"),
        ("BTC-USDC-PERP", Decimal("-0.0000081"), Decimal("-0.000125"), "1h"),
        ("BTC-USDC-PERP", Decimal("0.0000033"), None, "1h"),
    ]


@pytest.mark.parametrize("venue", list(SAMPLES))
def test_sample_written_to_store_reads_back_exact_first_rate(shared_data: Path, store_root: Path, venue: str) -> None:
    importer = IMPORTERS[venue]
    path = _sample(shared_data, venue)
    store = Store(store_root)
    for batch in importer.read(path, ImportOptions()):
        store.write(batch.kind, batch.frame, SourceInfo(str(path), sha256_of(path), importer.name, importer.version))
    stored = store.scan("funding", venue=venue).collect().sort("ts")
    expected = {"binance": "-0.0375", "bybit": "0.00015", "okx": "-0.00002", "hyperliquid": "0.0000125"}
    assert stored["rate"][0] == Decimal(expected[venue])


@pytest.mark.parametrize("venue", list(SAMPLES))
def test_sample_is_sniffed_by_its_importer_only(shared_data: Path, venue: str) -> None:
    path = _sample(shared_data, venue)
    assert [name for name, importer in IMPORTERS.items() if importer.sniff(path)] == [venue]


def test_list_of_bybit_pages_reads_all_and_drops_overlap(shared_data: Path, tmp_path: Path) -> None:
    page = json.loads(_sample(shared_data, "bybit").read_text())
    older = json.loads(json.dumps(page))
    older["result"]["list"] = [
        page["result"]["list"][1],  # the overlap a paginating downloader saves twice
        {"symbol": "BTCUSDT", "fundingRate": "-0.00005", "fundingRateTimestamp": "1709827200000"},
    ]
    frame = _read(BYBIT, _write_json(tmp_path, "bybit_funding_pages.json", [page, older]))
    assert frame["ts"].to_list() == [_utc(2024, 3, 7, 16), _utc(2024, 3, 8, 0), _utc(2024, 3, 8, 8)]
    assert frame["interval"].to_list() == ["8h", "8h", "8h"]


def test_list_of_binance_pages_reads_every_page(shared_data: Path, tmp_path: Path) -> None:
    page = json.loads(_sample(shared_data, "binance").read_text())
    later = [{"symbol": "BTCUSDT", "fundingRate": "0.00010000", "fundingTime": 1570665600000, "markPrice": "8595.41"}]
    frame = _read(BINANCE, _write_json(tmp_path, "binance_funding_pages.json", [page, later]))
    assert frame.height == 3
    assert frame["mark_price"].to_list() == [None, None, Decimal("8595.41")]


@pytest.mark.parametrize(
    ("importer", "record", "interval"),
    [
        (BINANCE, {"symbol": "ETHUSDT", "fundingRate": "0.0001", "fundingTime": 1704067200000}, "8h"),
        (HYPERLIQUID, {"coin": "ETH", "fundingRate": "0.0000125", "time": 1704067200000}, "1h"),
    ],
    ids=["binance-8h", "hyperliquid-1h"],
)
def test_single_settlement_takes_venue_default_interval(
    tmp_path: Path, importer: Any, record: dict[str, Any], interval: str
) -> None:
    frame = _read(importer, _write_json(tmp_path, "funding.json", [record]))
    assert frame["interval"].to_list() == [interval]


def test_two_settlements_four_hours_apart_take_their_spacing(tmp_path: Path) -> None:
    records = [
        {"symbol": "ETHUSDT", "fundingRate": "0.0001", "fundingTime": 1704067200000},
        {"symbol": "ETHUSDT", "fundingRate": "0.0001", "fundingTime": 1704081600000},
    ]
    assert _read(BINANCE, _write_json(tmp_path, "funding.json", records))["interval"].to_list() == ["4h", "4h"]


def test_bybit_error_response_raises_with_ret_code(tmp_path: Path) -> None:
    # Bybit v5 error envelope (hand-made from the documented shape).
    error = {"retCode": 10001, "retMsg": "params error: symbol invalid", "result": {}, "time": 1709891679050}
    path = _write_json(tmp_path, "bybit_funding_BTCUSDT.json", error)
    assert BYBIT.sniff(path)
    with pytest.raises(
        SourceFormatError, match=re.escape(str(path)) + r": page 0 is a Bybit error response \(retCode 10001"
    ):
        _read(BYBIT, path)


def test_okx_error_response_raises_with_code(tmp_path: Path) -> None:
    # OKX v5 error envelope (hand-made from the documented shape).
    error = {"code": "51001", "msg": "Instrument ID does not exist", "data": []}
    path = _write_json(tmp_path, "okx_funding_BTC.json", error)
    assert OKX.sniff(path)
    with pytest.raises(
        SourceFormatError, match=re.escape(str(path)) + r": page 0 is an OKX error response \(code '51001'"
    ):
        _read(OKX, path)


def test_binance_error_object_raises_with_message(tmp_path: Path) -> None:
    path = _write_json(tmp_path, "binance_funding.json", {"code": -1121, "msg": "Invalid symbol."})
    with pytest.raises(SourceFormatError, match=re.escape(str(path)) + r": holds an error response .*Invalid symbol"):
        _read(BINANCE, path)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"symbol": "BTCUSDT", "fundingRate": "0.0001", "time": 1570608000000},
            "record 1: key 'fundingTime' is missing",
        ),
        ({"symbol": "BTCUSDT", "fundingRate": "0.0001", "fundingTime": "2019-10-09"}, "record 1, field 'time'"),
        ({"symbol": "BTCUSDT", "fundingRate": "1bp", "fundingTime": 1570608000000}, "record 1, field 'rate'"),
        ({"symbol": "BTCUSDT", "fundingRate": None, "fundingTime": 1570608000000}, "record 1, field 'rate': is empty"),
    ],
    ids=["renamed-key", "bad-timestamp", "bad-number", "null-rate"],
)
def test_malformed_record_raises_naming_file_and_record(tmp_path: Path, record: dict[str, Any], message: str) -> None:
    good = {"symbol": "BTCUSDT", "fundingRate": "0.0001", "fundingTime": 1570636800000}
    path = _write_json(tmp_path, "funding.json", [good, record])
    with pytest.raises(SourceFormatError, match=re.escape(str(path)) + ": " + message):
        _read(BINANCE, path)


def test_truncated_payload_raises_with_position(shared_data: Path, tmp_path: Path) -> None:
    text = _sample(shared_data, "okx").read_text()
    path = tmp_path / "okx_funding.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(SourceFormatError, match=re.escape(str(path)) + r": line \d+, column \d+: not valid JSON"):
        _read(OKX, path)
