"""A loopback Binance USD-M futures venue on 127.0.0.1: REST and WebSocket in Binance's real formats.

It answers what Nautilus 2.0.0rc6's Binance adapter calls (seen by pointing the adapter at it):
``GET /fapi/v1/exchangeInfo`` (BTCUSDT from a real recorded answer, ``../shared/data/cryptofeed_recordings``),
signed ``GET /fapi/v1/positionSide/dual``, ``POST/PUT/DELETE /fapi/v1/listenKey``, ``GET /fapi/v2/account``,
``GET /fapi/v1/openOrders``, ``GET /fapi/v1/openAlgoOrders``, ``GET /fapi/v2/positionRisk``,
``POST /fapi/v1/order`` and ``DELETE /fapi/v1/allOpenOrders``; the market WebSocket takes
``{"method": "SUBSCRIBE"}`` and streams ``markPriceUpdate`` (which carries funding), closed ``kline``
events and, to a ``!forceOrder@arr`` subscriber, the ``forceOrder`` liquidations in ``Venue.liquidations``,
shaped like ``../shared/data/exchange_payloads/.../binance/.../futures/market_data_json``; the user
data stream (``/ws?listenKey=...``) carries ``ORDER_TRADE_UPDATE`` and ``ACCOUNT_UPDATE`` for every fill.
Market orders fill at once at the last kline close; taker fee 5 bps.

Cue hooks make it misbehave on demand (the anomaly tests, ``tests/integration/test_live_anomalies.py``):
``drop_market()`` closes the market WebSockets and keeps every later one silent, ``Venue.ack_delay_secs``
delays the answer to an order, ``Venue.reject_orders`` rejects them (``-2019 Margin is insufficient``, an
error code from Binance's docs), ``Venue.reported_position`` is the position ``positionRisk`` reports
instead of the real one, ``adjust_balance(delta)`` moves the wallet balance with an ``ACCOUNT_UPDATE`` of
reason ``DEPOSIT`` (no fill). Left unset they change nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from tests.kit.loopback_venue import REPO, LoopbackServer, VenueAccount, now_ms

SYMBOL = "BTCUSDT"
TAKER_FEE = Decimal("0.0005")
FEE_STEP = Decimal("0.00000001")
RECORDED = REPO.parent / "shared" / "data" / "cryptofeed_recordings" / "BINANCE_FUTURES.0"


def exchange_info() -> dict[str, Any]:
    """Return the recorded ``/fapi/v1/exchangeInfo`` answer reduced to BTCUSDT."""
    line = RECORDED.read_text().splitlines()[0]
    document: dict[str, Any] = json.loads(line.split(": ", 1)[1])
    document["symbols"] = [s for s in document["symbols"] if s["symbol"] == SYMBOL]
    document["serverTime"] = now_ms()
    return document


@dataclass
class Venue(VenueAccount):
    """The venue's state and what it saw: (method, path, API key) of every request, the streams subscribed."""

    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)
    last_close: Decimal = Decimal("42000.00")
    market_sockets: list[web.WebSocketResponse] = field(default_factory=list)
    market_muted: bool = False
    ack_delay_secs: float = 0.0
    reject_orders: bool = False
    reported_position: Decimal | None = None
    klines_sent: int = 0
    order_ids: Any = field(default_factory=lambda: itertools.count(8_886_774))
    trade_ids: Any = field(default_factory=lambda: itertools.count(1_000))
    # ``forceOrder`` events sent once to a ``!forceOrder@arr`` subscriber, restamped with the venue's clock.
    liquidations: list[dict[str, Any]] = field(default_factory=list)


