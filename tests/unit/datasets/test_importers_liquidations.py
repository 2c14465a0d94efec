"""Liquidations: Binance forceOrder (CSV capture, stream JSON, JSON lines) and Hyperliquid's official dump."""

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
from datasets.importers.liquidations import (
    ACCOUNT_LEVEL_SYMBOL,
    BinanceForceOrderImporter,
    HyperliquidLiquidationsImporter,
)
from datasets.schemas import LIQUIDATIONS
from datasets.store import SourceInfo, Store

BINANCE = BinanceForceOrderImporter()
HYPERLIQUID = HyperliquidLiquidationsImporter()
BINANCE_CSV = "binance_liquidations/binance_liquidations_head.csv"
STREAM_JSON = "exchange_payloads/crates/adapters/binance/test_data/futures/market_data_json/liquidation_stream.json"
HYPERLIQUID_CSV = "hyperliquid_official/liquidations.csv"
CSV_HEADER = "timestamp,symbol,side,avg_price,filled_qty,usd_value"
# Rows 1-2 of binance_liquidations_head.csv (a recorder's forceOrder capture).
CSV_ROW_1 = "2025-10-22T09:36:42.306000,SOLUSDT,SELL,184.22,0.04,7.3688"
CSV_ROW_2 = "2025-10-22T09:36:44.521000,IDOLUSDT,BUY,0.0360982,1252.0,45.1949464"
HL_HEADER = "time,user,liquidated_ntl_pos,liquidated_account_value,leverage_type"
HL_ROW = "2023-02-28T21:10:23Z,0x677d831aef5328190852e24f13c46cac05f984e7,356.80015,2.956494,Cross"


def _read(importer: Any, path: Path) -> pl.DataFrame:
    [batch] = importer.read(path, ImportOptions())
    assert batch.kind == "liquidations"
    frame: pl.DataFrame = batch.frame
    return frame


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _event(symbol: str, side: str, price: str, quantity: str, trade_ms: int) -> dict[str, Any]:
    # A Binance USDT-M forceOrder stream event, shaped like liquidation_stream.json.
    order = {"s": symbol, "S": side, "o": "LIMIT", "f": "IOC", "q": quantity, "p": price, "ap": price}
    return {
        "e": "forceOrder",
        "E": trade_ms + 5,
        "o": order | {"X": "FILLED", "l": quantity, "z": quantity, "T": trade_ms},
    }


def _store(root: Path, importer: Any, *paths: Path) -> Store:
    store = Store(root)
    for path in paths:
        for batch in importer.read(path, ImportOptions()):
            info = SourceInfo(str(path), sha256_of(path), importer.name, importer.version)
            store.write(batch.kind, batch.frame, info)
    return store


def test_real_binance_capture_reads_71_liquidations(shared_data: Path) -> None:
    frame = _read(BINANCE, shared_data / BINANCE_CSV)
    assert frame.height == 71
    assert frame.columns == [*LIQUIDATIONS.columns, "_row"]
    first = frame.row(0, named=True)
    assert (first["symbol"], first["side"], first["price"], first["quantity"]) == (
        "SOL-USDT-PERP",
        "long",  # SELL: the liquidation order sold a long
        Decimal("184.22"),
        Decimal("0.04"),
    )
    assert first["ts"] == datetime(2025, 10, 22, 9, 36, 42, 306_000, tzinfo=UTC)
    assert first["notional_usd"] == Decimal("7.3688")
    assert (first["venue"], first["market"], first["source"]) == ("binance", "perp", "binance-force-order")
    assert frame.filter(pl.col("symbol") == "IDOL-USDT-PERP")["side"].to_list() == ["short"]


def test_real_binance_capture_keeps_non_ascii_symbol(shared_data: Path) -> None:
    frame = _read(BINANCE, shared_data / BINANCE_CSV)
    assert frame.filter(pl.col("symbol") == "币安人生-USDT-PERP")["price"].to_list() == [Decimal("0.31173")]


def test_real_binance_capture_notional_is_exact_product(shared_data: Path) -> None:
    # The capture's usd_value is 296.92564200000004 (a float product); 0.0967815 x 3068 is exactly 296.925642.
    frame = _read(BINANCE, shared_data / BINANCE_CSV)
    row = frame.filter((pl.col("symbol") == "4-USDT-PERP") & (pl.col("quantity") == Decimal("3068")))
    assert row["notional_usd"].item() == Decimal("296.925642")


