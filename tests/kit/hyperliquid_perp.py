"""A loopback Hyperliquid venue (perps) on 127.0.0.1: ``/info``, ``/exchange`` and ``/ws`` in Hyperliquid's formats.

It answers what Nautilus 2.0.0rc6's Hyperliquid adapter calls (seen by pointing the adapter at it with
``--log-level DEBUG``): ``POST /info`` ``spotMeta``, ``allPerpMetas``, ``meta``, ``clearinghouseState``,
``openOrders``/``frontendOpenOrders``/``userFills`` (empty) and ``order`` actions, on ``POST /exchange`` or,
as the rc6 execution client sends them, a WebSocket ``{"method": "post"}``; the WebSocket takes
``{"method": "subscribe"}`` and streams ``candle`` (1m, closed), ``activeAssetCtx`` (mark price and funding),
``bbo`` (the quotes the adapter prices a market order from: an IOC limit 50 bps through the touch) and,
for the user, ``orderUpdates`` and ``user`` fills.

Formats: meta, spotMeta, allPerpMetas, clearinghouseState, asset contexts and user fills from
``../shared/data/exchange_payloads/crates/adapters/hyperliquid/test_data``, book levels as in its
``ws_book_data.json``; the ``/exchange`` order answer, the ``post`` envelope, ``bbo`` and candle pushes,
subscription acks and ``orderUpdates`` are written from Hyperliquid's API docs
(hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api). Signatures are not checked. Orders fill at
once at the last candle close; taker fee 4.5 bps. Cue: ``HyperliquidState.reject_orders`` answers every
order with the docs' IOC no-match error.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.kit.loopback_venue import LoopbackServer, VenueAccount, now_ms

COIN = "BTC"
TAKER_FEE = Decimal("0.00045")
FEE_STEP = Decimal("0.000001")
HOUR_MS = 3_600_000
UNIVERSE = [{"name": COIN, "szDecimals": 5, "maxLeverage": 40, "onlyIsolated": None, "isDelisted": None}]
EMPTY_INFOS = ("openOrders", "frontendOpenOrders", "userFills", "userFillsByTime", "historicalOrders", "userFunding")
SPOT_META = {
    "tokens": [{"index": 0, "isCanonical": True, "name": "USDC", "szDecimals": 8, "tokenId": "0x1", "weiDecimals": 8}],
    "universe": [],
}


@dataclass
class HyperliquidState(VenueAccount):
    """The venue's state and what it saw (``position`` signed, in BTC)."""

    last_close: Decimal = Decimal("42000.0")
    reject_orders: bool = False
    order_ids: Any = field(default_factory=lambda: itertools.count(55_030_848_197))
    trade_ids: Any = field(default_factory=lambda: itertools.count(745_210_434_703_679))


