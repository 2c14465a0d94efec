"""Signal handling from process start to the node's stop (``engine.live.signals``), in-process.

Each test sends a real signal to this process, with a handler installed first and the previous
handlers restored after. The subprocess tests (``python -m engine.live`` stopped at several moments)
are in ``tests/integration/test_live_paper.py``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from engine.live.signals import SignalGate, StartupAborted, current_signals, restore_signals, watch_signals

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signal handlers need the main thread"
)


@pytest.fixture
def gate() -> Iterator[SignalGate]:
    before = current_signals()
    installed = SignalGate().install()
    try:
        yield installed
    finally:
        installed.restore()
        restore_signals(before)


def _until(condition: Callable[[], bool], *, timeout_secs: float = 10) -> None:
    # Python runs a handler at the next bytecode of the main thread; a watcher thread needs a moment.
    deadline = time.monotonic() + timeout_secs
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.001)


def _start_up(signum: int) -> None:
    os.kill(os.getpid(), signum)
    _until(lambda: False)  # the handler raises at the next bytecode


def _held_start_up(gate: SignalGate, finished: list[str]) -> None:
    with gate.held():
        os.kill(os.getpid(), signal.SIGINT)
        _until(lambda: gate.received is not None)
        finished.append("held section")


def test_a_signal_during_start_up_aborts_it(gate: SignalGate) -> None:
    with pytest.raises(StartupAborted, match="signal SIGTERM"):
        _start_up(signal.SIGTERM)
    assert gate.received == "SIGTERM"


def test_a_held_section_finishes_before_the_abort(gate: SignalGate) -> None:
    finished: list[str] = []
    with pytest.raises(StartupAborted, match="signal SIGINT"):
        _held_start_up(gate, finished)
    assert finished == ["held section"]


def test_an_armed_gate_remembers_the_first_signal_and_raises_nothing(gate: SignalGate) -> None:
    gate.arm()
    os.kill(os.getpid(), signal.SIGTERM)
    _until(lambda: gate.received is not None)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)
    assert gate.received == "SIGTERM"


def test_watch_signals_sees_a_signal_from_a_thread(gate: SignalGate) -> None:
    gate.arm()
    seen: list[str] = []
    with watch_signals(seen.append):
        os.kill(os.getpid(), signal.SIGTERM)
        _until(lambda: seen == ["SIGTERM"])
    assert signal.set_wakeup_fd(-1) == -1  # the watcher's descriptor was put back
