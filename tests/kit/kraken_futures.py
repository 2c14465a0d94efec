"""A loopback Kraken Futures venue (``PF_XBTUSD``) on 127.0.0.1: REST and WebSocket in Kraken Futures' formats.

It answers what Nautilus 2.0.0rc6's Kraken adapter (``KrakenProductType.FUTURES``) calls, seen by pointing
the adapter at it: ``GET /derivatives/api/v3/instruments``, ``accounts``, ``openorders``, ``fills`` and
``openpositions``, ``POST /derivatives/api/v3/sendorder``; one WebSocket (``/ws/v1``) takes the ``challenge``
and the private ``open_orders``/``fills`` subscriptions, and the public ``ticker`` (mark price, funding),
``book`` (the adapter's quotes) and ``trade`` (what Nautilus builds ``-INTERNAL`` bars from) ones. The
adapter subscribes no candles: Kraken Futures streams none.

Formats: the instrument is ``tests/kit/venues.py``'s Kraken Futures record; accounts (``flex``), open
positions, the ``sendorder`` answer (status ``placed`` with one ``EXECUTION`` event and its
``orderPriorExecution``), the WebSocket's ``info``/``challenge``/``subscribed`` events and the
``ticker``, ``book_snapshot``/``book``, ``trade_snapshot``/``trade`` and ``fills`` pushes are written from
the Kraken Futures API docs (docs.kraken.com/api/docs/futures-api); no Kraken Futures sample in
``../shared/data`` covers them.
Amounts and prices are JSON numbers, as Kraken Futures sends them. Signatures are not checked. Market
orders fill at once at the last price (42000 unless a test moves it); taker fee 5 bps.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.kit.loopback_venue import LoopbackServer, VenueAccount, now_ms
from tests.kit.venues import kraken_instrument, kraken_time

SYMBOL = "PF_XBTUSD"
TAKER_FEE = Decimal("0.0005")
FEE_STEP = Decimal("0.000001")


INSTRUMENT = kraken_instrument(SYMBOL)
ACCOUNT_UID = "8ad1b2ac-0000-4000-8000-000000000001"  # a made-up account id, in the format of the docs


@dataclass
class KrakenState(VenueAccount):
    """The venue's state and what it saw (``position`` signed, in BTC)."""

    last_price: Decimal = Decimal("42000.0")
    fill_ids: Any = field(default_factory=lambda: itertools.count(1))


