"""Replay: stream a catalog's data into a live node on an accelerated clock, offline.

``ReplayDataClient`` is a Nautilus 2.x Python ``MarketDataClient``: on connect it emits the run's
instruments, then streams every bar, mark price, funding update and (with ``[data] liquidations``) every
``Liquidation`` custom-data event of ``[start, end)`` in ``ts_init`` order, exactly the events and the
order a backtest of the same config feeds its engine (both come from ``engine.run_data.load_run_data``).
Events keep their historical timestamps.

The replay clock maps historical time to wall time: at ``speed`` 1000 an hour of data takes 3.6 s;
``speed`` 0 goes as fast as the node keeps up. Either way, before each bar the client waits until
every order the strategy sent on the previous one has been acknowledged by the sandbox, so orders fill
on the bar they were decided on, as in a backtest. The node's own clock stays wall time (Nautilus owns
it); ``ReplayClock.to_historical`` maps the wall timestamps of fills back to the bar they belong to.

Funding settles here, in stream order, because this is the one place that knows when historical time
crosses a settlement instant: after every event stamped at or before ``T`` and before the first one
after it (the same instant the backtest engine picks, see ``engine.run_data``). The next event waits
until the session has booked the settlements into the sandbox account, so the strategy's equity
includes them from the same event on as in the backtest.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from nautilus_trader.live import DataClientConfig
from nautilus_trader.live.clients import DataClientFactory, MarketDataClient
from nautilus_trader.model import Bar, FundingRateUpdate, MarkPriceUpdate, OrderStatus, PositionSide, Venue

from engine.live.funding import PaperFunding, Settlement
from engine.live.logs import get_logger

# Order states that mean "the sandbox has not answered yet".
PENDING = frozenset(
    {OrderStatus.INITIALIZED, OrderStatus.SUBMITTED, OrderStatus.PENDING_UPDATE, OrderStatus.PENDING_CANCEL}
)
# How long the replay waits for the node to handle an event, the sandbox to answer or a booking to land.
# Generous: the wait ends on the state, not the time (a loaded machine only makes it longer); the
# bound exists so a node that never answers is reported (a warning) instead of hanging the replay.
QUIESCENCE_TIMEOUT_SECS = 120.0
SUBSCRIPTION_TIMEOUT_SECS = 10.0


@dataclass(slots=True)
class ReplayClock:
    """Historical time of a replay and its mapping to the node's wall clock.

    Attributes
    ----------
    speed : float
        Historical seconds per wall second; 0 means as fast as possible.
    """

    speed: float
    emitted_wall: list[int] = field(default_factory=list)
    emitted_historical: list[int] = field(default_factory=list)
    anchor: tuple[int, float] | None = None

    def pace(self, historical_ns: int) -> float:
        """Return the wall seconds to wait before emitting an event stamped ``historical_ns``."""
        if self.speed <= 0:
            return 0.0
        if self.anchor is None:
            self.anchor = (historical_ns, time.monotonic())
            return 0.0
        start_ns, start_wall = self.anchor
        due = start_wall + (historical_ns - start_ns) / 1e9 / self.speed
        return max(due - time.monotonic(), 0.0)

    def record(self, wall_ns: int, historical_ns: int) -> None:
        """Record that the event stamped ``historical_ns`` was handed to the node at ``wall_ns``."""
        self.emitted_wall.append(wall_ns)
        self.emitted_historical.append(historical_ns)

    def to_historical(self, wall_ns: int) -> int:
        """Return the historical time of the last event emitted at or before ``wall_ns`` (0 if none)."""
        at = bisect.bisect_right(self.emitted_wall, wall_ns)
        return self.emitted_historical[at - 1] if at else 0

    @property
    def now(self) -> int:
        """Return the historical time of the last event emitted (0 before the first)."""
        return self.emitted_historical[-1] if self.emitted_historical else 0


class HistoricalClock:
    """A node clock as a strategy sees it during a replay: "now" is the replay's historical time.

    In a backtest a strategy's ``clock.timestamp_ns()`` is the ``ts_init`` of the event it is handling;
    the replay emits one event at a time and waits for the node to handle it, so ``ReplayClock.now``
    is that same instant. Staleness guards, UTC-day breakers, funding bookkeeping and the risk events'
    timestamps then read historical time, as in the backtest. Timers and time alerts are not replayed:
    they are delegated to the node's wall clock.

    Parameters
    ----------
    node_clock : callable
        Returns the node's clock (timers, alerts and anything else are delegated to it). Called only
        for those: inside some handlers (``on_order_denied``) Nautilus holds the clock borrowed.
    replay : ReplayClock
    """

    def __init__(self, node_clock: Callable[[], Any], replay: ReplayClock) -> None:
        self._node_clock = node_clock
        self._replay = replay

    def timestamp_ns(self) -> int:
        """Return the historical time of the event being handled, in nanoseconds."""
        return self._replay.now

    def timestamp_us(self) -> int:
        """Return the historical time in microseconds."""
        return self._replay.now // 1_000

    def timestamp_ms(self) -> int:
        """Return the historical time in milliseconds."""
        return self._replay.now // 1_000_000

    def timestamp(self) -> float:
        """Return the historical time in seconds."""
        return self._replay.now / 1e9

    def utc_now(self) -> datetime:
        """Return the historical time as a UTC datetime (microsecond resolution)."""
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=self._replay.now // 1_000)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node_clock(), name)


@dataclass(slots=True)
class ReplayFeed:
    """Everything a replay client streams, and the hooks it reports to.

    Attributes
    ----------
    instruments : list
        Nautilus instruments emitted on connect.
    events : list
        Bars, mark prices and funding updates, sorted by ``ts_init``.
    clock : ReplayClock
    funding : PaperFunding
    resume_after : int
        Skip the first ``resume_after`` events (a restarted paper node resumes its replay after the last
        event it processed; events share timestamps, so the cursor counts events). The last bar of each
        bar type among them is emitted again first ("priming", ``priming`` is True meanwhile), so the
        sandbox has the price the restored positions are re-opened at (``engine.live.harness.after_resume``
        hides those bars from the strategy).
    on_event : callable
        Called with every event after it was emitted (status, metrics).
    on_processed : callable
        Called with the number of events processed so far and the last one, once the node has handled it
        and the sandbox has answered every order (the journal's replay cursor); not for priming bars.
    on_settlement : callable
        Called with every funding settlement.
    booked : callable
        Whether every settlement handed to ``on_settlement`` is in the node's account (the session books
        them there, ``engine.live.funding_account``): the replay waits for it before the next event, as
        a backtest's engine settles into the account before it.
    on_finished : callable
        Called once after the last event was emitted and every order was answered.
    processed : callable
        Whether the node has dispatched a bar to its subscribers (the replay waits for it).
    settling : callable
        Whether the strategy is busy on a wall-clock timer (a ``market_exit()`` in progress): the replay
        waits for it, as a backtest's clock would fire that timer before the next event.
    pause_after_ns : int, optional
        Stop streaming after the last event stamped at or before this (the node then stops as if told to).
    """

    instruments: list[Any]
    events: Sequence[Any]
    clock: ReplayClock
    funding: PaperFunding
    resume_after: int = 0
    on_event: Callable[[Any], None] = lambda _: None
    on_processed: Callable[[int, Any], None] = lambda _, __: None
    on_settlement: Callable[[Settlement], None] = lambda _: None
    booked: Callable[[], bool] = lambda: True
    on_finished: Callable[[], None] = lambda: None
    processed: Callable[[Bar], bool] = lambda _: True
    settling: Callable[[], bool] = lambda: False
    pause_after_ns: int | None = None
    priming: bool = False


class ReplayDataClient(MarketDataClient):  # type: ignore[misc]
    """Stream a ``ReplayFeed`` into the node; subscriptions are acknowledged, data flows regardless."""

    def __init__(self, *, feed: ReplayFeed, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feed = feed
        self.subscribed = asyncio.Event()
        self.task: asyncio.Task[object] | None = None

    async def _connect(self) -> None:
        for instrument in self.feed.instruments:
            self._handle_instrument(instrument)
        self.task = self.create_task(self._stream(), "replay-stream")

    async def _disconnect(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def _subscribe_bars(self, command: Any) -> None:
        self.subscribed.set()

    async def _subscribe_funding_rates(self, command: Any) -> None:
        self.subscribed.set()

    async def _subscribe_mark_prices(self, command: Any) -> None:
        self.subscribed.set()

    async def _subscribe(self, command: Any) -> None:
        self.subscribed.set()  # custom data: the catalog's ``Liquidation`` stream

    async def _subscribe_instrument(self, command: Any) -> None:
        return None

    async def _subscribe_instruments(self, command: Any) -> None:
        return None

    async def _unsubscribe(self, command: Any) -> None:
        return None

    async def _unsubscribe_bars(self, command: Any) -> None:
        return None

    async def _unsubscribe_funding_rates(self, command: Any) -> None:
        return None

    async def _unsubscribe_mark_prices(self, command: Any) -> None:
        return None

    async def _stream(self) -> None:
        try:
            await asyncio.wait_for(self.subscribed.wait(), timeout=SUBSCRIPTION_TIMEOUT_SECS)
        except TimeoutError:
            pass  # a strategy that subscribes to nothing still gets the stream
        await asyncio.sleep(0.05)
        feed = self.feed
        priming: dict[str, Bar] = {}
        for index, event in enumerate(feed.events):
            if index < feed.resume_after:
                self._observe(event)
                if isinstance(event, Bar):
                    priming[str(event.bar_type)] = event
                continue
            if priming:
                await self._prime(list(priming.values()))
                priming = {}
            if feed.pause_after_ns is not None and event.ts_init > feed.pause_after_ns:
                break
            await self._settle_before(event.ts_init)
            delay = feed.clock.pace(event.ts_init)
            if delay > 0:
                await asyncio.sleep(delay)
            feed.clock.record(self.clock.timestamp_ns(), event.ts_init)
            self._handle_data(event)
            self._observe(event)
            feed.on_event(event)
            if isinstance(event, Bar):
                await self._acknowledged(event)
            await self._quiesce()
            feed.on_processed(index + 1, event)
        if priming:
            await self._prime(list(priming.values()))
        feed.on_finished()

    async def _prime(self, bars: list[Bar]) -> None:
        # A resumed replay: the last bars before the cursor again, for the sandbox (restored positions
        # are re-opened at their close); the strategy ignores them.
        self.feed.priming = True
        try:
            for bar in sorted(bars, key=lambda b: b.ts_init):
                self.feed.clock.record(self.clock.timestamp_ns(), bar.ts_init)
                self._handle_data(bar)
                await self._acknowledged(bar)
            await self._quiesce()
        finally:
            self.feed.priming = False

    def _observe(self, event: Any) -> None:
        # Custom data (``Liquidation``) moves no funding book: only bars, funding and marks are observed.
        book = self.feed.funding
        if isinstance(event, FundingRateUpdate):
            book.on_funding(
                str(event.instrument_id), rate=Decimal(str(event.rate)), next_funding_ns=event.next_funding_ns
            )
        elif isinstance(event, MarkPriceUpdate):
            book.on_mark(str(event.instrument_id), ts=event.ts_event, price=event.value.as_decimal())
        elif isinstance(event, Bar):
            book.on_close(str(event.bar_type.instrument_id), ts=event.ts_event, price=event.close.as_decimal())

    async def _settle_before(self, ts_init: int) -> None:
        book = self.feed.funding
        upcoming = book.next_due()
        if upcoming is None or upcoming >= ts_init:
            return
        await self._quiesce()
        for instrument_id, ts in book.due(ts_init - 1):
            size, position_id = self._position(instrument_id)
            settlement = book.settle(instrument_id, ts, position_size=size, position_id=position_id)
            if settlement is not None:
                self.feed.on_settlement(settlement)
        deadline = time.monotonic() + QUIESCENCE_TIMEOUT_SECS
        while not self.feed.booked() and time.monotonic() < deadline:  # noqa: ASYNC110 - the node offers no event
            await asyncio.sleep(0.0005)

    def _position(self, instrument_id: str) -> tuple[Decimal, str]:
        size = Decimal(0)
        position_id = ""
        for position in self.cache.positions_open():
            if str(position.instrument_id) == instrument_id:
                size += signed_quantity(position)
                position_id = str(position.id)
        return size, position_id

    async def _acknowledged(self, bar: Bar) -> None:
        # The node handles a bar in one synchronous dispatch to every subscriber; once the supervisor
        # has seen it, the strategy has too, and any order it sent exists in the cache.
        deadline = time.monotonic() + QUIESCENCE_TIMEOUT_SECS
        while not self.feed.processed(bar) and time.monotonic() < deadline:  # noqa: ASYNC110 - the node offers no event
            await asyncio.sleep(0)

    async def _quiesce(self) -> None:
        # Let the node run the strategy's handlers, then wait for the sandbox to answer its orders
        # and for a market exit to finish (its check runs on a wall-clock timer).
        for _ in range(3):
            await asyncio.sleep(0)
        deadline = time.monotonic() + QUIESCENCE_TIMEOUT_SECS
        while time.monotonic() < deadline:
            if not any(order.status in PENDING for order in self.cache.orders()) and not self.feed.settling():
                return
            await asyncio.sleep(0.0005)
        get_logger("replay").warning(
            "replay continues without the sandbox's answer",
            waited_secs=QUIESCENCE_TIMEOUT_SECS,
            why="orders still pending or a market exit unfinished; the replay may diverge from the backtest",
        )


def signed_quantity(position: Any) -> Decimal:
    """Return a Nautilus position's size as an exact decimal, negative when short."""
    quantity: Decimal = position.quantity.as_decimal()
    return -quantity if position.side == PositionSide.SHORT else quantity


class ReplayDataClientFactory(DataClientFactory):  # type: ignore[misc]
    """Create the replay client of one node (the factory instance carries its feed)."""

    def __init__(self, feed: ReplayFeed, *, venue: str) -> None:
        self.feed = feed
        self.venue = venue

    def create(self, *, name: str, config: DataClientConfig, cache: Any, clock: Any) -> ReplayDataClient:
        return ReplayDataClient(
            feed=self.feed, name=name, config=config, cache=cache, clock=clock, venue=Venue(self.venue)
        )
