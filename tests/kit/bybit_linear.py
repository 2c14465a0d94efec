"""A loopback Bybit v5 venue (linear perps, spot instruments) on 127.0.0.1: REST and WebSocket in Bybit's formats.

It answers what Nautilus 2.0.0rc6's Bybit adapter calls (seen by pointing the adapter at it with
``--log-level DEBUG``): ``GET /v5/market/instruments-info`` (linear BTCUSDT and spot BTCUSDT),
``GET /v5/account/wallet-balance``, ``GET /v5/position/list``, ``GET /v5/order/realtime``,
``GET /v5/order/history``, ``GET /v5/execution/list``, ``POST /v5/order/create`` and
``POST /v5/order/cancel-all``. The public WebSocket (``/public``) takes ``{"op": "subscribe"}`` and streams
``tickers.BTCUSDT`` (mark price and funding), confirmed ``kline.1.BTCUSDT`` and the ``allLiquidation.BTCUSDT``
items of ``BybitState.liquidations``; the private one
(``/private``) takes ``{"op": "auth"}`` and carries ``order``, ``execution``, ``position`` and ``wallet`` for
every fill; the trade one (``/trade``) takes ``{"op": "order.create"}``.

Formats: kline from ``../shared/data/exchange_payloads/crates/adapters/bybit/test_data/ws_kline.json``;
instruments-info, tickers, wallet-balance, position/list, order/create, auth and subscribe answers and the
private topics are written from Bybit's v5 API docs (bybit-exchange.github.io/docs/v5) and the shapes
Nautilus' own Bybit test data records. Market orders fill at once at the last kline close; taker fee 5.5 bps.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.kit.loopback_venue import LoopbackServer, VenueAccount, now_ms

SYMBOL = "BTCUSDT"
TAKER_FEE = Decimal("0.00055")
FEE_STEP = Decimal("0.00000001")
HOUR_MS = 3_600_000

# Bybit v5 docs, "Get Instruments Info" (category=linear / category=spot).
LINEAR = {
    "symbol": SYMBOL,
    "contractType": "LinearPerpetual",
    "status": "Trading",
    "baseCoin": "BTC",
    "quoteCoin": "USDT",
    "launchTime": "1585526400000",
    "deliveryTime": "0",
    "deliveryFeeRate": "",
    "priceScale": "2",
    "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
    "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
    "lotSizeFilter": {
        "maxOrderQty": "1190.000",
        "minOrderQty": "0.001",
        "qtyStep": "0.001",
        "postOnlyMaxOrderQty": "1190.000",
        "maxMktOrderQty": "500.000",
        "minNotionalValue": "5",
    },
    "unifiedMarginTrade": True,
    "fundingInterval": 480,
    "settleCoin": "USDT",
    "copyTrading": "both",
    "upperFundingRate": "0.005",
    "lowerFundingRate": "-0.005",
}
SPOT = {
    "symbol": SYMBOL,
    "baseCoin": "BTC",
    "quoteCoin": "USDT",
    "innovation": "0",
    "status": "Trading",
    "marginTrading": "both",
    "lotSizeFilter": {
        "basePrecision": "0.000001",
        "quotePrecision": "0.00000001",
        "minOrderQty": "0.000048",
        "maxOrderQty": "71.73956243",
        "minOrderAmt": "1",
        "maxOrderAmt": "2000000",
    },
    "priceFilter": {"tickSize": "0.01"},
}


def envelope(result: Any) -> dict[str, Any]:
    """Wrap ``result`` the way every Bybit v5 REST answer is."""
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now_ms()}


@dataclass
class BybitState(VenueAccount):
    """The venue's state and what it saw."""

    last_close: Decimal = Decimal("42000.00")
    order_ids: Any = field(default_factory=lambda: itertools.count(1_726_025_498_520_715_008))
    exec_ids: Any = field(default_factory=lambda: itertools.count(1))
    seq: Any = field(default_factory=lambda: itertools.count(140_612_148_849_382))
    # ``allLiquidation`` items sent once to their topic's subscriber, restamped with the venue's clock.
    liquidations: list[dict[str, Any]] = field(default_factory=list)


