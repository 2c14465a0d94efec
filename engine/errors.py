"""Exceptions raised by the engine: one root, one subclass per way a run can fail.

Every message says what was expected, what was found (", was X") and how to fix it. The CLI maps
each subclass to its own exit code (``engine.backtest.__main__``).
"""

from __future__ import annotations


class EngineError(Exception):
    """Root of every error raised by ``engine``."""


class ConfigError(EngineError):
    """A run config is malformed: unknown key, bad value, unknown venue, strategy that does not import."""


class MissingDataError(EngineError):
    """The catalog lacks data the run needs: an instrument, or the requested time range of one."""


class EngineRunError(EngineError):
    """NautilusTrader failed while building or running the backtest."""


class AccountingError(EngineError):
    """The run's ledgers disagree with the engine's account: a bug, never a user error."""
