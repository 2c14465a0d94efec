"""A loopback venue's plumbing: one aiohttp server on 127.0.0.1 in a daemon thread, REST and WebSocket.

A venue module (``tests/kit/binance_futures.py``, ``bybit_linear.py``, ...) subclasses ``LoopbackServer`` and
implements ``handle_http`` and ``handle_message``; every request and WebSocket message is recorded in
``requests`` and ``messages`` (what the adapter asked, to assert on and to read when it changes). What the
venues share beyond the transport: a ``VenueAccount`` that books every taker fill (one formula for the
position, the entry and the fee), the user sockets that hear of the fills (``add_user_socket``,
``push_user``) and the one-off pushes of recorded events (``send_later``, the liquidation streams).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Self

from aiohttp import WSMsgType, web

REPO = Path(__file__).resolve().parents[2]
START_BALANCE = Decimal("100000")


def now_ms() -> int:
    """Return the wall clock in milliseconds (the adapters compare venue times with theirs)."""
    return int(time.time() * 1000)


@dataclass
class VenueAccount:
    """A loopback venue's one-instrument account: the orders it took, its signed position, entry and wallet."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    position: Decimal = Decimal(0)
    entry: Decimal = Decimal(0)
    balance: Decimal = START_BALANCE

    def fill(
        self,
        quantity: Decimal,
        price: Decimal,
        *,
        taker_fee: Decimal,
        fee_step: Decimal,
        multiplier: Decimal = Decimal(1),
    ) -> Decimal:
        """Book a taker fill of signed ``quantity`` (in units of ``multiplier``) at ``price``; return the fee.

        The entry is the last fill's price while a position is open (the loopbacks never scale in).
        """
        self.position += quantity
        self.entry = price if self.position != 0 else Decimal(0)
        fee = (abs(quantity) * multiplier * price * taker_fee).quantize(fee_step)
        self.balance -= fee
        return fee


class LoopbackServer:
    """Serve a venue from a daemon thread; ``url``/``ws_url`` point an adapter at it."""

    name = "loopback"

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._serve, name=f"{self.name}-loopback", daemon=True)
        self.runner: web.AppRunner | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.requests: list[tuple[str, str, dict[str, str], str]] = []
        self.messages: list[tuple[str, Any]] = []
        self.sockets: list[tuple[str, web.WebSocketResponse]] = []
        self.user_sockets: list[web.WebSocketResponse] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("loopback venue did not start within 10 s")
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            for task in self.tasks:
                task.cancel()
            for _, socket in self.sockets:
                await socket.close()
            if self.runner is not None:
                await self.runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def paths(self, start: int = 0) -> list[str]:
        """Return the paths of the HTTP requests from index ``start`` on."""
        return [path for method, path, _, _ in self.requests[start:] if method != "WS"]

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.ready.set()
        self.loop.run_forever()

    def spawn(self, coroutine: Any) -> None:
        task = self.loop.create_task(_until_disconnected(coroutine))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def add_user_socket(self, socket: web.WebSocketResponse) -> None:
        """Make ``socket`` hear ``push_user`` (the venue's private stream, once logged in or subscribed)."""
        if socket not in self.user_sockets:
            self.user_sockets.append(socket)

    async def push_user(self, *messages: Any) -> None:
        """Send ``messages``, in order, to every open user socket."""
        for socket in list(self.user_sockets):
            if socket.closed:
                continue
            for message in messages:
                await socket.send_json(message)

    async def send_later(
        self, socket: web.WebSocketResponse, items: Sequence[Any], message: Callable[[Any], Any], *, after_secs: float
    ) -> None:
        """Send ``message(item)`` once for each of ``items``, ``after_secs`` from now, while ``socket`` is open."""
        await asyncio.sleep(after_secs)
        for item in items:
            if socket.closed:
                return
            await socket.send_json(message(item))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            self.requests.append(("WS", request.path_qs, dict(request.headers), ""))
            return await self._websocket(request)
        body = await request.text()
        self.requests.append(
            (request.method, request.path, dict(request.headers) | {"query": request.query_string}, body)
        )
        return await self.handle_http(request, body)

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        channel = request.path_qs
        self.sockets.append((channel, socket))
        await self.on_open(channel, socket)
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                payload: Any = json.loads(message.data)
            except json.JSONDecodeError:
                payload = message.data
            self.messages.append((channel, payload))
            await self.handle_message(channel, socket, payload)
        return socket

    async def on_open(self, channel: str, socket: web.WebSocketResponse) -> None:
        return None

    async def handle_http(self, request: web.Request, body: str) -> web.StreamResponse:
        return web.json_response({"error": f"loopback: no route {request.method} {request.path}"}, status=404)

    async def handle_message(self, channel: str, socket: web.WebSocketResponse, payload: Any) -> None:
        return None


async def _until_disconnected(coroutine: Any) -> None:
    # A push loop ends when the adapter closes its socket, possibly in the middle of a send.
    with contextlib.suppress(ConnectionResetError):
        await coroutine


def run_live_cli(
    config: Path,
    out: Path,
    *,
    environ: dict[str, str],
    duration_secs: float | Callable[[], float],
    flatten: bool,
    log_level: str = "INFO",
) -> tuple[int, str, dict[str, Any]]:
    """Run ``python -m engine.live --mode live`` on ``config`` for ``duration_secs``; return code, output, stats.

    A callable ``duration_secs`` is asked right before the live run starts (after the dry run).

    Production starts only with the config hash a dry run prints (no terminal here), as an operator would.
    """
    live = [sys.executable, "-m", "engine.live", "--mode", "live", "--live", str(config)]
    env = {**os.environ, **environ}
    dry = subprocess.run(
        [*live, "--dry-run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    digest = next((line.split()[-1] for line in dry.stdout.splitlines() if "config hash:" in line), None)
    if digest is None:
        return dry.returncode, dry.stdout + dry.stderr, {}
    duration = duration_secs() if callable(duration_secs) else duration_secs
    command = [*live, "--confirm-live", digest, "--out", str(out), "--duration-secs", str(duration)]
    command += ["--flatten-on-stop" if flatten else "--no-flatten-on-stop", "--log-level", log_level]
    done = subprocess.run(
        command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180, check=False
    )
    output = done.stdout + done.stderr
    stats_files = list(out.glob("*/stats.json"))
    stats = json.loads(stats_files[0].read_text()) if done.returncode == 0 and stats_files else {}
    return done.returncode, output, stats


def funding_short_toml(
    *, venue: str, instrument: str, quote: str, connection: str, config_path: str = "strategies.demo:FundingShortConfig"
) -> bytes:
    """Return a live run config of the unchanged ``strategies.demo:FundingShort`` on one loopback venue.

    ``config_path`` names the strategy's config class (OKX needs one without hyphens in client order ids).
    """
    return f"""
name = "loopback-{venue}-live"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[data]
bar_spec = "1-MINUTE-LAST-EXTERNAL"
[[venues]]
name = "{venue}"
instruments = ["{instrument}"]
starting_balances = ["100000 {quote}"]
[risk.max_notional_per_order]
"{venue}:{instrument}" = 5000
[strategy]
path = "strategies.demo:FundingShort"
config_path = "{config_path}"
[strategy.params]
instrument_ids = ["{venue}:{instrument}"]
bar_spec = "1-MINUTE-LAST-EXTERNAL"
notional = "2000"
enter_rate = "0.0002"
exit_rate = "0.0001"
[live]
flatten_on_stop = true
status_interval_secs = 0.5
position_check_interval_secs = 1
[live.connections.{venue}]
environment = "production"
{connection}""".encode()