class BybitLoopback(LoopbackServer):
    """A Bybit v5 venue: ``connection_toml()`` is the ``[live.connections.bybit]`` body that reaches it."""

    name = "bybit"

    def __init__(self) -> None:
        super().__init__()
        self.state = BybitState()

    def connection_toml(self) -> str:
        return (
            f'base_url_http = "{self.url}"\nbase_url_ws = "{self.ws_url}/public"\n'
            f'base_url_ws_private = "{self.ws_url}/private"\nbase_url_ws_trading = "{self.ws_url}/trade"\n'
        )

    @property
    def subscriptions(self) -> list[str]:
        return [
            arg for _, m in self.messages if isinstance(m, dict) and m.get("op") == "subscribe" for arg in m["args"]
        ]

    async def handle_http(self, request: web.Request, body: str) -> web.StreamResponse:
        path, query = request.path, request.query
        if path == "/v5/market/instruments-info":
            listing = [LINEAR] if query.get("category") == "linear" else [SPOT]
            return web.json_response(
                envelope({"category": query.get("category"), "list": listing, "nextPageCursor": ""})
            )
        if path == "/v5/account/wallet-balance":
            return web.json_response(envelope({"list": [self._wallet()]}))
        if path == "/v5/position/list":
            # The adapter asks once per settle coin (USDT, USDC): BTCUSDT settles in USDT only.
            mine = query.get("settleCoin", "USDT") == "USDT" and query.get("symbol", SYMBOL) == SYMBOL
            listing = [self._position()] if self.state.position != 0 and mine else []
            return web.json_response(envelope({"category": "linear", "list": listing, "nextPageCursor": ""}))
        if path in ("/v5/order/realtime", "/v5/order/history", "/v5/execution/list"):
            return web.json_response(
                envelope({"category": query.get("category", "linear"), "list": [], "nextPageCursor": ""})
            )
        if path == "/v5/order/create":
            return web.json_response(envelope(await self._order(json.loads(body))))
        if path == "/v5/order/cancel-all":
            return web.json_response(envelope({"list": [], "success": "1"}))
        if path == "/v5/account/fee-rate":
            rate = {"symbol": SYMBOL, "baseCoin": "", "takerFeeRate": str(TAKER_FEE), "makerFeeRate": "0.0002"}
            return web.json_response(envelope({"category": "linear", "list": [rate]}))
        return web.json_response(
            {
                "retCode": 10001,
                "retMsg": f"loopback: no route {request.method} {path}",
                "result": {},
                "retExtInfo": {},
                "time": now_ms(),
            }
        )

    async def handle_message(self, channel: str, socket: web.WebSocketResponse, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        op = payload.get("op")
        if op == "ping":
            await socket.send_json(
                {
                    "success": True,
                    "ret_msg": "pong",
                    "conn_id": "loopback",
                    "req_id": payload.get("req_id", ""),
                    "op": "ping",
                }
            )
        elif op == "auth":
            if channel.startswith("/private"):
                self.add_user_socket(socket)
            await socket.send_json({"op": "auth", "success": True, "retCode": 0, "retMsg": "", "connId": "loopback"})
        elif op in ("subscribe", "unsubscribe"):
            await socket.send_json(
                {"success": True, "ret_msg": "", "conn_id": "loopback", "req_id": payload.get("req_id", ""), "op": op}
            )
            if op == "subscribe" and any(str(a).startswith("kline.") for a in payload.get("args", [])):
                self.spawn(self._market(socket))
            if op == "subscribe" and f"allLiquidation.{SYMBOL}" in payload.get("args", []):
                # After the first klines, so the strategy has a price when the liquidations arrive.
                self.spawn(self.send_later(socket, self.state.liquidations, _liquidation, after_secs=1.0))
        elif op == "order.create":
            data = await self._order(payload["args"][0])
            await socket.send_json(_trade_answer(payload, data) | {"header": {"Timenow": str(now_ms())}})
        elif op == "order.cancel":
            args = payload["args"][0]
            data = {"orderId": args.get("orderId", ""), "orderLinkId": args.get("orderLinkId", "")}
            await socket.send_json(_trade_answer(payload, data))

    async def _market(self, socket: web.WebSocketResponse) -> None:
        await asyncio.sleep(0.3)
        base = (now_ms() // HOUR_MS) * HOUR_MS
        for index in itertools.count():
            if socket.closed:
                return
            now = now_ms()
            close = self.state.last_close
            await socket.send_json(
                {
                    "topic": f"tickers.{SYMBOL}",
                    "type": "snapshot",
                    "data": {
                        "symbol": SYMBOL,
                        "tickDirection": "PlusTick",
                        "lastPrice": str(close),
                        "markPrice": str(close),
                        "indexPrice": str(close),
                        "nextFundingTime": str(base + (index + 1) * 8 * HOUR_MS),
                        "fundingRate": "0.0005",
                        "bid1Price": str(close),
                        "bid1Size": "1.000",
                        "ask1Price": str(close + Decimal("0.1")),
                        "ask1Size": "1.000",
                    },
                    "cs": next(self.state.seq),
                    "ts": now,
                }
            )
            close = Decimal("42000.00") + Decimal(index)
            self.state.last_close = close
            start = (now // 60_000 - 1) * 60_000
            await socket.send_json(
                {
                    "topic": f"kline.1.{SYMBOL}",
                    "data": [
                        {
                            "start": start,
                            "end": start + 59_999,
                            "interval": "1",
                            "open": str(close),
                            "close": str(close),
                            "high": str(close),
                            "low": str(close),
                            "volume": "10.000",
                            "turnover": str(close * 10),
                            "confirm": True,
                            "timestamp": now,
                        }
                    ],
                    "ts": now,
                    "type": "snapshot",
                }
            )
            await asyncio.sleep(0.25)

    def _wallet(self) -> dict[str, Any]:
        balance = f"{self.state.balance:.8f}"
        coin = {
            "coin": "USDT",
            "equity": balance,
            "usdValue": balance,
            "walletBalance": balance,
            "availableToWithdraw": balance,
            "availableToBorrow": "",
            "borrowAmount": "0",
            "accruedInterest": "0",
            "totalOrderIM": "0",
            "totalPositionIM": "0",
            "totalPositionMM": "0",
            "unrealisedPnl": "0",
            "cumRealisedPnl": "0",
            "bonus": "0",
            "locked": "0",
            "collateralSwitch": True,
            "marginCollateral": True,
            "spotBorrow": "0",
        }
        return {
            "accountType": "UNIFIED",
            "totalEquity": balance,
            "totalWalletBalance": balance,
            "totalMarginBalance": balance,
            "totalAvailableBalance": balance,
            "totalPerpUPL": "0",
            "totalInitialMargin": "0",
            "totalMaintenanceMargin": "0",
            "accountIMRate": "0",
            "accountMMRate": "0",
            "accountLTV": "0",
            "coin": [coin],
        }

    def _position(self) -> dict[str, Any]:
        state = self.state
        size = abs(state.position)
        side = "" if state.position == 0 else ("Buy" if state.position > 0 else "Sell")
        return {
            "positionIdx": 0,
            "riskId": 1,
            "riskLimitValue": "2000000",
            "symbol": SYMBOL,
            "side": side,
            "size": str(size),
            "avgPrice": str(state.entry),
            "positionValue": str(size * state.entry),
            "tradeMode": 0,
            "positionStatus": "Normal",
            "autoAddMargin": 0,
            "adlRankIndicator": 2,
            "leverage": "1",
            "positionBalance": "0",
            "markPrice": str(state.last_close),
            "liqPrice": "",
            "bustPrice": "",
            "positionMM": "0",
            "positionIM": "0",
            "tpslMode": "Full",
            "takeProfit": "0",
            "stopLoss": "0",
            "trailingStop": "0",
            "unrealisedPnl": "0",
            "curRealisedPnl": "0",
            "cumRealisedPnl": "0",
            "seq": next(state.seq),
            "isReduceOnly": False,
            "mmrSysUpdateTime": "",
            "leverageSysUpdatedTime": "",
            "createdTime": "1676538056258",
            "updatedTime": str(now_ms()),
        }

    async def _order(self, params: dict[str, Any]) -> dict[str, str]:
        self.state.orders.append(params)
        order_id = str(next(self.state.order_ids))
        self.spawn(self._fill(params, order_id))
        return {"orderId": order_id, "orderLinkId": params.get("orderLinkId", "")}

    async def _fill(self, params: dict[str, Any], order_id: str) -> None:
        await asyncio.sleep(0.05)
        state = self.state
        quantity = Decimal(params["qty"])
        price = state.last_close
        signed = quantity if params["side"] == "Buy" else -quantity
        fee = state.fill(signed, price, taker_fee=TAKER_FEE, fee_step=FEE_STEP)
        now = now_ms()
        order = {
            "category": "linear",
            "symbol": SYMBOL,
            "orderId": order_id,
            "orderLinkId": params.get("orderLinkId", ""),
            "side": params["side"],
            "orderType": params["orderType"],
            "cancelType": "UNKNOWN",
            "price": "0",
            "qty": str(quantity),
            "orderIv": "",
            "timeInForce": params.get("timeInForce", "IOC"),
            "orderStatus": "Filled",
            "lastPriceOnCreated": str(price),
            "reduceOnly": bool(params.get("reduceOnly", False)),
            "leavesQty": "0",
            "leavesValue": "0",
            "cumExecQty": str(quantity),
            "cumExecValue": str(quantity * price),
            "avgPrice": str(price),
            "blockTradeId": "",
            "positionIdx": 0,
            "cumExecFee": str(fee),
            "createdTime": str(now),
            "updatedTime": str(now),
            "rejectReason": "EC_NoError",
            "stopOrderType": "",
            "tpslMode": "",
            "triggerPrice": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "tpLimitPrice": "0",
            "slLimitPrice": "0",
            "triggerDirection": 0,
            "triggerBy": "",
            "closeOnTrigger": False,
            "placeType": "",
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "feeCurrency": "",
            "createType": "CreateByUser",
        }
        execution = {
            "category": "linear",
            "symbol": SYMBOL,
            "closedSize": "0",
            "execFee": str(fee),
            "execId": f"loopback-exec-{next(state.exec_ids)}",
            "execPrice": str(price),
            "execQty": str(quantity),
            "execType": "Trade",
            "execValue": str(quantity * price),
            "feeRate": str(TAKER_FEE),
            "tradeIv": "",
            "markIv": "",
            "blockTradeId": "",
            "markPrice": str(price),
            "indexPrice": "",
            "underlyingPrice": "",
            "leavesQty": "0",
            "orderId": order_id,
            "orderLinkId": params.get("orderLinkId", ""),
            "orderPrice": str(price),
            "orderQty": str(quantity),
            "orderType": params["orderType"],
            "stopOrderType": "UNKNOWN",
            "side": params["side"],
            "execTime": str(now),
            "isLeverage": "0",
            "isMaker": False,
            "seq": next(state.seq),
            "feeCurrency": "USDT",
        }
        await self.push_user(
            {"id": f"loopback-{now}-o", "topic": "order", "creationTime": now, "data": [order]},
            {"id": f"loopback-{now}-e", "topic": "execution", "creationTime": now, "data": [execution]},
            {"id": f"loopback-{now}-p", "topic": "position", "creationTime": now, "data": [self._position()]},
            {"id": f"loopback-{now}-w", "topic": "wallet", "creationTime": now, "data": [self._wallet()]},
        )


def _trade_answer(payload: dict[str, Any], data: dict[str, str]) -> dict[str, Any]:
    # Bybit v5 docs, "Websocket Trade Guideline": every answer on the trade socket.
    op, request_id = payload["op"], payload.get("reqId", "")
    return {"op": op, "retCode": 0, "retMsg": "OK", "connId": "loopback", "reqId": request_id, "data": data}


def _liquidation(item: dict[str, Any]) -> dict[str, Any]:
    # The message shape of Bybit's v5 docs (topic, type, ts, data list), restamped with the venue's clock.
    now = now_ms()
    return {"topic": f"allLiquidation.{SYMBOL}", "type": "snapshot", "ts": now, "data": [{**item, "T": now}]}
