"""Liquidation recorders against loopback WebSocket servers speaking each venue's format.

Event shapes: Binance ``forceOrder`` as in ``../shared/data/exchange_payloads/.../liquidation_stream.json``;
Bybit v5 ``allLiquidation.<symbol>`` and OKX ``liquidation-orders`` as documented by the venues (their
public API docs' sample messages; no recording of them exists under ``../shared/data``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from datasets.acquire.errors import PlanError
from datasets.acquire.record import STREAMS, LiquidationRecorder, RecorderConfig, liquidation_rows
from datasets.acquire.tasks import spawn
from datasets.importers.base import ImportOptions
from datasets.importers.liquidations import BinanceForceOrderImporter
from datasets.store import Store
from datasets.testing import write_fixture_instruments

T0 = 1_704_067_200_000


def binance_event(i: int) -> dict[str, Any]:
    return {
        "e": "forceOrder",
        "E": T0 + i * 1000 + 5,
        "o": {
            "s": "BTCUSDT",
            "S": "SELL" if i % 2 else "BUY",
            "o": "LIMIT",
            "f": "IOC",
            "q": "0.014",
            "p": "9910.00000000",
            "ap": f"9910.{i:02d}",
            "X": "FILLED",
            "l": "0.014",
            "z": "0.014",
            "T": T0 + i * 1000,
        },
    }


def bybit_event(i: int) -> dict[str, Any]:
    return {
        "topic": "allLiquidation.BTCUSDT",
        "type": "snapshot",
        "ts": T0 + i * 1000 + 5,
        "data": [
            {"T": T0 + i * 1000, "s": "BTCUSDT", "S": "Buy" if i % 2 else "Sell", "v": "0.003", "p": f"43511.{i}"}
        ],
    }


def okx_event(i: int) -> dict[str, Any]:
    detail = {
        "bkLoss": "0",
        "bkPx": f"43000.{i}",
        "ccy": "",
        "posSide": "long" if i % 2 else "short",
        "side": "sell" if i % 2 else "buy",
        "sz": "2",
        "ts": str(T0 + i * 1000),
    }
    return {
        "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
        "data": [
            {
                "details": [detail],
                "instFamily": "BTC-USDT",
                "instId": "BTC-USDT-SWAP",
                "instType": "SWAP",
                "uly": "BTC-USDT",
            }
        ],
    }


EVENTS: dict[str, Callable[[int], dict[str, Any]]] = {"binance": binance_event, "bybit": bybit_event, "okx": okx_event}
ACKS = {
    "binance": {"result": None, "id": 1},
    "bybit": {"success": True, "ret_msg": "", "conn_id": "c", "op": "subscribe"},
    "okx": {"event": "subscribe", "arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "connId": "c"},
}


async def _record(venue: str, store: Store, *, drop: str) -> tuple[Any, list[Any]]:
    subscriptions: list[Any] = []
    connections = 0

    async def handler(socket: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        subscriptions.append(json.loads(await socket.recv()))
        await socket.send(json.dumps(ACKS[venue]))
        if connections == 1:
            for i in range(5):
                await socket.send(json.dumps(EVENTS[venue](i)))
            await asyncio.sleep(0.05)
            if drop == "abort":
                socket.transport.abort()  # the connection vanishes without a closing handshake
            else:
                await socket.close(code=1011, reason="server restart")
            return
        # After the reconnect the venue replays the last two events, then continues.
        for i in range(3, 10):
            await socket.send(json.dumps(EVENTS[venue](i)))
        await socket.wait_closed()

    backoffs: list[float] = []

    async def fast_sleep(secs: float) -> None:
        backoffs.append(secs)
        await asyncio.sleep(0)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        config = RecorderConfig(
            venue=venue,
            symbols=("BTC-USDT-PERP",),
            url=f"ws://127.0.0.1:{port}",
            batch_events=3,
            batch_secs=30.0,
            use_env_proxy=False,
            open_timeout_secs=2.0,
            close_timeout_secs=1.0,
        )
        recorder = LiquidationRecorder(store, config, sleep=fast_sleep)
        stop = asyncio.Event()
        task = spawn(recorder.run(stop), name="test-recorder")
        async with asyncio.timeout(10):
            while recorder.stats.events < 10:  # noqa: ASYNC110 (polls the recorder's own counter; test only)
                await asyncio.sleep(0.01)
        stop.set()
        stats = await task
    assert backoffs == [1.0]
    return stats, subscriptions


@pytest.mark.parametrize(("venue", "drop"), [("binance", "abort"), ("bybit", "close"), ("okx", "abort")])
def test_disconnect_and_reconnect_lose_and_duplicate_no_event(venue: str, drop: str, store_root: Path) -> None:
    store = Store(store_root)
    stats, subscriptions = asyncio.run(_record(venue, store, drop=drop))

    assert (stats.events, stats.duplicates, stats.reconnects, stats.connections) == (10, 2, 1, 2)
    assert stats.batches >= 4  # batches of 3 events, plus the last one written on stop
    rows = store.scan("liquidations").sort("ts").collect()
    assert rows.height == 10
    assert rows["event_id"].is_unique().all()
    assert [int(t.timestamp() * 1000) for t in rows["ts"]] == [T0 + i * 1000 for i in range(10)]
    assert rows["side"].to_list() == ["short", "long"] * 5
    assert len(subscriptions) == 2  # subscribed again on the new connection


def test_subscription_messages_follow_each_venue() -> None:
    assert json.loads(STREAMS["binance"].subscribe(())[0])["params"] == ["!forceOrder@arr"]
    topics = [f"allLiquidation.S{i}USDT" for i in range(12)]
    messages = STREAMS["bybit"].subscribe(tuple(f"S{i}-USDT-PERP" for i in range(12)))
    assert [json.loads(m)["args"] for m in messages] == [topics[:10], topics[10:]]
    assert json.loads(STREAMS["okx"].subscribe(())[0])["args"] == [
        {"channel": "liquidation-orders", "instType": "SWAP"}
    ]


def test_bybit_recorder_without_symbols_raises() -> None:
    with pytest.raises(PlanError, match="bybit has no all-market liquidation stream: pass --symbols"):
        RecorderConfig(venue="bybit")


def test_okx_contracts_become_base_units_and_notional(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    write_fixture_instruments(store)  # OKX BTC swap: 0.01 BTC a contract
    records = STREAMS["okx"].parse(okx_event(1))
    assert liquidation_rows(records, source="okx-liquidation-orders")["quantity"].to_list() == [None]
    [row] = liquidation_rows(records, source="okx-liquidation-orders", store=store).to_dicts()
    assert (row["symbol"], row["side"], row["quantity"]) == ("BTC-USDT-PERP", "long", Decimal("0.02"))
    assert row["notional_usd"] == Decimal("43000.1") * Decimal("0.02")


def test_recorded_binance_event_has_the_same_id_as_the_imported_capture(shared_data: Path, tmp_path: Path) -> None:
    sample = shared_data / "exchange_payloads/crates/adapters/binance/test_data/futures/market_data_json"
    event = json.loads((sample / "liquidation_stream.json").read_text())
    capture = tmp_path / "force_orders.json"
    capture.write_text(json.dumps(event))
    [batch] = BinanceForceOrderImporter().read(capture, ImportOptions())
    recorded = liquidation_rows(STREAMS["binance"].parse(event), source=STREAMS["binance"].source)
    assert recorded.drop("_row").to_dicts() == batch.frame.drop("_row").to_dicts()


def test_quiet_stream_writes_its_batch_after_batch_secs_and_logs_status(
    store_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> int:
        async def handler(socket: ServerConnection) -> None:
            await socket.recv()
            for i in range(2):
                await socket.send(json.dumps(binance_event(i)))
            await socket.wait_closed()

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            config = RecorderConfig(
                venue="binance",
                url=f"ws://127.0.0.1:{port}",
                batch_events=100,
                batch_secs=0.05,
                status_secs=0.05,
                use_env_proxy=False,
                close_timeout_secs=1.0,
            )
            recorder = LiquidationRecorder(Store(store_root), config)
            stop = asyncio.Event()
            task = spawn(recorder.run(stop), name="test-recorder")
            async with asyncio.timeout(5):
                while recorder.stats.batches < 1:  # noqa: ASYNC110 (polls the recorder's own counter; test only)
                    await asyncio.sleep(0.01)
            written_before_stop = Store(store_root).scan("liquidations").collect().height
            stop.set()
            await task
            return written_before_stop

    with caplog.at_level("INFO", logger="datasets.acquire.record"):
        assert asyncio.run(scenario()) == 2
    assert any("binance liquidations: 2 events, 1 batches (2 rows) written, 0 reconnects" in m for m in caplog.messages)
