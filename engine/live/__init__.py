"""Paper and live trading nodes that run the backtested strategy classes unchanged.

``run_session(config, SessionOptions(mode="paper", replay=True))`` is the library API; the CLI is
``python -m engine.live``. See the README section "Paper and live trading".

The names are imported on first use: ``python -m engine.live`` imports this package before its
``__main__``, which installs its signal handlers before anything imports Nautilus (``engine.live.signals``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.live.session import SessionOptions, SessionResult, run_session

__all__ = ["SessionOptions", "SessionResult", "run_session"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from engine.live import session

        return getattr(session, name)
    raise AttributeError(f"module 'engine.live' has no attribute {name!r}")