class HyperliquidLoopback(LoopbackServer):
    """A Hyperliquid venue: ``connection_toml()`` is the ``[live.connections.hyperliquid]`` body that reaches it."""

    name = "hyperliquid"

    def __init__(self, *, candles_from_minutes_ago: int = 60) -> None:
        super().__init__()
        self.candles_from_minutes_ago = candles_from_minutes_ago
        self.state = HyperliquidState()

    def connection_toml(self) -> str:
        return (
            f'base_url_http = "{self.url}/info"\nbase_url_ws = "{self.ws_url}/ws"\n'
            f'base_url_ws_trading = "{self.url}/exchange"\n'
        )

    @property
    def subscriptions(self) -> list[str]:
        return [
            str(m["subscription"].get("type"))
            for _, m in self.messages
            if isinstance(m, dict) and m.get("method") == "subscribe"
        ]

    @property
    def infos(self) -> list[str]:
        return [json.loads(body).get("type", "") for method, path, _, body in self.requests if path == "/info" and body]

    async def handle_http(self, request: web.Request, body: str) -> web.StreamResponse:
        payload = json.loads(body) if body else {}
        if request.path == "/exchange":
            return web.json_response(await self._exchange(payload))
        kind = payload.get("type")
        if kind in (
            "openOrders",
            "frontendOpenOrders",
            "userFills",
            "userFillsByTime",
            "historicalOrders",
            "userFunding",
        ):
            return web.json_response([])
        answers: dict[str, Callable[[], Any]] = {
            "spotMeta": lambda: SPOT_META,
            "meta": lambda: {"universe": UNIVERSE},
            "allPerpMetas": lambda: [{"collateralToken": 0, "marginTables": [], "universe": UNIVERSE}],
            "metaAndAssetCtxs": lambda: [{"universe": UNIVERSE}, [self._ctx()]],
            "perpDexs": lambda: [None],
            "clearinghouseState": self._clearinghouse,
            "spotClearinghouseState": lambda: {"balances": []},
            # Docs: one of "unifiedAccount", "portfolioMargin", "default", "disabled", "dexAbstraction".
            "userAbstraction": lambda: "default",
            "userFees": lambda: {"userCrossRate": str(TAKER_FEE), "userAddRate": "0.00015"},
        }
        if kind in answers:
            return web.json_response(answers[kind]())
        return web.json_response({"error": f"loopback: no info type {kind!r}"}, status=400)

    async def handle_message(self, channel: str, socket: web.WebSocketResponse, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        method = payload.get("method")
        if method == "ping":
            await socket.send_json({"channel": "pong"})
        elif method == "post" and payload.get("request", {}).get("type") == "action":
            # Docs ("Post requests"): the adapter sends /exchange actions over the socket; the answer is
            # the /exchange body inside {"channel": "post", "data": {"id", "response": {"type": "action"}}}.
            answer = await self._exchange(payload["request"]["payload"])
            response = {"type": "action", "payload": answer}
            await socket.send_json({"channel": "post", "data": {"id": payload.get("id"), "response": response}})
        elif method in ("subscribe", "unsubscribe"):
            subscription = payload.get("subscription", {})
            await socket.send_json(
                {"channel": "subscriptionResponse", "data": {"method": method, "subscription": subscription}}
            )
            kind = subscription.get("type")
            if method == "subscribe" and kind in ("orderUpdates", "userEvents", "userFills"):
                self.add_user_socket(socket)
            if method == "subscribe" and kind == "candle":
                self.spawn(self._market(socket, subscription))
            if method == "subscribe" and kind == "bbo":
                self.spawn(self._quotes(socket))

    def _ctx(self, index: int = 0) -> dict[str, Any]:
        close = str(self.state.last_close)
        return {
            # The adapter forwards a funding update only when the rate changes: it alternates by 1e-6.
            "funding": "0.000501" if index % 2 else "0.0005",
            "openInterest": "27353.17682",
            "prevDayPx": close,
            "dayNtlVlm": "1516669192.19",
            "premium": "0.0001",
            "oraclePx": close,
            "markPx": close,
            "midPx": close,
            "impactPxs": [close, close],
            "dayBaseVlm": "19707.77457",
        }

    async def _market(self, socket: web.WebSocketResponse, subscription: dict[str, Any]) -> None:
        # The adapter closes a candle when one with a later start arrives: each push opens the next minute,
        # counted from an hour ago (``candles_from_minutes_ago``) so no bar is stamped in the future for a while.
        await asyncio.sleep(0.3)
        first = (now_ms() // 60_000 - self.candles_from_minutes_ago) * 60_000
        for index in itertools.count():
            if socket.closed:
                return
            await socket.send_json({"channel": "activeAssetCtx", "data": {"coin": COIN, "ctx": self._ctx(index)}})
            close = Decimal("42000.0") + Decimal(index)
            self.state.last_close = close
            start = first + index * 60_000
            candle = {
                "t": start,
                "T": start + 59_999,
                "s": COIN,
                "i": "1m",
                "o": str(close),
                "c": str(close),
                "h": str(close),
                "l": str(close),
                "v": "10.0",
                "n": 100,
            }
            await socket.send_json({"channel": "candle", "data": candle})
            await asyncio.sleep(0.25)

    async def _quotes(self, socket: web.WebSocketResponse) -> None:
        # Docs: ``bbo`` pushes {coin, time, bbo: [bid, ask]}, a level {px, sz, n} as in ws_book_data.json.
        # One tick (0.1) either side of the last close.
        while not socket.closed:
            close = self.state.last_close
            bid = {"px": str(close - Decimal("0.1")), "sz": "2.5", "n": 3}
            ask = {"px": str(close + Decimal("0.1")), "sz": "1.5", "n": 2}
            await socket.send_json({"channel": "bbo", "data": {"coin": COIN, "time": now_ms(), "bbo": [bid, ask]}})
            await asyncio.sleep(0.25)

    def _clearinghouse(self) -> dict[str, Any]:
        state = self.state
        value = f"{state.balance:.6f}"
        positions = []
        if state.position != 0:
            positions.append(
                {
                    "type": "oneWay",
                    "position": {
                        "coin": COIN,
                        "szi": str(state.position),
                        "entryPx": str(state.entry),
                        "positionValue": str(abs(state.position) * state.last_close),
                        "unrealizedPnl": "0.0",
                        "returnOnEquity": "0.0",
                        "liquidationPx": None,
                        "leverage": {"type": "cross", "value": 1},
                        "maxLeverage": 40,
                        "marginUsed": str(abs(state.position) * state.last_close),
                        "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
                    },
                }
            )
        summary = {"accountValue": value, "totalNtlPos": "0.0", "totalRawUsd": value, "totalMarginUsed": "0.0"}
        return {
            "assetPositions": positions,
            "marginSummary": summary,
            "crossMarginSummary": summary,
            "crossMaintenanceMarginUsed": "0.0",
            "withdrawable": value,
            "time": now_ms(),
        }

    async def _exchange(self, payload: dict[str, Any]) -> dict[str, Any]:
        action = payload.get("action", {})
        if action.get("type") != "order":
            return {
                "status": "ok",
                "response": {"type": action.get("type", "default"), "data": {"statuses": ["success"]}},
            }
        statuses: list[dict[str, Any]] = []
        for order in action["orders"]:
            self.state.orders.append(order)
            if self.state.reject_orders:
                statuses.append({"error": "Order could not immediately match against any resting orders. asset=0"})
                continue
            order_id = next(self.state.order_ids)
            quantity = Decimal(order["s"])
            price = self.state.last_close
            statuses.append({"filled": {"totalSz": str(quantity), "avgPx": str(price), "oid": order_id}})
            self.spawn(self._fill(order, order_id, quantity, price))
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    async def _fill(self, order: dict[str, Any], order_id: int, quantity: Decimal, price: Decimal) -> None:
        await asyncio.sleep(0.05)
        state = self.state
        buy = bool(order["b"])
        start = state.position
        fee = state.fill(quantity if buy else -quantity, price, taker_fee=TAKER_FEE, fee_step=FEE_STEP)
        now = now_ms()
        side = "B" if buy else "A"
        direction = (
            ("Close Short" if start < 0 else "Open Long") if buy else ("Close Long" if start > 0 else "Open Short")
        )
        cloid = order.get("c")
        update = {
            "order": {
                "coin": COIN,
                "side": side,
                "limitPx": order["p"],
                "sz": "0.0",
                "oid": order_id,
                "timestamp": now,
                "origSz": str(quantity),
                "cloid": cloid,
            },
            "status": "filled",
            "statusTimestamp": now,
        }
        fill = {
            "coin": COIN,
            "px": str(price),
            "sz": str(quantity),
            "side": side,
            "time": now,
            "startPosition": str(start),
            "dir": direction,
            "closedPnl": "0.0",
            "hash": "0x" + f"{order_id:064x}",
            "oid": order_id,
            "crossed": True,
            "fee": str(fee),
            "tid": next(state.trade_ids),
            "cloid": cloid,
            "feeToken": "USDC",
            "twapId": None,
        }
        await self.push_user(
            {"channel": "orderUpdates", "data": [update]}, {"channel": "user", "data": {"fills": [fill]}}
        )
