"""A loopback OKX v5 venue (USDT swaps, spot instruments) on 127.0.0.1: REST and WebSocket in OKX's formats.

It answers what Nautilus 2.0.0rc6's OKX adapter calls (seen by pointing the adapter at it with
``--log-level DEBUG``): ``GET /api/v5/public/instruments`` (SWAP BTC-USDT-SWAP, SPOT BTC-USDT),
``GET /api/v5/account/config``, ``GET /api/v5/account/balance``, ``GET /api/v5/account/positions``,
``GET /api/v5/trade/orders-pending``, ``/orders-history``, ``/fills`` and the algo equivalents (empty), and
``POST /api/v5/trade/order``. The public WebSocket (``/ws/v5/public``) streams ``mark-price``,
``funding-rate`` and the ``liquidation-orders`` of ``OkxState.liquidations``; the business one
(``/ws/v5/business``) confirmed ``candle1m``; the private one (``/ws/v5/private``) takes ``{"op": "login"}``
and ``{"op": "order"}`` and carries ``orders``, ``positions`` and ``account`` for every fill.

Formats: candle and funding-rate pushes from ``../shared/data/exchange_payloads/crates/adapters/okx/test_data``
(``ws_candle.json``, ``ws_funding_rate.json``, ``http_get_mark_price.json``), subscribe acks from
``../shared/data/cryptofeed_recordings/OKX.ws.1.0``; instruments, balance, positions, account config, login and
order answers and the private pushes are written from OKX's v5 API docs (www.okx.com/docs-v5) and the shapes
Nautilus' own OKX test data records. One contract is 0.01 BTC (``ctVal``); market orders fill at once at the
last candle close; taker fee 5 bps.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from strategies.demo import FundingShortConfig
from tests.kit.loopback_venue import LoopbackServer, VenueAccount, now_ms

SWAP_ID = "BTC-USDT-SWAP"
CONTRACT_BTC = Decimal("0.01")
TAKER_FEE = Decimal("0.0005")
FEE_STEP = Decimal("0.00000001")
HOUR_MS = 3_600_000


class FundingShortOkxConfig(FundingShortConfig):
    """``FundingShortConfig`` whose client order ids have no hyphens (the OKX adapter denies ``clOrdId`` with any)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> FundingShortOkxConfig:
        # Nautilus' StrategyConfig takes its fields in __new__ (a Rust class); FundingShortConfig passes none.
        return super().__new__(cls, use_hyphens_in_client_order_ids=False)  # type: ignore[call-arg,no-any-return]


def _instrument(inst_type: str) -> dict[str, Any]:
    swap = inst_type == "SWAP"
    return {
        "alias": "",
        "auctionEndTime": "",
        "baseCcy": "" if swap else "BTC",
        "category": "1",
        "ctMult": "1" if swap else "",
        "ctType": "linear" if swap else "",
        "ctVal": str(CONTRACT_BTC) if swap else "",
        "ctValCcy": "BTC" if swap else "",
        "expTime": "",
        "instFamily": "BTC-USDT" if swap else "",
        "instId": SWAP_ID if swap else "BTC-USDT",
        "instIdCode": 10459 if swap else 10001,
        "instType": inst_type,
        "lever": "100" if swap else "10",
        "listTime": "1573557408000",
        "lotSz": "0.01" if swap else "0.00000001",
        "maxIcebergSz": "100000000",
        "maxLmtAmt": "20000000",
        "maxLmtSz": "100000000",
        "maxMktAmt": "" if swap else "1000000",
        "maxMktSz": "12000" if swap else "1000000",
        "maxStopSz": "12000",
        "maxTriggerSz": "100000000",
        "maxTwapSz": "100000000",
        "minSz": "0.01" if swap else "0.00001",
        "optType": "",
        "quoteCcy": "" if swap else "USDT",
        "ruleType": "normal",
        "settleCcy": "USDT" if swap else "",
        "state": "live",
        "stk": "",
        "tickSz": "0.1",
        "tradeQuoteCcyList": [],
        "uly": "BTC-USDT" if swap else "",
    }


def answer(data: list[Any]) -> dict[str, Any]:
    """Wrap ``data`` the way every OKX v5 REST answer is."""
    return {"code": "0", "msg": "", "data": data}


