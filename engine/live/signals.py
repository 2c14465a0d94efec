"""SIGINT and SIGTERM from the first instant of ``python -m engine.live`` to the node's graceful stop.

This module imports nothing slow, so the CLI installs its handlers before Nautilus is imported.
A process runs through three phases, each with its handler:

1. **Start-up** (``SignalGate.install``, the first thing ``main`` does): a signal aborts the start by
   raising ``StartupAborted`` where the main thread is (loading the config, importing, reading data,
   building the node, at the YES prompt): nothing was connected, traded or written, and the CLI exits 0.
   A ``held`` section (a descriptor swap) defers the abort to its end. The kernel may hand a signal to
   any thread that does not block it (ours do: ``block_signals``; Nautilus', polars' and the
   allocator's do not), which leaves a blocking read of the main thread waiting: the prompt is read by
   ``interruptible_input``, which also wakes on the signal.
2. **Node starting** (``SignalGate.arm``, just before ``LiveNode.run``): a signal is remembered. Nautilus
   then installs handlers of its own, but Python runs a handler only between bytecodes of the main
   thread, which is inside Nautilus while the node connects (up to its 60 s readiness timeout on a
   dead venue). ``watch_signals`` sees the signal anyway, from a thread (``signal.set_wakeup_fd``), and
   the session stops the node's start-up (Nautilus honours it once its pending connection attempts
   return); it reports that as ``StartupAborted`` too. The
   supervisor's ``on_start`` installs our handlers again (``install_signals``) and turns a signal
   remembered meanwhile into a stop at once.
3. **Running** (``install_signals``): a signal requests the graceful stop (cancel open orders, flatten
   if configured, report, state). After the node has stopped the armed gate is back: a signal while the
   report and state are written is remembered and changes nothing.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StartupAborted(BaseException):
    """A signal stopped the process before its node ran: nothing was connected, traded or written.

    A ``BaseException`` (like ``KeyboardInterrupt``), so no ``except Exception`` on the way swallows it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Stop(Protocol):
    def request(self, reason: str, *, flatten: bool) -> None: ...


class SignalGate:
    """SIGINT/SIGTERM handling of one process from its start until the node runs (see the module docstring)."""

    def __init__(self) -> None:
        self.received: str | None = None
        self.armed = False
        self._held = 0
        self._deferred = False
        self._previous: dict[int, Any] = {}
        self._unraisable: Any = None

    def install(self) -> SignalGate:
        """Install the start-up handlers (main thread only; elsewhere this does nothing) and return self."""
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self.handle)
            self._unraisable = sys.unraisablehook
            sys.unraisablehook = self._lost_abort
        return self

    def _lost_abort(self, unraisable: Any) -> None:
        # A signal that lands in code whose exceptions Python ignores (a weakref callback while a module
        # imports, a __del__) loses its abort: Python would print it as "Exception ignored" with a
        # traceback. The signal stays remembered (``_abort`` armed the gate), so the node stops on it as
        # soon as it runs, gracefully: nothing to print.
        if isinstance(unraisable.exc_value, StartupAborted):
            return
        (self._unraisable or sys.__unraisablehook__)(unraisable)

    def handle(self, signum: int, frame: Any) -> None:
        """Remember the signal; during start-up, abort (at the end of a ``held`` section if in one)."""
        if self.received is None:
            self.received = signal.Signals(signum).name
        if self.armed:
            return
        if self._held:
            self._deferred = True
            return
        self._abort()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Defer a start-up abort to the end of the block (for steps that must not be cut in half)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        if not self._held and self._deferred and not self.armed:
            self._abort()

    def arm(self) -> None:
        """Remember signals from now on instead of aborting: the node is about to run."""
        self.armed = True

    def restore(self) -> None:
        """Put back the handlers ``install`` replaced."""
        restore_signals(self._previous)
        self._previous = {}
        if self._unraisable is not None and sys.unraisablehook == self._lost_abort:
            sys.unraisablehook = self._unraisable
        self._unraisable = None

    def _abort(self) -> None:
        # Abort once: a second signal while the first abort unwinds is only remembered.
        self.armed = True
        raise StartupAborted(f"signal {self.received}")


def install_signals(stop: _Stop, *, flatten: bool) -> dict[int, Any]:
    """Make SIGINT and SIGTERM request a graceful stop (main thread only); return the handlers replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: Any) -> None:
        stop.request(f"signal {signal.Signals(signum).name}", flatten=flatten)

    previous: dict[int, Any] = {}
    for signum in SIGNALS:
        previous[signum] = signal.signal(signum, handler)
    return previous


def current_signals() -> dict[int, Any]:
    """Return the Python handlers of SIGINT and SIGTERM now (main thread only; else empty)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.getsignal(signum) for signum in SIGNALS}


def restore_signals(previous: dict[int, Any]) -> None:
    """Put back handlers ``install_signals`` (or ``current_signals``) recorded; ``None`` ones are skipped."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in previous.items():
        if handler is not None:
            signal.signal(signum, handler)


@contextmanager
def watch_signals(on_signal: Callable[[str], None]) -> Iterator[None]:
    """Call ``on_signal(name)`` from a thread for each SIGINT/SIGTERM received while the block runs.

    Python-level handlers run only when the main thread executes Python; this sees a signal while the
    main thread is blocked in native code. Main thread only; elsewhere the block runs unwatched.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=_watch, args=(read_fd, on_signal), name="signal-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.close(write_fd)
        watcher.join(timeout=5)
        os.close(read_fd)


def _watch(read_fd: int, on_signal: Callable[[str], None]) -> None:
    block_signals()
    while chunk := os.read(read_fd, 64):
        for signum in chunk:
            if signum in SIGNALS:
                on_signal(signal.Signals(signum).name)


def block_signals() -> None:
    """Keep SIGINT/SIGTERM off the calling (non-main) thread, so they reach the main thread.

    The kernel hands a process signal to any thread not blocking it; one a helper thread takes does not
    interrupt the main thread's blocking read (the YES prompt), and Python runs handlers there only.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, set(SIGNALS))


def interruptible_input(prompt: str) -> str:
    """Return a line typed on stdin (``input``), interruptible by SIGINT/SIGTERM whichever thread gets them.

    A signal the kernel hands to another thread (Nautilus, polars and allocator threads do not block
    them) leaves ``input()``'s read blocked; here the main thread waits on stdin and on the wakeup
    descriptor of ``signal.set_wakeup_fd``, so the handler runs at once.

    Raises
    ------
    EOFError
        At the end of input.
    """
    if threading.current_thread() is not threading.main_thread() or sys.stdin is None:
        return input(prompt)
    sys.stdout.write(prompt)
    sys.stdout.flush()
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    try:
        while True:
            ready, _, _ = select.select([sys.stdin, read_fd], [], [])
            if read_fd in ready:
                os.read(read_fd, 64)  # a signal arrived: its handler runs now, between these bytecodes
                continue
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line.rstrip("\n")
    finally:
        signal.set_wakeup_fd(previous)
        os.close(read_fd)
        os.close(write_fd)