def test_real_binance_capture_event_ids_are_unique_and_stable(shared_data: Path) -> None:
    first = _read(BINANCE, shared_data / BINANCE_CSV)["event_id"]
    assert first.n_unique() == 71
    assert first.str.contains(r"^[0-9a-f]{64}$").all()
    assert first.to_list() == _read(BINANCE, shared_data / BINANCE_CSV)["event_id"].to_list()


def test_real_stream_event_reads_average_price_and_filled_quantity(shared_data: Path) -> None:
    frame = _read(BINANCE, shared_data / STREAM_JSON)
    assert frame.select("symbol", "ts", "side", "price", "quantity", "notional_usd").rows() == [
        (
            "BTC-USDT-PERP",
            datetime(2019, 9, 9, 7, 34, 20, 893_000, tzinfo=UTC),  # T = 1568014460893 ms
            "long",
            Decimal("9910.12345678"),
            Decimal("0.014"),
            Decimal("138.74172839492"),
        )
    ]


def test_json_lines_recording_reads_one_event_per_line(tmp_path: Path) -> None:
    wrapped = {"stream": "!forceOrder@arr", "data": _event("ETHUSDT", "BUY", "3846.52", "0.063", 1761125891258)}
    lines = [json.dumps(_event("BTCUSDT", "SELL", "107952.8", "0.008", 1761125921490)), "", json.dumps(wrapped)]
    frame = _read(BINANCE, _write(tmp_path, "force_orders.jsonl", lines))
    assert frame.select("symbol", "side", "_row").rows() == [
        ("ETH-USDT-PERP", "short", 2),
        ("BTC-USDT-PERP", "long", 0),
    ]


def test_coin_margined_event_has_no_usd_notional(tmp_path: Path) -> None:
    # dstream (COIN-M) quantities are contracts, not coins: price x quantity is not a USD notional.
    path = _write(tmp_path, "event.json", [json.dumps(_event("BTCUSD_PERP", "BUY", "107950.1", "3", 1761125921490))])
    assert _read(BINANCE, path).select("symbol", "side", "notional_usd").row(0) == ("BTC-USD-PERP", "short", None)


def test_same_event_from_csv_and_stream_is_stored_once(tmp_path: Path, store_root: Path) -> None:
    csv_path = _write(tmp_path, "capture.csv", [CSV_HEADER, CSV_ROW_1, CSV_ROW_2])
    # CSV_ROW_1 as the stream sent it: T = 2025-10-22T09:36:42.306 UTC.
    json_path = _write(
        tmp_path, "event.json", [json.dumps(_event("SOLUSDT", "SELL", "184.220", "0.040", 1761125802306))]
    )
    assert _read(BINANCE, json_path)["event_id"].item() == _read(BINANCE, csv_path)["event_id"][0]
    store = _store(store_root, BINANCE, csv_path, json_path)
    assert store.scan("liquidations", venue="binance").collect().height == 2


def test_real_binance_capture_written_to_store_reads_back_exact_price(shared_data: Path, store_root: Path) -> None:
    store = _store(store_root, BINANCE, shared_data / BINANCE_CSV)
    stored = store.scan("liquidations", venue="binance").collect()
    assert stored.height == 71
    assert stored.filter(pl.col("symbol") == "BTC-USDT-PERP")["price"].sort().to_list() == [
        Decimal("107946.6"),
        Decimal("107952.8"),
    ]


def test_real_hyperliquid_dump_reads_account_level_liquidations(shared_data: Path) -> None:
    frame = _read(HYPERLIQUID, shared_data / HYPERLIQUID_CSV)
    assert frame.height == 62  # 62 data lines below the header (DATA.md says 61)
    first = frame.row(0, named=True)
    assert (first["venue"], first["symbol"], first["market"], first["side"], first["price"]) == (
        "hyperliquid",
        ACCOUNT_LEVEL_SYMBOL,
        "perp",
        None,
        None,
    )
    assert first["ts"] == datetime(2023, 2, 28, 21, 10, 23, tzinfo=UTC)
    assert (first["account"], first["notional_usd"]) == (
        "0x677d831aef5328190852e24f13c46cac05f984e7",
        Decimal("356.80015"),
    )
    assert frame["event_id"].n_unique() == 62


