"""Paper and live trading nodes that run the backtested strategy classes unchanged.

``run_session(config, SessionOptions(mode="paper", replay=True))`` is the library API; the CLI is
``python -m engine.live``. See the README section "Paper and live trading".
"""

from __future__ import annotations

from engine.live.session import SessionOptions, SessionResult, run_session

__all__ = ["SessionOptions", "SessionResult", "run_session"]
