"""Replay helpers a strategy sees: the historical clock and denials handed over after ``submit_order``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.live.harness import deferred_denials
from engine.live.replay import HistoricalClock, ReplayClock

T = 1_704_153_600_000_000_001  # 2024-01-02T00:00:00.000000001Z, a bar's ts_init


def test_historical_clock_reads_the_replayed_event_time_and_leaves_the_node_clock_alone() -> None:
    replay = ReplayClock(speed=0)
    replay.record(wall_ns=1_800_000_000_000_000_000, historical_ns=T)

    def node_clock() -> Any:
        raise AssertionError("the node clock is borrowed inside some handlers: time must not touch it")

    clock = HistoricalClock(node_clock, replay)
    assert clock.timestamp_ns() == T
    assert clock.timestamp_ms() == T // 1_000_000
    assert clock.timestamp() == pytest.approx(T / 1e9)
    assert clock.utc_now() == datetime(2024, 1, 2, tzinfo=UTC)


def test_historical_clock_delegates_timers_to_the_node_clock() -> None:
    class NodeClock:
        def timer_names(self) -> list[str]:
            return ["supervisor"]

    clock = HistoricalClock(NodeClock, ReplayClock(speed=0))
    assert clock.timer_names() == ["supervisor"]


class _Borrowing:
    # Like a Nautilus live node: a denial arrives inside submit_order, while the strategy is borrowed.
    def __init__(self) -> None:
        self.borrowed = False
        self.seen: list[tuple[str, bool]] = []

    def submit_order(self, order: str, position_id: Any = None, client_id: Any = None, params: Any = None) -> None:
        self.borrowed = True
        if order.startswith("deny"):
            self.on_order_denied(order)
        self.borrowed = False

    def on_order_denied(self, event: str) -> None:
        self.seen.append((event, self.borrowed))


def test_denials_reach_the_strategy_after_submit_order_returns_in_order() -> None:
    strategy = deferred_denials(_Borrowing)()
    strategy.submit_order("deny-1")
    strategy.submit_order("accept")
    strategy.submit_order("deny-2")
    assert strategy.seen == [("deny-1", False), ("deny-2", False)]
    strategy.on_order_denied("outside")  # not inside submit_order: handled at once
    assert strategy.seen[-1] == ("outside", False)