class KrakenFuturesLoopback(LoopbackServer):
    """A Kraken Futures venue: ``connection_toml()`` is the ``[live.connections.kraken]`` body that reaches it."""

    name = "kraken"

    def __init__(self) -> None:
        super().__init__()
        self.state = KrakenState()

    def connection_toml(self) -> str:
        return (
            f'base_url_http = "{self.url}"\nbase_url_ws = "{self.ws_url}/ws/v1"\n'
            f'base_url_ws_private = "{self.ws_url}/ws/v1"\n'
        )

    @property
    def feeds(self) -> list[str]:
        return [str(m.get("feed")) for _, m in self.messages if isinstance(m, dict) and m.get("event") == "subscribe"]

    def _ok(self, **body: Any) -> web.Response:
        return web.json_response({"result": "success", **body, "serverTime": kraken_time(now_ms())})

    async def handle_http(self, request: web.Request, body: str) -> web.StreamResponse:
        path = request.path.removeprefix("/derivatives")
        if path == "/api/v3/instruments":
            return self._ok(instruments=[INSTRUMENT])
        if path == "/api/v3/accounts":
            return self._ok(accounts={"flex": self._flex()})
        if path == "/api/v3/openpositions":
            return self._ok(openPositions=self._positions())
        if path == "/api/v3/openorders":
            return self._ok(openOrders=[])
        if path == "/api/v3/fills":
            return self._ok(fills=[])
        if path == "/api/history/v3/orders":
            # Docs (account history, get order events): a page of order lifecycle events. rc7's mass status
            # reads one page at start; this loopback keeps no history, so the page is empty and the
            # reconciliation rests on openorders, fills and openpositions, as it did on rc6.
            return web.json_response(
                {"accountUid": ACCOUNT_UID, "len": 0, "elements": [], "serverTime": kraken_time(now_ms())}
            )
        if path == "/api/v3/sendorder":
            params = dict(request.query) | dict(parse_qsl(body))
            return self._ok(sendStatus=await self._send(params))
        return await super().handle_http(request, body)

    def _flex(self) -> dict[str, Any]:
        balance = float(self.state.balance)
        return {
            "type": "multiCollateralMarginAccount",
            "currencies": {"USD": {"quantity": balance, "value": balance, "collateral": balance, "available": balance}},
            "initialMargin": 0.0,
            "initialMarginWithOrders": 0.0,
            "maintenanceMargin": 0.0,
            "balanceValue": balance,
            "portfolioValue": balance,
            "collateralValue": balance,
            "pnl": 0.0,
            "unrealizedFunding": 0.0,
            "totalUnrealized": 0.0,
            "totalUnrealizedAsMargin": 0.0,
            "availableMargin": balance,
            "marginEquity": balance,
        }

    def _positions(self) -> list[dict[str, Any]]:
        state = self.state
        if state.position == 0:
            return []
        return [
            {
                "side": "short" if state.position < 0 else "long",
                "symbol": SYMBOL,
                "price": float(state.entry),
                "fillTime": kraken_time(now_ms()),
                "size": float(abs(state.position)),
                "unrealizedFunding": 0.0,
                "pnlCurrency": "USD",
            }
        ]

    async def _send(self, params: dict[str, str]) -> dict[str, Any]:
        # Docs (sendorder): a market order that executes at once answers "placed" with one EXECUTION event
        # holding the order as it was before the execution (orderPriorExecution).
        state = self.state
        state.orders.append(params)
        order_id = str(uuid.uuid4())
        quantity, price, now = Decimal(params["size"]), state.last_price, now_ms()
        prior = {
            "orderId": order_id,
            "cliOrdId": params.get("cliOrdId"),
            "type": params["orderType"],
            "symbol": params["symbol"],
            "side": params["side"],
            "quantity": float(quantity),
            "filled": 0.0,
            "limitPrice": float(price),
            "reduceOnly": params.get("reduceOnly") == "true",
            "timestamp": kraken_time(now),
            "lastUpdateTimestamp": kraken_time(now),
        }
        execution = {
            "type": "EXECUTION",
            "executionId": str(uuid.uuid4()),
            "price": float(price),
            "amount": float(quantity),
            "orderPriorEdit": None,
            "orderPriorExecution": prior,
            "takerReducedQuantity": None,
        }
        self.spawn(self._fill(params, order_id, quantity, price))
        return {"order_id": order_id, "status": "placed", "receivedTime": kraken_time(now), "orderEvents": [execution]}

    async def _fill(self, params: dict[str, str], order_id: str, quantity: Decimal, price: Decimal) -> None:
        await asyncio.sleep(0.05)
        state = self.state
        buy = params["side"] == "buy"
        fee = state.fill(quantity if buy else -quantity, price, taker_fee=TAKER_FEE, fee_step=FEE_STEP)
        fill = {
            "instrument": SYMBOL,
            "time": now_ms(),
            "price": float(price),
            "seq": next(state.fill_ids),
            "buy": buy,
            "qty": float(quantity),
            "remaining_order_qty": 0.0,
            "order_id": order_id,
            "cli_ord_id": params.get("cliOrdId"),
            "fill_id": str(uuid.uuid4()),
            "fill_type": "taker",
            "fee_paid": float(fee),
            "fee_currency": "USD",
            "taker_order_type": params["orderType"],
            "order_type": params["orderType"],
        }
        await self.push_user({"feed": "fills", "username": "loopback", "fills": [fill]})

    async def on_open(self, channel: str, socket: web.WebSocketResponse) -> None:
        await socket.send_json({"event": "info", "version": 1})

    async def handle_message(self, channel: str, socket: web.WebSocketResponse, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        event = payload.get("event")
        if event == "challenge":
            await socket.send_json({"event": "challenge", "message": str(uuid.uuid4())})
        elif event == "subscribe":
            if payload.get("feed") in ("fills", "open_orders"):
                self.add_user_socket(socket)
            answer = {"event": "subscribed", "feed": payload.get("feed")}
            if "product_ids" in payload:
                answer["product_ids"] = payload["product_ids"]
            await socket.send_json(answer)
            if payload.get("feed") == "ticker":
                self.spawn(self._tickers(socket))
            if payload.get("feed") == "book":
                self.spawn(self._book(socket))
            if payload.get("feed") == "trade":
                self.spawn(self._trades(socket))

    async def _book(self, socket: web.WebSocketResponse) -> None:
        # Docs: a ``book_snapshot`` (bids/asks of {price, qty}), then one ``book`` message per changed level.
        price = float(self.state.last_price)
        seq = itertools.count(1)
        await socket.send_json(
            {
                "feed": "book_snapshot",
                "product_id": SYMBOL,
                "timestamp": now_ms(),
                "seq": next(seq),
                "tickSize": None,
                "bids": [{"price": price - 0.5, "qty": 1.0}],
                "asks": [{"price": price + 0.5, "qty": 1.0}],
            }
        )
        while not socket.closed:
            await asyncio.sleep(0.25)
            price = float(self.state.last_price)
            for side, level in (("buy", price - 0.5), ("sell", price + 0.5)):
                await socket.send_json(
                    {
                        "feed": "book",
                        "product_id": SYMBOL,
                        "side": side,
                        "seq": next(seq),
                        "price": level,
                        "qty": 1.0,
                        "timestamp": now_ms(),
                    }
                )

    async def _trades(self, socket: web.WebSocketResponse) -> None:
        # Docs: a ``trade_snapshot`` of recent trades, then one ``trade`` message per public execution.
        await socket.send_json({"feed": "trade_snapshot", "product_id": SYMBOL, "trades": []})
        for seq in itertools.count(1):
            await asyncio.sleep(0.25)
            if socket.closed:
                return
            trade = {"uid": str(uuid.uuid4()), "side": "buy", "type": "fill", "seq": seq, "time": now_ms()}
            trade |= {"qty": 0.01, "price": float(self.state.last_price)}
            await socket.send_json({"feed": "trade", "product_id": SYMBOL, **trade})

    async def _tickers(self, socket: web.WebSocketResponse) -> None:
        # The price holds still (``KrakenState.last_price``): the bars come from a minute of these trades.
        await asyncio.sleep(0.3)
        while not socket.closed:
            price = float(self.state.last_price)
            await socket.send_json(
                {
                    "time": now_ms(),
                    "product_id": SYMBOL,
                    "funding_rate": 21.0,
                    "funding_rate_prediction": 21.0,
                    "relative_funding_rate": 0.0005,
                    "relative_funding_rate_prediction": 0.0005,
                    "next_funding_rate_time": (now_ms() // 3_600_000 + 1) * 3_600_000,
                    "feed": "ticker",
                    "bid": price - 0.5,
                    "ask": price + 0.5,
                    "bid_size": 1.0,
                    "ask_size": 1.0,
                    "volume": 100.0,
                    "dtm": 0,
                    "leverage": "50x",
                    "index": price,
                    "premium": 0.0,
                    "last": price,
                    "change": 0.0,
                    "suspended": False,
                    "tag": "perpetual",
                    "pair": "XBT:USD",
                    "openInterest": 1000.0,
                    "markPrice": price,
                    "maturityTime": 0,
                    "post_only": False,
                    "volumeQuote": 4200000.0,
                }
            )
            await asyncio.sleep(0.25)