def test_real_hyperliquid_dump_written_to_store_reads_back_exact_notional(shared_data: Path, store_root: Path) -> None:
    store = _store(store_root, HYPERLIQUID, shared_data / HYPERLIQUID_CSV)
    stored = store.scan("liquidations", venue="hyperliquid", symbol=ACCOUNT_LEVEL_SYMBOL).collect()
    assert stored.height == 62
    assert stored.filter(pl.col("ts") == datetime(2023, 5, 1, 21, 0, 7, tzinfo=UTC))["notional_usd"].item() == Decimal(
        "30.35088"
    )


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([CSV_HEADER.replace("avg_price", "price"), CSV_ROW_1], "column 'avg_price' is missing"),
        ([CSV_HEADER, CSV_ROW_1, CSV_ROW_2.replace("2025-10-22T09", "22/10/2025 09", 1)], "line 3, field 'time'"),
        ([CSV_HEADER, CSV_ROW_1, CSV_ROW_2.replace("0.0360982", "0.036O982", 1)], "line 3, field 'price'"),
        ([CSV_HEADER, CSV_ROW_1, CSV_ROW_2.replace("BUY", "HOLD", 1)], "line 3, field 'side': expected BUY or SELL"),
        ([CSV_HEADER, CSV_ROW_1, "2025-10-22T09:36:44.521000,IDOLUSDT,BUY"], "line 3, field 'avg_price': is missing"),
    ],
    ids=["renamed-column", "bad-timestamp", "bad-number", "bad-side", "truncated"],
)
def test_malformed_binance_capture_raises_naming_file_and_row(tmp_path: Path, lines: list[str], message: str) -> None:
    path = _write(tmp_path, "capture.csv", lines)
    with pytest.raises(SourceFormatError, match=re.escape(str(path)) + ": " + message):
        _read(BINANCE, path)


def test_truncated_json_lines_recording_raises_naming_line(tmp_path: Path) -> None:
    whole = json.dumps(_event("BTCUSDT", "SELL", "107952.8", "0.008", 1761125921490))
    path = _write(tmp_path, "force_orders.jsonl", [whole, whole[:40]])
    with pytest.raises(SourceFormatError, match=re.escape(str(path)) + ": line 2: not a JSON event"):
        _read(BINANCE, path)


def test_stream_event_without_average_price_raises_naming_key(tmp_path: Path) -> None:
    event = _event("BTCUSDT", "SELL", "107952.8", "0.008", 1761125921490)
    del event["o"]["ap"]
    path = _write(tmp_path, "event.json", [json.dumps([event])])
    with pytest.raises(SourceFormatError, match=re.escape(str(path)) + ": record 0: key 'o.ap' is missing"):
        _read(BINANCE, path)


def test_stream_event_with_bad_trade_time_raises_naming_record(tmp_path: Path) -> None:
    event = _event("BTCUSDT", "SELL", "107952.8", "0.008", 1761125921490)
    event["o"]["T"] = "2025-10-22"
    path = _write(tmp_path, "event.json", [json.dumps(event)])
    with pytest.raises(
        SourceFormatError, match=re.escape(str(path)) + ": record 0, field 'time': expected an integer epoch"
    ):
        _read(BINANCE, path)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([HL_HEADER.replace("user", "address"), HL_ROW], "column 'user' is missing"),
        ([HL_HEADER, HL_ROW.replace("2023-02-28T21:10:23Z", "Feb 28 2023")], "line 2, field 'time'"),
        ([HL_HEADER, HL_ROW.replace("356.80015", "356,80015")], "line 2, field '#6': expected 5 fields"),
        ([HL_HEADER, HL_ROW.replace("356.80015", "$356.80015")], "line 2, field 'liquidated_ntl_pos'"),
        (
            [HL_HEADER, HL_ROW, "2023-03-02T22:27:37Z,0xc12899141fde243c1f6a1e77f285aafdcb50afc8"],
            "line 3, field 'liquidated_ntl_pos': is missing",
        ),
    ],
    ids=["renamed-column", "bad-timestamp", "extra-field", "bad-number", "truncated"],
)
def test_malformed_hyperliquid_dump_raises_naming_file_and_row(tmp_path: Path, lines: list[str], message: str) -> None:
    path = _write(tmp_path, "liquidations.csv", lines)
    with pytest.raises(SourceFormatError, match=re.escape(str(path)) + ": " + message):
        _read(HYPERLIQUID, path)