@dataclass
class OkxState(VenueAccount):
    """The venue's state and what it saw (``position`` in contracts, signed)."""

    last_close: Decimal = Decimal("42000.0")
    order_ids: Any = field(default_factory=lambda: itertools.count(2_497_956_918_703_120_384))
    trade_ids: Any = field(default_factory=lambda: itertools.count(1_518_905_529))
    # ``liquidation-orders`` details sent once to that channel's subscriber, restamped with the venue's clock.
    liquidations: list[dict[str, Any]] = field(default_factory=list)


class OkxLoopback(LoopbackServer):
    """An OKX v5 venue: ``connection_toml()`` is the ``[live.connections.okx]`` body that reaches it."""

    name = "okx"

    def __init__(self) -> None:
        super().__init__()
        self.state = OkxState()

    def connection_toml(self) -> str:
        return (
            f'base_url_http = "{self.url}"\nbase_url_ws = "{self.ws_url}/ws/v5/public"\n'
            f'base_url_ws_private = "{self.ws_url}/ws/v5/private"\n'
            f'base_url_ws_business = "{self.ws_url}/ws/v5/business"\n'
        )

    @property
    def subscriptions(self) -> list[str]:
        return [
            f"{arg.get('channel')}:{arg.get('instId', arg.get('instType', ''))}"
            for _, m in self.messages
            if isinstance(m, dict) and m.get("op") == "subscribe"
            for arg in m["args"]
        ]

    async def handle_http(self, request: web.Request, body: str) -> web.StreamResponse:
        path, query = request.path, request.query
        if path == "/api/v5/public/instruments":
            return web.json_response(answer([_instrument(query.get("instType", "SWAP"))]))
        if path == "/api/v5/account/config":
            return web.json_response(answer([self._config()]))
        if path == "/api/v5/account/balance":
            return web.json_response(answer([self._balance()]))
        if path == "/api/v5/account/positions":
            return web.json_response(answer([self._position()] if self.state.position != 0 else []))
        if path == "/api/v5/trade/order" and request.method == "POST":
            return web.json_response(answer([await self._order(json.loads(body))]))
        if path == "/api/v5/public/mark-price":
            return web.json_response(
                answer(
                    [{"instType": "SWAP", "instId": SWAP_ID, "markPx": str(self.state.last_close), "ts": str(now_ms())}]
                )
            )
        if request.method == "GET":
            # Order, fill, algo-order and history listings: nothing open, nothing recorded.
            return web.json_response(answer([]))
        return web.json_response({"code": "50001", "msg": f"loopback: no route {request.method} {path}", "data": []})

    async def handle_message(self, channel: str, socket: web.WebSocketResponse, payload: Any) -> None:
        if payload == "ping":
            await socket.send_str("pong")
            return
        if not isinstance(payload, dict):
            return
        op = payload.get("op")
        if op == "login":
            if channel.startswith("/ws/v5/private"):
                self.add_user_socket(socket)
            await socket.send_json({"event": "login", "code": "0", "msg": "", "connId": "loopback"})
        elif op in ("subscribe", "unsubscribe"):
            for arg in payload.get("args", []):
                await socket.send_json({"event": op, "arg": arg, "connId": "loopback"})
                if op == "subscribe":
                    await self._stream(socket, arg.get("channel"))
        elif op == "order":
            data = [await self._order(arg) for arg in payload["args"]]
            now = str(now_ms() * 1000)
            await socket.send_json(
                {
                    "id": payload.get("id", ""),
                    "op": "order",
                    "code": "0",
                    "msg": "",
                    "data": data,
                    "inTime": now,
                    "outTime": now,
                }
            )

    async def _stream(self, socket: web.WebSocketResponse, channel: str | None) -> None:
        if channel == "candle1m":
            self.spawn(self._candles(socket))
        elif channel == "funding-rate":
            self.spawn(self._funding(socket))
        elif channel == "mark-price":
            await self._mark(socket)
        elif channel == "liquidation-orders":
            # After the first candles, so the strategy has a price when the liquidations arrive.
            self.spawn(self.send_later(socket, self.state.liquidations, _liquidation, after_secs=1.0))

    async def _mark(self, socket: web.WebSocketResponse) -> None:
        await socket.send_json(
            {
                "arg": {"channel": "mark-price", "instId": SWAP_ID},
                "data": [
                    {"instType": "SWAP", "instId": SWAP_ID, "markPx": str(self.state.last_close), "ts": str(now_ms())}
                ],
            }
        )

    async def _funding(self, socket: web.WebSocketResponse) -> None:
        await asyncio.sleep(0.3)
        base = (now_ms() // HOUR_MS) * HOUR_MS
        for index in itertools.count():
            if socket.closed:
                return
            now = now_ms()
            funding_time = base + (index + 1) * 8 * HOUR_MS
            await socket.send_json(
                {
                    "arg": {"channel": "funding-rate", "instId": SWAP_ID},
                    "data": [
                        {
                            "instId": SWAP_ID,
                            "instType": "SWAP",
                            "fundingRate": "0.0005",
                            "nextFundingRate": "",
                            "fundingTime": str(funding_time),
                            "nextFundingTime": str(funding_time + 8 * HOUR_MS),
                            "method": "current_period",
                            "ts": str(now),
                        }
                    ],
                }
            )
            await self._mark(socket)
            await asyncio.sleep(0.25)

    async def _candles(self, socket: web.WebSocketResponse) -> None:
        await asyncio.sleep(0.4)
        for index in itertools.count():
            if socket.closed:
                return
            close = Decimal("42000.0") + Decimal(index)
            self.state.last_close = close
            start = (now_ms() // 60_000 - 1) * 60_000
            row = [str(start), str(close), str(close), str(close), str(close), "1000", "10", str(close * 10), "1"]
            await socket.send_json({"arg": {"channel": "candle1m", "instId": SWAP_ID}, "data": [row]})
            await asyncio.sleep(0.25)

    def _config(self) -> dict[str, Any]:
        return {
            "acctLv": "2",
            "acctStpMode": "cancel_maker",
            "autoLoan": False,
            "ctIsoMode": "automatic",
            "enableSpotBorrow": False,
            "greeksType": "PA",
            "ip": "",
            "type": "0",
            "kycLv": "3",
            "label": "loopback",
            "level": "Lv1",
            "levelTmp": "",
            "liquidationGear": "-1",
            "mainUid": "10000000000000001",
            "mgnIsoMode": "automatic",
            "opAuth": "1",
            "perm": "read_only,trade",
            "posMode": "net_mode",
            "roleType": "0",
            "spotBorrowAutoRepay": False,
            "spotOffsetType": "",
            "spotRoleType": "0",
            "spotTraderInsts": [],
            "traderInsts": [],
            "uid": "10000000000000001",
        }

    def _balance(self) -> dict[str, Any]:
        balance = f"{self.state.balance:.8f}"
        detail = {
            "accAvgPx": "",
            "availBal": balance,
            "availEq": balance,
            "cashBal": balance,
            "ccy": "USDT",
            "disEq": balance,
            "eq": balance,
            "eqUsd": balance,
            "fixedBal": "0",
            "frozenBal": "0",
            "imr": "0",
            "isoEq": "0",
            "isoUpl": "0",
            "mmr": "0",
            "notionalLever": "0",
            "ordFrozen": "0",
            "stgyEq": "0",
            "twap": "0",
            "uTime": str(now_ms()),
            "upl": "0",
            "borrowFroz": "",
            "clSpotInUseAmt": "",
            "collateralEnabled": False,
            "crossLiab": "",
            "interest": "",
            "isoLiab": "",
            "liab": "",
            "maxLoan": "",
            "maxSpotInUseAmt": "",
            "mgnRatio": "",
            "openAvgPx": "",
            "rewardBal": "0",
            "smtSyncEq": "0",
            "spotBal": "",
            "spotCopyTradingEq": "0",
            "spotInUseAmt": "",
            "spotIsoBal": "0",
            "spotUpl": "",
            "spotUplRatio": "",
            "totalPnl": "",
            "totalPnlRatio": "",
            "uplLiab": "",
        }
        return {
            "adjEq": "",
            "borrowFroz": "",
            "notionalUsdForBorrow": "",
            "notionalUsdForFutures": "",
            "notionalUsdForOption": "",
            "notionalUsdForSwap": "",
            "details": [detail],
            "imr": "",
            "isoEq": "0",
            "mgnRatio": "",
            "mmr": "",
            "notionalUsd": "",
            "ordFroz": "",
            "totalEq": balance,
            "uTime": str(now_ms()),
            "upl": "",
        }

    def _position(self) -> dict[str, Any]:
        state = self.state
        now = str(now_ms())
        return {
            "instId": SWAP_ID,
            "instType": "SWAP",
            "mgnMode": "cross",
            "posId": "1",
            "posSide": "net",
            "pos": str(state.position),
            "baseBal": "",
            "ccy": "USDT",
            "fee": "0",
            "lever": "1",
            "last": str(state.last_close),
            "markPx": str(state.last_close),
            "liqPx": "",
            "mmr": "0",
            "interest": "0",
            "tradeId": "1",
            "notionalUsd": str(abs(state.position) * CONTRACT_BTC * state.last_close),
            "avgPx": str(state.entry),
            "upl": "0",
            "uplRatio": "0",
            "uTime": now,
            "margin": "",
            "mgnRatio": "",
            "adl": "1",
            "cTime": now,
            "realizedPnl": "0",
            "availPos": str(abs(state.position)),
            "bePx": str(state.entry),
            "fundingFee": "0",
            "pnl": "0",
            "posCcy": "",
            "quoteBal": "",
            "uplLastPx": "0",
            "uplRatioLastPx": "0",
            "idxPx": str(state.last_close),
            "liqPenalty": "0",
            "optVal": "",
            "pendingCloseOrdLiabVal": "",
            "quoteBorrowed": "",
            "quoteInterest": "",
            "spotInUseAmt": "",
            "spotInUseCcy": "",
            "usdPx": "",
        }

    async def _order(self, params: dict[str, Any]) -> dict[str, str]:
        self.state.orders.append(params)
        order_id = str(next(self.state.order_ids))
        self.spawn(self._fill(params, order_id))
        return {
            "clOrdId": params.get("clOrdId", ""),
            "ordId": order_id,
            "tag": "",
            "ts": str(now_ms()),
            "sCode": "0",
            "sMsg": "Order placed",
        }

    async def _fill(self, params: dict[str, Any], order_id: str) -> None:
        await asyncio.sleep(0.05)
        state = self.state
        contracts = Decimal(params["sz"])
        price = state.last_close
        signed = contracts if params["side"] == "buy" else -contracts
        fee = state.fill(signed, price, taker_fee=TAKER_FEE, fee_step=FEE_STEP, multiplier=CONTRACT_BTC)
        now = str(now_ms())
        order = {
            "accFillSz": str(contracts),
            "algoClOrdId": "",
            "algoId": "",
            "attachAlgoClOrdId": "",
            "attachAlgoOrds": [],
            "avgPx": str(price),
            "cTime": now,
            "cancelSource": "",
            "cancelSourceReason": "",
            "category": "normal",
            "ccy": "",
            "clOrdId": params.get("clOrdId", ""),
            "execType": "T",
            "fee": str(-fee),
            "feeCcy": "USDT",
            "fillPx": str(price),
            "fillSz": str(contracts),
            "fillTime": now,
            "instId": SWAP_ID,
            "instType": "SWAP",
            "isTpLimit": "false",
            "lever": "1",
            "linkedAlgoOrd": {"algoId": ""},
            "ordId": order_id,
            "ordType": params.get("ordType", "market"),
            "pnl": "0",
            "posSide": "net",
            "px": "",
            "pxType": "",
            "pxUsd": "",
            "pxVol": "",
            "quickMgnType": "",
            "rebate": "0",
            "rebateCcy": "USDT",
            "reduceOnly": str(params.get("reduceOnly", False)).lower(),
            "side": params["side"],
            "slOrdPx": "",
            "slTriggerPx": "",
            "slTriggerPxType": "",
            "source": "",
            "state": "filled",
            "stpId": "",
            "stpMode": "cancel_maker",
            "sz": str(contracts),
            "tag": "",
            "tdMode": params.get("tdMode", "cross"),
            "tgtCcy": "",
            "tpOrdPx": "",
            "tpTriggerPx": "",
            "tpTriggerPxType": "",
            "tradeId": str(next(state.trade_ids)),
            "uTime": now,
        }
        await self.push_user(
            {"arg": {"channel": "orders", "instType": "SWAP", "uid": "10000000000000001"}, "data": [order]},
            {
                "arg": {"channel": "positions", "instType": "SWAP", "uid": "10000000000000001"},
                "data": [self._position()],
            },
            {"arg": {"channel": "account", "uid": "10000000000000001"}, "data": [self._balance()]},
        )


def _liquidation(detail: dict[str, Any]) -> dict[str, Any]:
    # The shape of OKX's v5 docs: one item per instrument, sizes in contracts, restamped with the venue's clock.
    item = {"instId": SWAP_ID, "instType": "SWAP", "uly": "BTC-USDT", "instFamily": "BTC-USDT"}
    details = [{**detail, "ts": str(now_ms())}]
    return {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [{**item, "details": details}]}
