"""The live liquidation client's message handling: venue messages -> ``Liquidation`` custom data of our instruments.

Messages follow the venues' documented stream shapes (the recorders' tests, tests/unit/datasets/test_record.py,
use the same): Binance ``forceOrder``, Bybit ``allLiquidation``, OKX ``liquidation-orders`` (sizes in contracts).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from nautilus_trader.model import InstrumentId

from datasets.acquire.record import liquidation_rows, stream_spec
from datasets.errors import DatasetError
from engine.live.liquidations import liquidation_stream, stream_liquidations

T_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
BINANCE = {"e": "forceOrder", "E": T_MS, "o": {"s": "BTCUSDT", "S": "SELL", "ap": "42000.5", "z": "0.250", "T": T_MS}}
BYBIT = {
    "topic": "allLiquidation.BTCUSDT",
    "data": [{"T": T_MS, "s": "BTCUSDT", "S": "Sell", "v": "0.003", "p": "43511.5"}],
}
OKX = {
    "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
    "data": [
        {
            "instId": "BTC-USDT-SWAP",
            "details": [{"posSide": "long", "side": "sell", "bkPx": "43000.1", "sz": "2", "ts": str(T_MS)}],
        }
    ],
}


def _ids(venue: str) -> InstrumentId:
    stream = liquidation_stream(venue, ["BTC-USDT-PERP"])
    assert stream is not None
    return stream.symbols["BTC-USDT-PERP"]


def test_binance_force_order_becomes_the_liquidation_a_backtest_reads() -> None:
    stream = liquidation_stream("binance", ["BTC-USDT-PERP", "BTC-USDT"], base_url_ws="ws://127.0.0.1:9")
    assert stream is not None
    assert stream.url == "ws://127.0.0.1:9/ws"
    [item] = stream_liquidations(stream, json.dumps(BINANCE), ts_init=7, multiplier=lambda _: None)
    data = item.data
    assert item.data_type.type_name == "Liquidation"
    assert item.data_type.identifier == "BTCUSDT-PERP.BINANCE"
    assert (data.instrument_id, data.side, data.price, data.quantity) == (
        "BTCUSDT-PERP.BINANCE",
        "long",
        "42000.5",
        "0.25",
    )
    assert Decimal(data.notional_usd) == Decimal("42000.5") * Decimal("0.250")
    assert (data.ts_event, data.ts_init) == (T_MS * 1_000_000, 7)
    # The recorder's event id for the same event: one event, one id, whichever path saw it.
    records = stream_spec("binance").parse(BINANCE)
    assert data.event_id == liquidation_rows(records, source="binance-force-order")["event_id"].item()


def test_bybit_position_side_is_kept_and_other_symbols_are_dropped() -> None:
    stream = liquidation_stream("bybit", ["BTC-USDT-PERP"])
    assert stream is not None
    [item] = stream_liquidations(stream, json.dumps(BYBIT), ts_init=0, multiplier=lambda _: None)
    assert (item.data.side, item.data.instrument_id) == ("short", str(_ids("bybit")))  # S = Sell: a short
    other = {**BYBIT, "topic": "allLiquidation.ETHUSDT", "data": [{**BYBIT["data"][0], "s": "ETHUSDT"}]}
    assert stream_liquidations(stream, json.dumps(other), ts_init=0, multiplier=lambda _: None) == []


def test_okx_contracts_become_base_units_through_the_instruments_multiplier() -> None:
    stream = liquidation_stream("okx", ["BTC-USDT-PERP"])
    assert stream is not None
    [item] = stream_liquidations(stream, json.dumps(OKX), ts_init=0, multiplier=lambda _: Decimal("0.01"))
    assert (item.data.quantity, item.data.side) == ("0.02", "long")  # 2 contracts x 0.01 BTC
    assert Decimal(item.data.notional_usd) == Decimal("43000.1") * Decimal("0.02")
    [unknown] = stream_liquidations(stream, json.dumps(OKX), ts_init=0, multiplier=lambda _: None)
    assert (unknown.data.quantity, unknown.data.notional_usd) == ("", "")


def test_a_malformed_message_raises_for_the_client_to_skip_and_venues_without_a_stream_get_none() -> None:
    stream = liquidation_stream("binance", ["BTC-USDT-PERP"])
    assert stream is not None
    broken = {**BINANCE, "o": {**BINANCE["o"], "S": "SIDEWAYS"}}
    with pytest.raises((KeyError, ValueError, DatasetError)):
        stream_liquidations(stream, json.dumps(broken), ts_init=0, multiplier=lambda _: None)
    assert liquidation_stream("hyperliquid", ["BTC-USDC-PERP"]) is None
    assert liquidation_stream("binance", ["BTC-USDT"]) is None  # spot only: no perp to listen for