class BinanceFuturesLoopback(LoopbackServer):
    """A Binance USD-M venue: ``url``/``ws_url`` point the adapter at it; ``venue`` is its state."""

    name = "binance"

    def __init__(self) -> None:
        super().__init__()
        self.venue = Venue()
        self.info = exchange_info()

    def drop_market(self) -> None:
        """Cue: close every market WebSocket and keep the ones the adapter reconnects silent."""

        async def drop() -> None:
            self.venue.market_muted = True
            for socket in list(self.venue.market_sockets):
                await socket.close()

        asyncio.run_coroutine_threadsafe(drop(), self.loop).result(timeout=10)

    def adjust_balance(self, delta: Decimal) -> None:
        """Cue: move the wallet balance by ``delta`` with no fill, pushed as an ``ACCOUNT_UPDATE`` (reason DEPOSIT)."""

        async def adjust() -> None:
            venue = self.venue
            venue.balance += delta
            now = now_ms()
            wallet = f"{venue.balance:.8f}"
            update = {
                "e": "ACCOUNT_UPDATE",
                "E": now,
                "T": now,
                "a": {"m": "DEPOSIT", "B": [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": f"{delta:.8f}"}], "P": []},
            }
            await self.push_user(update)

        asyncio.run_coroutine_threadsafe(adjust(), self.loop).result(timeout=10)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # Binance's tests read the API key each request carried, WebSocket upgrades included.
        self.venue.requests.append((request.method, request.path, request.headers.get("X-MBX-APIKEY")))
        return await super()._handle(request)

    async def handle_http(self, request: web.Request, body: str) -> web.StreamResponse:
        path = request.path
        if path == "/fapi/v1/exchangeInfo":
            return web.json_response(self.info)
        if path == "/fapi/v1/positionSide/dual":
            return web.json_response({"dualSidePosition": False})
        if path == "/fapi/v1/listenKey":
            return web.json_response({"listenKey": "loopbackListenKey"} if request.method == "POST" else {})
        if path == "/fapi/v2/account":
            return web.json_response(self._account())
        if path in ("/fapi/v1/openOrders", "/fapi/v1/openAlgoOrders", "/fapi/v1/allOrders", "/fapi/v1/userTrades"):
            return web.json_response([])
        if path == "/fapi/v2/positionRisk":
            return web.json_response(self._position_risk())
        if path == "/fapi/v1/order" and request.method == "POST":
            return await self._submit(request)
        if path == "/fapi/v1/allOpenOrders":
            return web.json_response({"code": 200, "msg": "The operation of cancel all open order is done."})
        return web.json_response({"code": -1000, "msg": f"loopback: no route {request.method} {path}"}, status=400)

    async def on_open(self, channel: str, socket: web.WebSocketResponse) -> None:
        # The user data stream is the one opened with the listen key; every other socket is a market stream.
        if "listenKey" in parse_qs(urlsplit(channel).query, keep_blank_values=True):
            self.add_user_socket(socket)
        else:
            self.venue.market_sockets.append(socket)

    async def handle_message(self, channel: str, socket: web.WebSocketResponse, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        if payload.get("method") == "SUBSCRIBE":
            self.venue.subscriptions.extend(payload["params"])
            await socket.send_json({"result": None, "id": payload["id"]})
            if any("@kline" in s for s in payload["params"]):
                self.spawn(self._market(socket))
            if "!forceOrder@arr" in payload["params"]:
                self.spawn(self.send_later(socket, self.venue.liquidations, _restamped, after_secs=1.0))
        elif payload.get("method") == "UNSUBSCRIBE":
            await socket.send_json({"result": None, "id": payload["id"]})

    async def _market(self, socket: web.WebSocketResponse) -> None:
        # Two funding announcements (the strategy acts on the one before the latest), then closed 1m klines.
        await asyncio.sleep(0.3)
        hour_ms = 3_600_000
        base = (now_ms() // hour_ms) * hour_ms
        for index in itertools.count():
            if socket.closed:
                return
            if self.venue.market_muted:
                await asyncio.sleep(0.05)
                continue
            now = now_ms()
            await socket.send_json(
                {
                    "e": "markPriceUpdate",
                    "E": now,
                    "s": SYMBOL,
                    "p": str(self.venue.last_close),
                    "i": str(self.venue.last_close),
                    "P": str(self.venue.last_close),
                    "r": "0.00050000",
                    "T": base + (index + 1) * 8 * hour_ms,
                }
            )
            close = Decimal("42000.00") + Decimal(index)
            self.venue.last_close = close
            start = (now // 60_000 - 1) * 60_000
            await socket.send_json(
                {
                    "e": "kline",
                    "E": now,
                    "s": SYMBOL,
                    "k": {
                        "t": start,
                        "T": start + 59_999,
                        "s": SYMBOL,
                        "i": "1m",
                        "f": 100,
                        "L": 200,
                        "o": str(close),
                        "c": str(close),
                        "h": str(close),
                        "l": str(close),
                        "v": "10.000",
                        "n": 100,
                        "x": True,
                        "q": str(close * 10),
                        "V": "5.000",
                        "Q": str(close * 5),
                        "B": "0",
                    },
                }
            )
            self.venue.klines_sent += 1
            await asyncio.sleep(0.25)

    def _account(self) -> dict[str, Any]:
        venue = self.venue
        balance = f"{venue.balance:.8f}"
        asset = {
            "asset": "USDT",
            "walletBalance": balance,
            "unrealizedProfit": "0.00000000",
            "marginBalance": balance,
            "maintMargin": "0.00000000",
            "initialMargin": "0.00000000",
            "positionInitialMargin": "0.00000000",
            "openOrderInitialMargin": "0.00000000",
            "maxWithdrawAmount": balance,
            "crossWalletBalance": balance,
            "crossUnPnl": "0.00000000",
            "availableBalance": balance,
            "marginAvailable": True,
            "updateTime": now_ms(),
        }
        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": 0,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
            "totalInitialMargin": "0.00000000",
            "totalMaintMargin": "0.00000000",
            "totalWalletBalance": balance,
            "totalUnrealizedProfit": "0.00000000",
            "totalMarginBalance": balance,
            "totalPositionInitialMargin": "0.00000000",
            "totalOpenOrderInitialMargin": "0.00000000",
            "totalCrossWalletBalance": balance,
            "totalCrossUnPnl": "0.00000000",
            "availableBalance": balance,
            "maxWithdrawAmount": balance,
            "assets": [asset],
            "positions": [],
        }

    def _position_risk(self) -> list[dict[str, Any]]:
        venue = self.venue
        position, entry = venue.position, venue.entry
        if venue.reported_position is not None:
            position, entry = venue.reported_position, venue.last_close
        if position == 0:
            return []
        return [
            {
                "symbol": SYMBOL,
                "positionAmt": str(position),
                "entryPrice": str(entry),
                "breakEvenPrice": str(entry),
                "markPrice": str(venue.last_close),
                "unRealizedProfit": "0.00000000",
                "liquidationPrice": "0",
                "leverage": "1",
                "maxNotionalValue": "1000000",
                "marginType": "cross",
                "isolatedMargin": "0.00000000",
                "isAutoAddMargin": "false",
                "positionSide": "BOTH",
                "notional": str(position * venue.last_close),
                "isolatedWallet": "0",
                "updateTime": now_ms(),
            }
        ]

    async def _submit(self, request: web.Request) -> web.Response:
        if self.venue.ack_delay_secs:
            await asyncio.sleep(self.venue.ack_delay_secs)
        if self.venue.reject_orders:
            return web.json_response({"code": -2019, "msg": "Margin is insufficient."}, status=400)
        return web.json_response(await self._order(dict(request.query) | dict(await request.post())))

    async def _order(self, params: dict[str, str]) -> dict[str, Any]:
        venue = self.venue
        venue.orders.append(params)
        order_id = next(venue.order_ids)
        now = now_ms()
        quantity = Decimal(params["quantity"])
        side = params["side"]
        price = venue.last_close
        answer = {
            "clientOrderId": params.get("newClientOrderId", ""),
            "cumQty": "0",
            "cumQuote": "0",
            "executedQty": "0",
            "orderId": order_id,
            "avgPrice": "0.00",
            "origQty": str(quantity),
            "price": "0",
            "reduceOnly": params.get("reduceOnly", "false") == "true",
            "side": side,
            "positionSide": "BOTH",
            "status": "NEW",
            "stopPrice": "0",
            "closePosition": False,
            "symbol": SYMBOL,
            "timeInForce": params.get("timeInForce", "GTC"),
            "type": params["type"],
            "origType": params["type"],
            "updateTime": now,
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
        }
        self.spawn(self._fill(params, order_id, quantity, price))
        return answer

    async def _fill(self, params: dict[str, str], order_id: int, quantity: Decimal, price: Decimal) -> None:
        await asyncio.sleep(0.05)
        venue = self.venue
        signed = quantity if params["side"] == "BUY" else -quantity
        fee = venue.fill(signed, price, taker_fee=TAKER_FEE, fee_step=FEE_STEP)
        now = now_ms()
        base = {
            "s": SYMBOL,
            "c": params.get("newClientOrderId", ""),
            "S": params["side"],
            "o": params["type"],
            "f": params.get("timeInForce", "GTC"),
            "q": str(quantity),
            "p": "0",
            "ap": "0",
            "sp": "0",
            "i": order_id,
            "T": now,
            "b": "0",
            "a": "0",
            "m": False,
            "R": params.get("reduceOnly", "false") == "true",
            "wt": "CONTRACT_PRICE",
            "ot": params["type"],
            "ps": "BOTH",
            "cp": False,
            "rp": "0",
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "NONE",
            "pm": "NONE",
            "gtd": 0,
        }
        new = {**base, "x": "NEW", "X": "NEW", "l": "0", "z": "0", "L": "0", "N": "USDT", "n": "0", "t": 0}
        trade = {
            **base,
            "x": "TRADE",
            "X": "FILLED",
            "ap": str(price),
            "l": str(quantity),
            "z": str(quantity),
            "L": str(price),
            "N": "USDT",
            "n": str(fee),
            "t": next(venue.trade_ids),
        }
        account = {
            "e": "ACCOUNT_UPDATE",
            "E": now,
            "T": now,
            "a": {
                "m": "ORDER",
                "B": [{"a": "USDT", "wb": f"{venue.balance:.8f}", "cw": f"{venue.balance:.8f}", "bc": "0"}],
                "P": [
                    {
                        "s": SYMBOL,
                        "pa": str(venue.position),
                        "ep": str(venue.entry),
                        "bep": str(venue.entry),
                        "cr": "0",
                        "up": "0",
                        "mt": "cross",
                        "iw": "0",
                        "ps": "BOTH",
                    }
                ],
            },
        }
        updates = [{"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": order} for order in (new, trade)]
        await self.push_user(*updates, account)


def _restamped(event: dict[str, Any]) -> dict[str, Any]:
    now = now_ms()
    return {**event, "E": now, "o": {**event["o"], "T": now}}
